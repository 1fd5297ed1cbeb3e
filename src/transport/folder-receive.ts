/**
 * Receiving a folder offered file by file (FILE_META kind `folder`, see folder-send.ts): the list
 * is checked before anything is created, then each file arrives as a file transfer of its own on
 * channel `transfer:<id>.f<index>`, into the folder's part folder, through the same receiver as any
 * file (with the worker's cache: placed from it when held, else received into it, resumable).
 * Every name is confined to the part folder twice: lexically in the list, and by confinePath on
 * real paths when each file is placed.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { SleapRtcError } from '../errors.js';
import { folderFileTransferId, type FileMeta } from '../protocol/transfer.js';
import { checkManifest, manifestBytes, manifestSha256, type ManifestFile } from '../content/folder-manifest.js';
import type { ContentStore, Lease } from '../content/store.js';
import { confinePath } from '../storage/confine.js';
import type { PeerChannel } from './channel.js';
import type { ReceiveOptions, ReceiveResult } from './file-receive.js';

/** The list of a folder offer, checked: paths, duplicates, count, total and the list's hash. */
export function checkFolderOffer(meta: FileMeta, maxEntries: number): ManifestFile[] {
  const files = meta.files ?? [];
  if (files.length > maxEntries) {
    throw new SleapRtcError('TRANSFER_TOO_LARGE', `"${meta.name}" has ${files.length} files; this receiver accepts at most ${maxEntries}.`, { limit: maxEntries });
  }
  checkManifest(files);
  if (manifestBytes(files) !== meta.size || manifestSha256(files) !== meta.sha256) {
    throw new SleapRtcError('TRANSFER_PROTOCOL', `The folder "${meta.name.slice(0, 200)}" was offered with a size or SHA-256 that does not match its list of files.`);
  }
  return files;
}

/** Where file `rel` of the folder goes: inside `partPath`, its parents created, checked again after. */
async function fileDest(partPath: string, rel: string): Promise<string> {
  const first = await confinePath(partPath, rel);
  await mkdir(path.dirname(first), { recursive: true, mode: 0o755 });
  return confinePath(partPath, rel);
}

/**
 * When the store holds every file of the folder and the sender proves it holds them too: place
 * them all into `partPath` and return their leases. Otherwise (or if placing fails) release what was taken and return null.
 */
export async function placeCachedFolder(
  store: ContentStore,
  files: readonly ManifestFile[],
  partPath: string,
  prove: (entryPaths: string[]) => Promise<void>,
): Promise<Lease[] | null> {
  const leases: Lease[] = [];
  try {
    for (const f of files) {
      const lease = await store.acquire(f.sha256, f.size);
      if (!lease) break;
      leases.push(lease);
    }
    if (leases.length === files.length) {
      // The sender proves it holds the bytes before any of them is placed.
      await prove(leases.map((l) => l.path));
      for (const [i, f] of files.entries()) await store.place(leases[i] as Lease, await fileDest(partPath, f.path), false);
      return leases;
    }
  } catch (err) {
    for (const l of leases) l.release();
    throw err;
  }
  for (const l of leases) l.release();
  return null;
}

/**
 * Receive every file of the folder, in list order, each on its own channel, into `partPath`.
 * Each one's lease is pushed to `leases` as it arrives (the caller releases them).
 */
export async function receiveFolderFiles(o: {
  folderId: string;
  meta: FileMeta;
  files: readonly ManifestFile[];
  partPath: string;
  opts: ReceiveOptions & { stallTimeoutMs: number };
  signal: AbortSignal;
  receive: (channel: PeerChannel, opts: ReceiveOptions) => Promise<ReceiveResult>;
  leases: Lease[];
  onFile: (bytesBefore: number, bytesInFile: number) => void;
}): Promise<{ bytesReceived: number; cachedFiles: number }> {
  const take = o.opts.subChannel;
  if (!take) throw new SleapRtcError('TRANSFER_PROTOCOL', `"${o.meta.name.slice(0, 200)}": this receiver takes a folder as one stream, not file by file.`);
  let before = 0;
  let bytesReceived = 0;
  let cachedFiles = 0;
  for (const [i, f] of o.files.entries()) {
    const id = folderFileTransferId(o.folderId, i);
    const channel = await withTimeout(take(id, o.signal), o.opts.stallTimeoutMs, () => new SleapRtcError('TRANSFER_STALLED', `The sender did not start file ${i + 1} of ${o.files.length} of "${o.meta.name.slice(0, 200)}" within ${Math.round(o.opts.stallTimeoutMs / 1000)} s.`));
    // Its parents exist and are confined before the file's own receiver confines its name again.
    await fileDest(o.partPath, f.path);
    const { subChannel: _sub, onMeta: _onMeta, onProgress: _onProgress, overwrite: _overwrite, resumable: _resumable, ...shared } = o.opts;
    const r = await o.receive(channel, {
      ...shared,
      destDir: o.partPath,
      signal: o.signal,
      onMeta: (m) => {
        if (m.kind !== 'file' || m.name !== f.path || m.size !== f.size || m.sha256 !== f.sha256) {
          throw new SleapRtcError('TRANSFER_PROTOCOL', `Transfer ${id} must be the file '${f.path.slice(0, 200)}' of the folder's list, not '${m.name.slice(0, 200)}'.`);
        }
      },
      onProgress: (p) => o.onFile(before, p.bytes),
    });
    o.leases.push(...r.leases);
    before += f.size;
    bytesReceived += r.bytesReceived;
    if (r.cached) cachedFiles += 1;
    o.onFile(before, 0);
  }
  return { bytesReceived, cachedFiles };
}

function withTimeout<T>(p: Promise<T>, ms: number, error: () => SleapRtcError): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(error()), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
