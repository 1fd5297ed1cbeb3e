/** SHA-256 of a file on disk, read in large blocks into one reused buffer. */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

const READ_BLOCK_BYTES = 1024 * 1024;

export interface FileDigest {
  sha256: string;
  size: number;
  /** Modification time when hashing finished; compared later to tell "changed while sending". */
  mtimeMs: number;
}

export async function sha256File(path: string, signal?: AbortSignal): Promise<FileDigest> {
  const fh = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(READ_BLOCK_BYTES);
    let size = 0;
    for (;;) {
      signal?.throwIfAborted();
      const { bytesRead } = await fh.read(buf, 0, buf.length, size);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      size += bytesRead;
    }
    const st = await fh.stat();
    return { sha256: hash.digest('hex'), size, mtimeMs: st.mtimeMs };
  } finally {
    await fh.close();
  }
}
