/**
 * Proof that a sender holds the bytes it offers, not only their SHA-256. When the worker's cache
 * already has an offered file, knowing the file's hash would otherwise be enough to get it into a
 * job (and a training job's run folder carries its labels back). The receiver picks a fresh nonce
 * and a few byte ranges at random; the sender answers with the SHA-256 of the nonce followed by
 * those ranges' bytes, which it can only compute from the file itself. Small content is asked for
 * whole; larger content in 8 ranges of 64 KiB (a few random reads on either side).
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { open } from 'node:fs/promises';

export interface ProofRange {
  /** Index of the file in a folder's list; absent for a single file. */
  file?: number;
  offset: number;
  length: number;
}

const RANGE_BYTES = 64 * 1024;
const RANGES = 8;
/** Largest range, and most ranges, in a challenge (as the protocol allows). */
const MAX_RANGE_BYTES = 1024 * 1024;
const MAX_RANGES = 64;

/** A fresh challenge over files of these sizes (one entry for a single file); null when there is nothing to prove. */
export function makeChallenge(sizes: readonly number[], single: boolean): { nonce: string; ranges: ProofRange[] } | null {
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const ranges: ProofRange[] = [];
  const at = (file: number, offset: number, length: number): ProofRange => (single ? { offset, length } : { file, offset, length });
  if (total <= RANGES * RANGE_BYTES && sizes.filter((n) => n > 0).length <= MAX_RANGES) {
    // Small: all of it, one range per file.
    for (const [i, size] of sizes.entries()) if (size > 0) ranges.push(at(i, 0, size));
  } else {
    for (let k = 0; k < RANGES; k++) {
      // A file picked in proportion to its size, then a range inside it.
      let pick = randomInt(0, total);
      let i = 0;
      while (pick >= (sizes[i] as number)) pick -= sizes[i++] as number;
      const size = sizes[i] as number;
      const length = Math.min(RANGE_BYTES, size);
      ranges.push(at(i, size === length ? 0 : randomInt(0, size - length + 1), length));
    }
  }
  return { nonce: randomBytes(16).toString('hex'), ranges };
}

/** The proof over files found by index (`paths[range.file ?? 0]`); a file shorter than a range gives a wrong proof, never an error. */
export async function proofOf(nonce: string, ranges: readonly ProofRange[], paths: readonly string[]): Promise<string> {
  const hash = createHash('sha256').update(Buffer.from(nonce, 'hex'));
  const handles = new Map<number, Awaited<ReturnType<typeof open>>>();
  try {
    for (const r of ranges) {
      const i = r.file ?? 0;
      const p = paths[i];
      if (p === undefined) return '0'.repeat(64);
      let fh = handles.get(i);
      if (!fh) {
        fh = await open(p, 'r');
        handles.set(i, fh);
      }
      const buf = Buffer.alloc(Math.min(r.length, MAX_RANGE_BYTES));
      const { bytesRead } = await fh.read(buf, 0, buf.length, r.offset);
      hash.update(buf.subarray(0, bytesRead));
      if (bytesRead < buf.length) hash.update('short');
    }
  } finally {
    for (const fh of handles.values()) await fh.close();
  }
  return hash.digest('hex');
}
