/** Room ids, room tokens and drawn peer ids, and the constant-time token check. */
import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

/** Lower-case letters and digits without look-alikes (0/o, 1/l), so ids survive being read aloud. */
const ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789';

function randomText(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[randomInt(ALPHABET.length)];
  return out;
}

/** 10 characters of a 32-letter alphabet: 50 bits, short enough to type, and never the secret. */
export function newRoomId(): string {
  return randomText(10);
}

/** 192 random bits, base64url. */
export function newRoomToken(): string {
  return randomBytes(24).toString('base64url');
}

/** A peer id for a peer that did not ask for one: `worker-x7k2mq`. */
export function newPeerId(role: string): string {
  return `${role}-${randomText(6)}`;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Compares digests of equal length, so neither the token's content nor its length leaks through timing. */
export function tokenMatches(token: string, expectedSha256Hex: string): boolean {
  const given = createHash('sha256').update(token, 'utf8').digest();
  const expected = Buffer.from(expectedSha256Hex, 'hex');
  return expected.length === given.length && timingSafeEqual(given, expected);
}
