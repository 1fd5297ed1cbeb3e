/**
 * Sending a folder file by file (a job's model folder): walk it, hash each file (or take its hash
 * from the caller's hash index), offer the whole list in one FILE_META (kind `folder`), then send
 * each file the receiver does not have as its own file transfer on channel
 * `transfer:<id>.f<index>`, so each file is offered, cached and resumed like any other.
 *
 * The walk is the one of a tar send (planDirectory): symbolic links refused (or skipped on
 * request), sockets, fifos and devices refused, every name checked with the receiver's rules. Each
 * file is then opened without following a final link and must be the very file the walk saw (same
 * device and inode), so nothing outside the folder is read even if the folder changes meanwhile.
 * A folder whose list would not fit in one control frame, or with empty subfolders (the list
 * names files only), goes as one tar stream instead, as before.
 */
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { SleapRtcError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { folderFileTransferId } from '../protocol/transfer.js';
import { sha256File } from '../content/file-hash.js';
import { manifestBytes, manifestSha256, type ManifestFile } from '../content/folder-manifest.js';
import type { PeerConnection } from './peer-connection.js';
import { sendDirectory, sendFile, sendFolderOffer, type SendOptions, type SendResult } from './file-send.js';
import { planDirectory } from './tar-pack.js';

interface PlannedFile extends ManifestFile {
  full: string;
  dev: number;
  ino: number;
  mtimeMs: number;
}

/** Room kept in the FILE_META frame for everything but the list. */
const META_HEADROOM_BYTES = 2048;

export async function sendFolder(peer: PeerConnection, dirPath: string, opts: SendOptions = {}): Promise<SendResult> {
  opts.signal?.throwIfAborted();
  const plan = await planDirectory(dirPath, { symlinks: opts.symlinks ?? 'refuse', signal: opts.signal });
  const files: PlannedFile[] = [];
  const folders: string[] = [];
  for (const rel of plan.paths) {
    const full = path.join(dirPath, ...rel.split('/'));
    const st = await lstat(full).catch(() => null);
    if (st?.isDirectory()) {
      folders.push(rel);
      continue;
    }
    if (!st?.isFile()) throw new SleapRtcError('TRANSFER_SOURCE_INVALID', `${full} changed while its folder was being read; send the folder again once nothing changes it.`, { path: rel });
    const digest = await (opts.digest ?? sha256File)(full, opts.signal).catch((err: unknown) => {
      if ((err as Error)?.name === 'AbortError') throw err;
      throw new SleapRtcError('TRANSFER_SOURCE_INVALID', `Cannot read ${full}: ${(err as Error)?.message ?? String(err)}`, { path: rel });
    });
    files.push({ path: rel, size: digest.size, sha256: digest.sha256, full, dev: st.dev, ino: st.ino, mtimeMs: digest.mtimeMs });
  }
  const list: ManifestFile[] = files.map((f) => ({ path: f.path, size: f.size, sha256: f.sha256 }));
  const emptyFolder = folders.some((d) => !files.some((f) => f.path.startsWith(`${d}/`)));
  if (emptyFolder || JSON.stringify(list).length > LIMITS.transferControlMaxBytes - META_HEADROOM_BYTES) return sendDirectory(peer, dirPath, opts);

  const name = opts.name ?? path.basename(path.resolve(dirPath));
  const size = manifestBytes(list);
  return sendFolderOffer(peer, opts, name, { files: list, size, sha256: manifestSha256(list), paths: files.map((f) => f.full) }, async (folderId, signal) => {
    let bytesSent = 0;
    let cachedFiles = 0;
    let before = 0;
    for (const [i, f] of files.entries()) {
      const res = await sendFile(peer, f.full, {
        ...pick(opts),
        transferId: folderFileTransferId(folderId, i),
        name: f.path,
        signal,
        expectInode: { dev: f.dev, ino: f.ino },
        digest: async () => ({ sha256: f.sha256, size: f.size, mtimeMs: f.mtimeMs }),
        onBytesSent: (n) => opts.onBytesSent?.(n),
        onProgress: (p) => opts.onProgress?.({ ...p, transferId: folderId, name, bytes: before + p.bytes, total: size }),
      });
      before += f.size;
      bytesSent += res.bytesSent;
      if (res.cached) cachedFiles += 1;
    }
    return { bytesSent, cachedFiles };
  });
}

/** The tuning options a folder's file transfers share with it. */
function pick(opts: SendOptions): SendOptions {
  const { chunkBytes, highWaterBytes, lowWaterBytes, windowBytes, stallTimeoutMs, lingerMs, transformChunk } = opts;
  return Object.fromEntries(Object.entries({ chunkBytes, highWaterBytes, lowWaterBytes, windowBytes, stallTimeoutMs, lingerMs, transformChunk }).filter(([, v]) => v !== undefined));
}
