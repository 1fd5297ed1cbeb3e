/**
 * Packing a folder for transfer: walk it first (so what is sent is exactly what was checked and
 * the receiver can be told the entry count and approximate size), then stream a tar of that list
 * with the `tar` package, cut into fixed-size chunks for the data channel.
 *
 * Only regular files and folders are sent. Symbolic links are refused by default (the receiver
 * refuses link entries anyway, see tar-extract.ts) or skipped on request; sockets, fifos and
 * devices are refused. Every relative name is checked with the same lexical rules the receiver
 * applies, so a name the receiver would refuse fails here, before any byte is sent.
 */
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { create as createTar } from 'tar';
import { SleapRtcError } from '../errors.js';
import { checkRelativePath } from '../storage/confine.js';

export interface PackPlan {
  root: string;
  /** Relative POSIX paths, each folder before its contents. */
  paths: string[];
  files: number;
  dirs: number;
  /** Sum of file sizes. */
  bytes: number;
  /** Expected tar stream size: headers, padded file data, end blocks (long names add a little). */
  approxTarBytes: number;
  skippedSymlinks: string[];
}

export interface PlanOptions {
  /** What to do with a symbolic link inside the folder: fail (default) or leave it out. */
  symlinks?: 'refuse' | 'skip';
  signal?: AbortSignal;
}

const BLOCK = 512;

function sourceError(message: string, details: Record<string, unknown>): SleapRtcError {
  return new SleapRtcError('TRANSFER_SOURCE_INVALID', message, details);
}

export async function planDirectory(root: string, opts: PlanOptions = {}): Promise<PackPlan> {
  const plan: PackPlan = { root, paths: [], files: 0, dirs: 0, bytes: 0, approxTarBytes: 2 * BLOCK, skippedSymlinks: [] };
  const walk = async (relDir: string): Promise<void> => {
    opts.signal?.throwIfAborted();
    const names = (await readdir(path.join(root, relDir))).sort();
    for (const name of names) {
      const rel = relDir ? `${relDir}/${name}` : name;
      try {
        checkRelativePath(rel);
      } catch (err) {
        throw sourceError(`Cannot send ${path.join(root, rel)}: its name would be refused by the receiver (${(err as Error).message}). Rename it.`, { path: rel });
      }
      const full = path.join(root, rel);
      const st = await lstat(full);
      if (st.isSymbolicLink()) {
        if (opts.symlinks === 'skip') {
          plan.skippedSymlinks.push(rel);
          continue;
        }
        throw sourceError(`Cannot send ${full}: it is a symbolic link, and links are not transferred. Replace it with a copy of its target, or send with symlinks skipped.`, { path: rel });
      }
      if (st.isDirectory()) {
        plan.paths.push(rel);
        plan.dirs++;
        plan.approxTarBytes += BLOCK;
        await walk(rel);
      } else if (st.isFile()) {
        plan.paths.push(rel);
        plan.files++;
        plan.bytes += st.size;
        plan.approxTarBytes += BLOCK + Math.ceil(st.size / BLOCK) * BLOCK;
      } else {
        throw sourceError(`Cannot send ${full}: it is not a regular file or folder (a socket, fifo or device).`, { path: rel });
      }
    }
  };
  const st = await lstat(root).catch(() => null);
  if (!st || !st.isDirectory()) throw sourceError(`Cannot send ${root}: it is not a folder.`, { path: root });
  await walk('');
  return plan;
}

/** The tar stream of a plan, as produced by the `tar` package (chunk sizes vary). */
export function packStream(plan: PackPlan): AsyncIterable<Uint8Array> {
  // An empty folder is a tar of the two end blocks alone (the tar package refuses an empty list).
  if (plan.paths.length === 0) return [Buffer.alloc(2 * BLOCK)] as unknown as AsyncIterable<Uint8Array>;
  return createTar({ cwd: plan.root, portable: true, noDirRecurse: true, follow: false, strict: true }, plan.paths) as AsyncIterable<Uint8Array>;
}

/** Re-cut a byte stream into chunks of exactly `chunkBytes` (the last one may be shorter). */
export async function* rechunk(source: AsyncIterable<Uint8Array>, chunkBytes: number): AsyncGenerator<Uint8Array> {
  let buf = Buffer.allocUnsafe(chunkBytes);
  let fill = 0;
  for await (const piece of source) {
    let offset = 0;
    while (offset < piece.byteLength) {
      if (fill === 0 && piece.byteLength - offset >= chunkBytes) {
        // Whole chunk available in the piece: pass a view, no copy.
        yield piece.subarray(offset, offset + chunkBytes);
        offset += chunkBytes;
        continue;
      }
      const n = Math.min(chunkBytes - fill, piece.byteLength - offset);
      buf.set(piece.subarray(offset, offset + n), fill);
      fill += n;
      offset += n;
      if (fill === chunkBytes) {
        yield buf;
        buf = Buffer.allocUnsafe(chunkBytes);
        fill = 0;
      }
    }
  }
  if (fill > 0) yield buf.subarray(0, fill);
}
