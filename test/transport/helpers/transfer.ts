/** Shared pieces of the file-transfer tests: temp folders, tree snapshots, a receiving side. */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { PeerChannel } from '../../../src/transport/channel.js';
import { receiveTransfer, type ReceiveOptions, type ReceiveResult } from '../../../src/transport/file-receive.js';
import type { PeerConnection } from '../../../src/transport/peer-connection.js';

export async function tempDir(t: { after: (fn: () => Promise<void>) => void }, prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `sleap-rtc-${prefix}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** rel path -> "dir" or the sha256 of the file, for every entry under `dir`. */
export async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const d of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) {
        out[r] = 'dir';
        await walk(r);
      } else if (d.isSymbolicLink()) {
        out[r] = 'symlink';
      } else {
        out[r] = createHash('sha256').update(await readFile(path.join(dir, r))).digest('hex');
      }
    }
  };
  await walk('');
  return out;
}

/** Receive the next transfer channel the peer opens; settles (never rejects) with the outcome. */
export function receiveNext(
  peer: PeerConnection,
  opts: ReceiveOptions,
): Promise<{ ok: true; result: ReceiveResult; channel: PeerChannel } | { ok: false; error: unknown; channel: PeerChannel }> {
  return new Promise((resolve) => {
    const off = peer.onChannel((channel) => {
      off();
      receiveTransfer(channel, opts).then(
        (result) => resolve({ ok: true, result, channel }),
        (error: unknown) => resolve({ ok: false, error, channel }),
      );
    });
  });
}
