/**
 * A WorkerSession over a real WebRTC connection in this process, for tests that attack a job's
 * files: a share with alice's project, a folder OUTSIDE the share holding canary files under the
 * same names, and a record of every frame the worker sent on any data channel.
 */
import type { TestContext } from 'node:test';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { silentLogger, type Logger } from '../../../src/log.js';
import type { JobRequest } from '../../../src/protocol/job.js';
import { StorageConfig } from '../../../src/storage/index.js';
import type { PeerChannel } from '../../../src/transport/channel.js';
import { WorkerSession, type SessionContext } from '../../../src/worker/session.js';
import { FAKE_SLEAP_NN, tempDir } from '../../fixtures/fake-sleap-nn.js';
import { connectedPair } from '../../transport/helpers/peers.js';
import { copySleapFile, copyTrainingConfig } from '../../helpers/sleap-data.js';
import { JobPeer } from './job-peer.js';

export const CANARY = 'CANARY: a worker file no job may read';

/** A shared-storage training request on the env's `vast` backend: alice's proj/labels.slp and proj/config.yaml, run r1 in out/. */
export const sharedTrain = (jobId: string): JobRequest =>
  ({
    type: 'JOB_REQUEST',
    job_id: jobId,
    job_type: 'train',
    transfer: 'shared',
    storage: { storage_backend: 'vast', user_subdir: 'alice' },
    spec: { labels: 'proj/labels.slp', config_file: 'proj/config.yaml', output: 'out', run_name: 'r1', max_epochs: 1 },
  }) as JobRequest;

export interface SessionEnv {
  client: JobPeer;
  session: WorkerSession;
  root: string;
  share: string;
  outside: string;
  workDir: string;
  record: string;
  /** Every frame the worker sent, on the control channel and on every transfer channel. */
  sent: string[];
}

export async function sessionEnv(
  t: TestContext,
  opts: { executable?: string; env?: NodeJS.ProcessEnv; logger?: Logger; workDir?: string } = {},
): Promise<SessionEnv> {
  const root = await tempDir(t, 'sleap-rtc-worker-attack-');
  const share = path.join(root, 'share');
  const outside = path.join(root, 'outside');
  const workDir = opts.workDir ?? path.join(root, 'work');
  await mkdir(path.join(share, 'alice', 'proj'), { recursive: true });
  await mkdir(path.join(share, 'alice', 'out'), { recursive: true });
  await mkdir(path.join(share, 'alice', 'models', 'm1'), { recursive: true });
  await mkdir(path.join(outside, 'm1'), { recursive: true });
  await mkdir(workDir, { recursive: true });
  // Real SLEAP files: a package labels file (frames embedded), sleap-nn's sample config, a model.
  await copySleapFile('pkg', path.join(share, 'alice', 'proj', 'labels.slp'));
  await copyTrainingConfig(path.join(share, 'alice', 'proj', 'config.yaml'));
  await writeFile(path.join(share, 'alice', 'models', 'm1', 'best.ckpt'), 'real ckpt');
  await copyTrainingConfig(path.join(share, 'alice', 'models', 'm1', 'training_config.yaml'));
  for (const name of ['labels.slp', 'config.yaml', 'best.ckpt', 'm1/best.ckpt']) await writeFile(path.join(outside, name), CANARY);
  const record = path.join(root, 'record.jsonl');
  const { offerer, answerer } = await connectedPair(t);
  const sent: string[] = [];
  const recordChannel = (ch: PeerChannel): void => {
    const send = ch.send.bind(ch);
    ch.send = (data: Parameters<PeerChannel['send']>[0]) => {
      sent.push(typeof data === 'string' ? data : Buffer.from(data as Uint8Array).toString('latin1'));
      send(data);
    };
  };
  recordChannel(answerer.control);
  // Channels the client opens (its uploads) reach the session through onChannel: record them first.
  const onChannel = answerer.onChannel.bind(answerer);
  answerer.onChannel = (listener) => onChannel((ch) => {
    recordChannel(ch);
    listener(ch);
  });
  const ctx: SessionContext = {
    workerName: 'gpu-test',
    storage: StorageConfig.fromToml({ vast: { base_path: share } }),
    healthyBackends: new Set(['vast']),
    jobTypes: new Set(['train', 'track']),
    executable: opts.executable ?? FAKE_SLEAP_NN,
    workDir,
    env: { ...process.env, FAKE_SLEAP_NN_RECORD: record, ...opts.env },
    slots: { acquire: () => true, release: () => {} },
    signaling: null,
    logger: opts.logger ?? silentLogger(),
    cancelGraceMs: 2_000,
    killGraceMs: 1_000,
  };
  const session = new WorkerSession(answerer, ctx);
  t.after(() => session.close('worker_shutdown'));
  return { client: new JobPeer(offerer), session, root, share, outside, workDir, record, sent };
}

/**
 * An executable that waits for `<gate>/go` before it execs the sleap-nn stand-in, and says it is
 * waiting by creating `<gate>/waiting`: the test gets a moment between the worker's last step and
 * sleap-nn's first open, which is where a swap on the share would strike.
 */
export async function gatedSleapNn(t: TestContext): Promise<{ executable: string; gate: string }> {
  const dir = await tempDir(t, 'sleap-rtc-gate-');
  const gate = path.join(dir, 'gate');
  await mkdir(gate);
  const executable = path.join(dir, 'sleap-nn');
  await writeFile(
    executable,
    `#!/bin/sh\n: > '${gate}/waiting'\nwhile [ ! -e '${gate}/go' ]; do sleep 0.02; done\nexec '${FAKE_SLEAP_NN}' "$@"\n`,
    { mode: 0o755 },
  );
  return { executable, gate };
}
