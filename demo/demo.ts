/**
 * `npm run demo`: the whole system on this machine, narrated. A signaling server, a room, a GPU
 * "cluster" worker that mounts the lab share, a "workstation" worker without it, and a "laptop"
 * that trains a model through shared storage (the worker reads the files in place from its own
 * mount) and then runs inference on the workstation, which gets the files over WebRTC.
 *
 * Every `sleap-rtc` below is a real CLI process; sleap-nn is the project's stand-in
 * (test/fixtures/sleap-nn). Everything lives in one temp folder that is removed at the end, also
 * after a failure or Ctrl-C. Exit code 0 only if every step did what it should.
 */
import { mkdtemp, readdir, readFile, realpath, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildLab, FAKE_SLEAP_NN, writeConfig, type Lab, type Machine } from './lab.js';
import { Narrator } from './narrator.js';
import { ProcessSet, StepFailed, type CliProcess } from './processes.js';

/** The whole demo must be over by then, whatever hangs. */
const DEMO_TIMEOUT_MS = 120_000;
const RUN_NAME = 'centroid-v1';

const started = performance.now();
const root = await realpath(await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-demo-')));
const say = new Narrator(root);
const procs = new ProcessSet(cleanEnv());

let cleaning: Promise<void> | undefined;
/** Stops every process and removes the temp folder; safe to call from several places at once. */
function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    await procs.stopAll();
    await rm(root, { recursive: true, force: true });
  })();
  return cleaning;
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    process.stdout.write(`\n(${sig === 'SIGINT' ? 'Ctrl-C' : sig}: stopping the demo's processes and removing ${root})\n`);
    void cleanUp().finally(() => {
      process.stdout.write('(stopped)\n');
      process.exit(128 + (SIGNAL_NUMBERS[sig] ?? 0));
    });
  });
}
const watchdog = setTimeout(() => {
  process.stdout.write(`\ndemo failed: it did not finish within ${DEMO_TIMEOUT_MS / 1000} s\n`);
  void cleanUp().finally(() => process.exit(1));
}, DEMO_TIMEOUT_MS);

try {
  await story();
  await cleanUp();
  await checkCleanedUp();
  say.say(`\nRemoved ${root} and stopped every process. Demo finished in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
  clearTimeout(watchdog);
} catch (err) {
  // After Ctrl-C the steps fail as their processes stop; the signal handler reports and exits.
  if (interrupted) await new Promise(() => undefined);
  const message = err instanceof StepFailed ? err.message : ((err as Error).stack ?? String(err));
  process.stdout.write(`\ndemo failed: ${say.short(message)}\n`);
  await cleanUp();
  process.stdout.write(`(stopped every process and removed ${root})\n`);
  clearTimeout(watchdog);
  process.exitCode = 1;
}

async function story(): Promise<void> {
  say.title('sleap-rtc demo: one lab share, two GPU workers, two jobs');
  say.say('Everything runs on this computer, in a temporary folder shown below as $DEMO:');
  say.raw(`  DEMO=${root}`);
  say.say(
    'Its sub-folders play separate machines: a laptop, a GPU cluster node, a lab workstation',
    'and a small server. Each runs the real sleap-rtc command; sleap-nn is a stand-in that reads',
    "its inputs and writes a model like the real one would, in seconds and without a GPU.",
  );

  const lab = await buildLab(root);
  await showStorage(lab);

  const serverUrl = await startServer(lab);
  const room = await createRoom(lab, serverUrl);
  const roomEnv = { SLEAP_RTC_SERVER: serverUrl, SLEAP_RTC_ROOM: room.id, SLEAP_RTC_TOKEN: room.token };
  say.say(
    '',
    'Every machine below is given the room once, through the environment (a [signaling] section',
    'in its config file would do the same):',
    `  export SLEAP_RTC_SERVER=${serverUrl} SLEAP_RTC_ROOM=${room.id} SLEAP_RTC_TOKEN=${room.token}`,
  );

  const cluster = await startWorker(lab.cluster, 'cluster-gpu', roomEnv, {
    intro: [
      'The cluster node mounts the lab share at $DEMO/cluster/mnt/vast and names it "vast".',
      'Its worker advertises that backend, so jobs on that share can run there in place.',
    ],
    toml: [
      '[storage.vast]',
      `base_path = ${JSON.stringify(lab.clusterMount)}`,
      'type = "nfs"',
      'description = "Lab VAST share"',
      '',
      '[worker]',
      `sleap_nn = ${JSON.stringify(FAKE_SLEAP_NN)}`,
      `work_dir = ${JSON.stringify(path.join(root, 'cluster', 'scratch'))}`,
    ],
  });
  const workstation = await startWorker(lab.workstation, 'workstation', roomEnv, {
    intro: ['The lab workstation has a GPU but does not mount the share: it has no storage backend.'],
    toml: [
      '[worker]',
      `sleap_nn = ${JSON.stringify(FAKE_SLEAP_NN)}`,
      `work_dir = ${JSON.stringify(path.join(root, 'workstation', 'scratch'))}`,
    ],
  });

  await setUpLaptop(lab, roomEnv);
  await trainOnSharedStorage(lab, roomEnv, cluster);
  await trackByTransfer(lab, roomEnv, workstation);

  say.step('What happened');
  say.say(
    '- The train job ran on shared storage: only "vast + alice + mouse-study/labels.slp" crossed the',
    '  network. The cluster worker found the files under its own mount ($DEMO/cluster/mnt/vast) and',
    '  wrote the model there; the laptop saw it under $DEMO/laptop/Volumes/talmo.',
    '- The track job ran on a worker without that storage: the video and the model went over',
    '  WebRTC, and the predictions came back next to the video.',
    'On real machines it is the same commands. See README.md and docs/storage-backends.md.',
  );

  say.step('Stop everything');
  say.say('Ctrl-C on each machine stops its worker (it leaves the room), then the server.');
  await procs.stopAll();
  say.aside('The cluster worker:', cluster.newStderrLines());
  say.aside('The workstation worker:', workstation.newStderrLines());
}

async function showStorage(lab: Lab): Promise<void> {
  say.step('The lab share, seen by two machines at two different paths');
  say.say(
    'The share holds alice\'s project. The cluster node sees it at $DEMO/cluster/mnt/vast; the laptop',
    'sees the very same folder at $DEMO/laptop/Volumes/talmo (here a symbolic link, on a real Mac an',
    'SMB or NFS mount). Neither path means anything on the other machine.',
  );
  await listFolder(lab, lab.project, ['centroid.yaml', 'labels.slp', 'session1.mp4']);
  say.say(
    '',
    'labels.slp is a real SLEAP labels file (HDF5, its frames embedded), centroid.yaml is sleap-nn\'s',
    'sample training config, and session1.mp4 is a video to run the trained model on.',
  );
}

async function startServer(lab: Lab): Promise<string> {
  say.step('Start the signaling server');
  say.say('Workers and clients meet through it; after that they talk peer to peer. Port 0 picks a free port.');
  const args = ['server', '--port', '0'];
  say.command(lab.server.name, ['sleap-rtc', ...args]);
  const server = procs.start('sleap-rtc server', args, { cwd: lab.server.home, env: { HOME: lab.server.home } });
  const m = await server.waitFor(/listening on (http:\/\/\S+) \(WebSocket/);
  say.output(server.newStderrLines().join('\n'));
  return m[1] as string;
}

async function createRoom(lab: Lab, serverUrl: string): Promise<{ id: string; token: string }> {
  say.step('Create a room');
  const args = ['room', 'create', '--server', serverUrl];
  say.command(lab.laptop.name, ['sleap-rtc', ...args]);
  const r = await procs.run('sleap-rtc room create', args, { cwd: lab.laptop.home, env: { HOME: lab.laptop.home } });
  if (r.result.code !== 0) throw new StepFailed(`sleap-rtc room create exited with ${String(r.result.code)}:\n${r.stderr()}`);
  say.output(r.stdout());
  const id = /room id: (\S+)/.exec(r.stdout())?.[1];
  const token = /token: +(\S+)/.exec(r.stdout())?.[1];
  if (id === undefined || token === undefined) throw new StepFailed(`could not read the room id and token from:\n${r.stdout()}`);
  return { id, token };
}

async function startWorker(m: Machine, name: string, roomEnv: Record<string, string>, opts: { intro: string[]; toml: string[] }): Promise<CliProcess> {
  say.step(`Start a worker on the ${m.name}`);
  say.say(...opts.intro);
  say.command(m.name, ['cat', '~/.config/sleap-rtc/config.toml']);
  say.output(await writeConfig(m, `${opts.toml.join('\n')}\n`));
  const args = ['worker', '--name', name];
  say.command(m.name, ['sleap-rtc', ...args]);
  const worker = procs.start(`the ${m.name} worker`, args, { cwd: m.home, env: { HOME: m.home, ...roomEnv } });
  await worker.waitFor(new RegExp(`worker ${name} ready in room`));
  say.output(worker.newStderrLines().join('\n'));
  return worker;
}

async function setUpLaptop(lab: Lab, roomEnv: Record<string, string>): Promise<void> {
  say.step('Configure the laptop and look at the room');
  say.say(
    'The laptop names the same share "vast" too, at its own path. The name is what machines agree on;',
    'each base_path is local.',
  );
  const toml = [
    '[storage.vast]',
    `base_path = ${JSON.stringify(lab.laptopMount)}`,
    'type = "nfs"',
    'user_subdir = "alice"',
  ];
  say.command(lab.laptop.name, ['cat', '~/.config/sleap-rtc/config.toml']);
  say.output(await writeConfig(lab.laptop, `${toml.join('\n')}\n`));
  const args = ['workers'];
  say.command(lab.laptop.name, ['sleap-rtc', ...args]);
  const r = await procs.run('sleap-rtc workers', args, { cwd: lab.laptop.home, env: { HOME: lab.laptop.home, ...roomEnv } });
  if (r.result.code !== 0) throw new StepFailed(`sleap-rtc workers exited with ${String(r.result.code)}:\n${r.stderr()}`);
  say.output(r.stdout());
}

async function trainOnSharedStorage(lab: Lab, roomEnv: Record<string, string>, cluster: CliProcess): Promise<void> {
  say.step('Train a model: shared storage, nothing is copied');
  say.say(
    'alice works in her project folder on the share and asks for a training run. The labels are on',
    'backend "vast", so only a reference goes to the worker: vast + alice + mouse-study/labels.slp.',
    'The server picks a free worker that has "vast": the cluster node. It resolves the reference under',
    'its OWN mount and hands sleap-nn the file it opened there. These labels embed their frames; a',
    'labels file naming videos by laptop paths would get one --video-path-map per video.',
  );
  cluster.newStderrLines();
  const args = [
    'train',
    '--labels', path.join(lab.project, 'labels.slp'),
    '--config-file', path.join(lab.project, 'centroid.yaml'),
    '--run-name', RUN_NAME,
    '--max-epochs', '5',
  ];
  say.command(lab.laptop.name, ['sleap-rtc', ...args]);
  const r = await runJob(lab, roomEnv, args);
  const modelDir = path.join(lab.project, 'models', RUN_NAME);
  expect(r, /transfer: shared storage \(backend vast, user alice\)/, 'the train job did not run on shared storage');
  // The worker shows sleap-nn's lines in the client's words: its own mount as "<backend vast>",
  // the labels as the client named them.
  expect(r, /Video 0 of mouse-study\/labels\.slp: mouse-study\/labels\.slp/, 'sleap-nn did not find the frames embedded in the labels file');
  expect(r, /Loading labels from mouse-study\/labels\.slp/, 'sleap-nn did not read the labels the laptop named');
  if (r.stdout().trim() !== modelDir) throw new StepFailed(`train printed ${r.stdout().trim() || '(nothing)'} instead of ${modelDir}`);
  await showWorkerLog('cluster', cluster, /job \S+ completed/);

  say.say(
    '',
    'The model was written next to the data, on the share. The laptop sees it at once, under its own path:',
  );
  await listFolder(lab, modelDir, ['best.ckpt', 'training_config.yaml', 'training_log.csv']);
}

async function trackByTransfer(lab: Lab, roomEnv: Record<string, string>, workstation: CliProcess): Promise<void> {
  say.step('Run inference on the workstation: the files travel over WebRTC');
  say.say(
    'Now alice wants the workstation, which cannot see the share. sleap-rtc notices that it lacks',
    'backend "vast" and falls back: the video and the model folder go to it over the WebRTC data',
    'channel (hashed and checked), and the predictions come back the same way, to where a shared-',
    'storage job would have written them.',
  );
  workstation.newStderrLines();
  const args = [
    'track',
    '--data', path.join(lab.project, 'session1.mp4'),
    '--model', path.join(lab.project, 'models', RUN_NAME),
    '--worker', 'workstation',
  ];
  say.command(lab.laptop.name, ['sleap-rtc', ...args]);
  const r = await runJob(lab, roomEnv, args);
  expect(r, /transfer: webrtc \(reason: worker workstation lacks backend vast\)/, 'the track job did not fall back to transfer');
  const predictions = path.join(lab.project, 'session1.mp4.predictions.slp');
  if (r.stdout().trim() !== predictions) throw new StepFailed(`track printed ${r.stdout().trim() || '(nothing)'} instead of ${predictions}`);
  await showWorkerLog('workstation', workstation, /job \S+ completed/);

  say.say('', 'The predictions are on the laptop, next to the video (and on the share, for everyone):');
  await listFolder(lab, lab.project, ['labels.slp', 'models', 'session1.mp4', 'session1.mp4.predictions.slp']);
  say.command(lab.laptop.name, ['cat', predictions]);
  const text = await readFile(predictions, 'utf8').catch(() => {
    throw new StepFailed(`${predictions} is missing`);
  });
  say.output(text);
}

/**
 * Runs a job from the laptop's home folder. The paths are absolute on purpose: a process's working
 * directory is always the physical one, and here the laptop's mount is a symlink, so relative
 * paths would resolve through the cluster's folder.
 */
async function runJob(lab: Lab, roomEnv: Record<string, string>, args: string[]): Promise<CliProcess> {
  const label = `sleap-rtc ${args[0] ?? ''}`;
  const r = await procs.run(label, args, {
    cwd: lab.laptop.home,
    env: { HOME: lab.laptop.home, ...roomEnv },
    onStderrLine: (line) => say.output(line),
  });
  say.output(r.stdout());
  if (r.result.code !== 0) throw new StepFailed(`${label} exited with ${r.result.signal ?? `code ${String(r.result.code)}`}`);
  return r;
}

/**
 * What the worker logged about the job. Narration only: the job's success was already checked on
 * the client's side, so a worker that is slow to log its last line does not fail the demo.
 */
async function showWorkerLog(machineName: string, worker: CliProcess, last: RegExp): Promise<void> {
  await worker.waitFor(last, 5_000).catch(() => undefined);
  say.aside(`Meanwhile, in the ${machineName} worker's log:`, worker.newStderrLines());
}

function expect(r: CliProcess, pattern: RegExp, failure: string): void {
  if (!pattern.test(r.stderr())) throw new StepFailed(`${failure} (expected ${say.short(String(pattern))} in its output)`);
}

/** `ls -l`, in short: size and name (folders with a slash); fails the step if an expected name is missing. */
async function listFolder(lab: Lab, dir: string, expected: string[]): Promise<void> {
  say.command(lab.laptop.name, ['ls', '-l', dir]);
  const names = (await readdir(dir).catch(() => [])).sort();
  const lines: string[] = [];
  for (const n of names) {
    const st = await stat(path.join(dir, n));
    lines.push(st.isDirectory() ? `${'-'.padStart(7)}  ${n}/` : `${String(st.size).padStart(7)}  ${n}`);
  }
  say.output(lines.join('\n') || '(empty)');
  const missing = expected.filter((n) => !names.includes(n));
  if (missing.length) throw new StepFailed(`${dir} lacks ${missing.join(', ')}`);
}

/**
 * The environment children start from: the user's own sleap-rtc settings must not leak in. The
 * stand-in's knobs do pass (FAKE_SLEAP_NN_EPOCH_DELAY_MS=500 npm run demo shows a slower run).
 */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('SLEAP_RTC_') || k === 'SHARED_STORAGE_ROOT') continue;
    env[k] = v;
  }
  return env;
}

async function checkCleanedUp(): Promise<void> {
  const left = procs.stillRunning();
  if (left.length) throw new StepFailed(`still running after the stop: ${left.map((p) => p.label).join(', ')}`);
  const exists = await stat(root).then(
    () => true,
    () => false,
  );
  if (exists) throw new StepFailed(`${root} is still there`);
}
