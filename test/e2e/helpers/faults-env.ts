/**
 * Shared set-up of the fault tests (test/e2e/jobs-faults-*.test.ts): a lab share with real SLEAP
 * files, the client's train command line, a server of a test's own that it can kill and restart
 * on the same port, and looks at processes and folders afterwards.
 */
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readFile, readdir, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../../helpers/cli.js';
import { copySleapFile, copyTrainingConfig } from '../../helpers/sleap-data.js';
import { spawnTracked, type Room } from './jobs-env.js';

export type Hooks = { after: (fn: () => unknown) => void };

/** A lab share with a real labels file, its video and a real sleap-nn config, seen by client and worker. */
export async function realLab(t: Hooks) {
  const dir = await realpath(await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-faults-')));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const share = path.join(dir, 'share');
  const proj = path.join(share, 'alice', 'proj');
  await mkdir(proj, { recursive: true });
  // A package labels file (frames embedded): sleap-nn gets the labels pinned in its job folder, where
  // a video named relative to them would not be found. The video is for inference.
  const labels = await copySleapFile('pkg', path.join(proj, 'labels.slp'));
  const video = await copySleapFile('video', path.join(proj, 'small_robot.mp4'));
  const config = await copyTrainingConfig(path.join(proj, 'config.yaml'));
  const toml = `[storage.vast]\nbase_path = ${JSON.stringify(share)}\ntype = "nfs"\n`;
  const clientToml = path.join(dir, 'client.toml');
  await writeFile(clientToml, toml);
  return { dir, share, labels, video, config, clientToml, workerToml: toml, work: (name: string) => path.join(dir, `work-${name}`) };
}
export type Lab = Awaited<ReturnType<typeof realLab>>;

export const train = (lab: Lab, room: Room, run: string, epochs: number): string[] => [
  'train', '--labels', lab.labels, '--config-file', lab.config, '--run-name', run, '--max-epochs', String(epochs), '--json', '--config', lab.clientToml, ...room.flags,
];

/** True once `pid` is gone (or a zombie nobody has reaped yet: it runs nothing and holds no GPU). */
export async function isGone(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return / Z /.test(stat.slice(stat.lastIndexOf(')')));
}

export async function msUntilGone(pid: number, giveUpMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < giveUpMs) {
    if (await isGone(pid)) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 25));
  }
  return Infinity;
}

/** Bytes of the files under the entries of `dir` whose names pass `pick` (0 while `dir` is missing). */
export async function folderBytes(dir: string, pick: (name: string) => boolean): Promise<number> {
  let total = 0;
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p).catch(() => null);
    if (!st) return;
    if (!st.isDirectory()) {
      total += st.size;
      return;
    }
    for (const n of await readdir(p).catch(() => [] as string[])) await walk(path.join(p, n));
  };
  for (const n of await readdir(dir).catch(() => [] as string[])) if (pick(n)) await walk(path.join(dir, n));
  return total;
}

/** A server of this test's own (it gets killed); `restart()` starts a new one on the same port. */
export async function ownServer(t: Hooks, extra: string[] = []) {
  const first = spawnTracked(t, ['server', '--port', '0', ...extra]);
  const url = (await first.waitFor(/listening on (http:\/\/\S+) \(WebSocket/))[1] as string;
  const port = new URL(url).port;
  const r = await runCli(['room', 'create', '--server', url, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const created = JSON.parse(r.stdout) as { room_id: string; token: string };
  const room: Room = { serverUrl: url, roomId: created.room_id, token: created.token, flags: ['--server', url, '--room', created.room_id, '--token', created.token] };
  return {
    room,
    process: first,
    async restart() {
      const next = spawnTracked(t, ['server', '--port', port, ...extra]);
      await next.waitFor(/listening on/);
      return next;
    },
  };
}
