import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashToken, newPeerId, newRoomId, newRoomToken, tokenMatches } from '../../src/signaling/ids.js';
import { IdSchema } from '../../src/protocol/common.js';

test('ids: room ids and drawn peer ids are valid wire ids and differ', () => {
  const rooms = new Set(Array.from({ length: 500 }, newRoomId));
  assert.equal(rooms.size, 500);
  for (const id of [...rooms, newPeerId('worker'), newPeerId('client')]) assert.equal(IdSchema.safeParse(id).success, true, id);
});

test('ids: tokens carry at least 128 random bits in base64url', () => {
  const token = newRoomToken();
  assert.match(token, /^[A-Za-z0-9_-]+$/);
  assert.ok(Buffer.from(token, 'base64url').length * 8 >= 128);
  assert.notEqual(newRoomToken(), token);
});

test('ids: tokenMatches accepts only the exact token', () => {
  const token = newRoomToken();
  const stored = hashToken(token);
  assert.equal(tokenMatches(token, stored), true);
  for (const wrong of ['', token.slice(1), `${token}x`, token.toUpperCase() === token ? token.toLowerCase() : token.toUpperCase(), ' '.repeat(32), '\u0000']) {
    assert.equal(tokenMatches(wrong, stored), false, JSON.stringify(wrong));
  }
  assert.equal(tokenMatches(token, 'not-hex'), false, 'a corrupt stored digest never matches');
});
