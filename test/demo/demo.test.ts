/**
 * `npm run demo` end to end: its package.json script runs as a child process, exactly as the
 * README tells users to run it. It must tell both stories (shared storage and transfer), name
 * the files it produced, and leave no process and no temp folder behind: after success, after a
 * failing step, and after Ctrl-C.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const DEMO_SCRIPT = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.demo ?? '';
const PROJECT = '$DEMO/laptop/Volumes/talmo/alice/mouse-study';

interface DemoRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The temp folder the demo announced (`DEMO=...`). */
  dir: string;
}

/**
 * Runs the package.json "demo" script (`node ...args`, no shell in between) in its own process
 * group, as a terminal would. `interruptWhen`: once stdout matches, the group gets SIGINT (Ctrl-C).
 */
function runDemo(t: TestContext, opts: { env?: NodeJS.ProcessEnv; interruptWhen?: RegExp } = {}): Promise<DemoRun> {
  const [cmd, ...args] = DEMO_SCRIPT.split(' ');
  assert.equal(cmd, 'node', `the demo script should be "node ...", it is "${DEMO_SCRIPT}"`);
  const child = spawn(process.execPath, args, {
    cwd: REPO,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  let interrupted = false;
  const announcedDir = (): string | undefined => /^ {2}DEMO=(.+)$/m.exec(stdout)?.[1];
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    if (opts.interruptWhen && !interrupted && opts.interruptWhen.test(stdout)) {
      interrupted = true;
      process.kill(-(child.pid as number), 'SIGINT');
    }
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  // A hang guard: the demo starts a dozen CLI processes, each slow to start on a loaded machine.
  const timer = setTimeout(() => process.kill(-(child.pid as number), 'SIGKILL'), 300_000);
  t.after(() => {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) process.kill(-(child.pid as number), 'SIGKILL');
    const dir = announcedDir();
    if (dir !== undefined && path.basename(dir).startsWith('sleap-rtc-demo-')) rmSync(dir, { recursive: true, force: true });
  });
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const dir = announcedDir();
      assert.ok(dir !== undefined, `the demo never named its temp folder; stdout:\n${stdout}\nstderr:\n${stderr}`);
      resolve({ code, signal, stdout, stderr, dir });
    });
  });
}

/** Processes whose working directory or command line is inside `dir`. */
function processesUsing(dir: string): string[] {
  const found: string[] = [];
  if (existsSync('/proc/self/cwd')) {
    for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
      try {
        const cwd = readlinkSync(`/proc/${pid}/cwd`);
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
        if (cwd.startsWith(dir) || cmdline.includes(dir)) found.push(`${pid}: ${cmdline}`);
      } catch {
        // gone meanwhile, or a zombie without a cwd
      }
    }
    return found;
  }
  // No /proc (macOS): command lines only, which include the folder for sleap-nn runs.
  const ps = spawnSync('ps', ['-axo', 'pid=,command='], { encoding: 'utf8' });
  assert.equal(ps.status, 0, ps.stderr);
  return ps.stdout.split('\n').filter((l) => l.includes(dir));
}

function assertNothingLeft(run: DemoRun): void {
  assert.ok(run.dir.startsWith(realpathSync(os.tmpdir())), `${run.dir} should be under the temp folder`);
  assert.equal(existsSync(run.dir), false, `${run.dir} was left behind`);
  assert.deepEqual(processesUsing(run.dir), [], 'processes of the demo are still running');
}

test('npm run demo: exit 0, a shared-storage job and a transfer job, the outputs named, nothing left behind', { timeout: 330_000 }, async (t) => {
  const run = await runDemo(t);
  assert.equal(run.code, 0, `demo failed:\n${run.stdout}\n${run.stderr}`);
  const out = run.stdout;
  // Both ways a job's files reach a worker, as the client reports them.
  assert.match(out, /transfer: shared storage \(backend vast, user alice\)/);
  assert.match(out, /transfer: webrtc \(reason: worker workstation lacks backend vast\)/);
  // The worker resolved the reference under its own mount and gave sleap-nn the file it opened
  // (its frames embedded: no video to map, and never the laptop's mount).
  assert.match(out, /Video 0 of mouse-study\/labels\.slp: mouse-study\/labels\.slp\n/);
  assert.doesNotMatch(out, /Prefix map:/);
  assert.match(out, /Loading labels from mouse-study\/labels\.slp/);
  // The results, named as paths on the laptop's mount, and listed.
  const lines = out.split('\n').map((l) => l.trim());
  assert.ok(lines.includes(`${PROJECT}/models/centroid-v1`), 'the trained model folder is printed');
  assert.ok(lines.includes(`${PROJECT}/session1.mp4.predictions.slp`), 'the predictions file is printed');
  for (const name of ['best.ckpt', 'training_config.yaml', 'training_log.csv', 'session1.mp4.predictions.slp']) {
    assert.ok(lines.some((l) => new RegExp(`^\\d+ +${name.replaceAll('.', '\\.')}$`).test(l)), `${name} is listed with its size`);
  }
  assert.match(out, /Demo finished in \d+\.\d s\.\n$/);
  assertNothingLeft(run);
});

test('a failing step: exit 1, the step named, and still nothing left behind', { timeout: 330_000 }, async (t) => {
  // The sleap-nn stand-in fails like a real out-of-memory crash; the demo passes its knobs through.
  const run = await runDemo(t, { env: { FAKE_SLEAP_NN_FAIL: '1' } });
  assert.equal(run.code, 1, run.stdout);
  assert.match(run.stdout, /torch\.OutOfMemoryError/);
  assert.match(run.stdout, /demo failed: sleap-rtc train exited with code 1/);
  assert.match(run.stdout, /stopped every process and removed /);
  assertNothingLeft(run);
});

test('Ctrl-C during a job: the job is cancelled, every process stopped, the folder removed, exit 130', { timeout: 330_000 }, async (t) => {
  // Each epoch would take ten minutes, so the job is surely still running when Ctrl-C comes.
  const run = await runDemo(t, {
    env: { FAKE_SLEAP_NN_EPOCH_DELAY_MS: '600000' },
    interruptWhen: /Starting training loop/,
  });
  assert.equal(run.code, 130, run.stdout);
  assert.match(run.stdout, /Ctrl-C: stopping the demo's processes/);
  assert.match(run.stdout, /KeyboardInterrupt/, 'sleap-nn on the worker got the interrupt');
  assert.match(run.stdout, /cancelled/);
  assert.doesNotMatch(run.stdout, /demo failed/);
  assertNothingLeft(run);
});
