/**
 * The demo's child processes: every `sleap-rtc` it starts is a real CLI process, tracked here so
 * that one call stops them all (on success, on failure and on Ctrl-C).
 *
 * Children run in their own process group (`detached`), so a Ctrl-C in the terminal reaches only
 * the demo, which then asks each child once to stop. Two SIGINTs in a row would make a worker quit
 * without cancelling its sleap-nn run; one, from here, lets it shut down properly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI_ENTRY = fileURLToPath(new URL('../src/cli/entry.ts', import.meta.url));
/** Absolute loader URL, so children may run in any working directory. */
const TS_LOADER = new URL('../scripts/ts-loader.mjs', import.meta.url).href;

/** How long a child gets to stop after SIGINT before it and its group are killed. */
const STOP_GRACE_MS = 8_000;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class StepFailed extends Error {}

export class CliProcess {
  readonly label: string;
  readonly child: ChildProcess;
  readonly exit: Promise<Exit>;
  #stdout = '';
  #stderr = '';
  /** Where the next `newStderrLines()` starts. */
  #mark = 0;
  readonly #watchers = new Set<() => void>();
  /** Where the `follow` callback has got to in stderr. */
  #followed = 0;

  constructor(label: string, child: ChildProcess) {
    this.label = label;
    this.child = child;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.#stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.#stderr += d;
      for (const w of [...this.#watchers]) w();
    });
    this.exit = new Promise((resolve) => {
      child.on('error', (err) => {
        this.#stderr += `\n(could not start: ${err.message})\n`;
        resolve({ code: null, signal: null });
      });
      child.on('close', (code, signal) => resolve({ code, signal }));
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined;
  }

  stdout(): string {
    return this.#stdout;
  }

  stderr(): string {
    return this.#stderr;
  }

  /** Complete stderr lines written since the last call (for "meanwhile on the worker" notes). */
  newStderrLines(): string[] {
    const end = this.#stderr.lastIndexOf('\n') + 1;
    const lines = this.#stderr.slice(this.#mark, end).split('\n').filter((l) => l !== '');
    this.#mark = Math.max(this.#mark, end);
    return lines;
  }

  /** Calls `fn` with each complete stderr line as it arrives (one follower at a time). */
  follow(fn: (line: string) => void): void {
    const emit = (): void => {
      const end = this.#stderr.lastIndexOf('\n') + 1;
      if (end <= this.#followed) return;
      for (const l of this.#stderr.slice(this.#followed, end).split('\n').slice(0, -1)) fn(l);
      this.#followed = end;
    };
    this.#watchers.add(emit);
    emit();
    // A last line without a newline still belongs to the output.
    void this.exit.then(() => {
      this.#watchers.delete(emit);
      emit();
      const rest = this.#stderr.slice(this.#followed);
      this.#followed = this.#stderr.length;
      if (rest !== '') fn(rest);
    });
  }

  /** Resolves with the first match of `pattern` on stderr; fails if the process exits or time runs out first. */
  waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#watchers.delete(check);
        fn();
      };
      const check = (): void => {
        const m = pattern.exec(this.#stderr);
        if (m) finish(() => resolve(m));
      };
      const timer = setTimeout(
        () => finish(() => reject(new StepFailed(`${this.label} did not print ${String(pattern)} within ${timeoutMs / 1000} s`))),
        timeoutMs,
      );
      void this.exit.then((e) =>
        finish(() => reject(new StepFailed(`${this.label} exited (${e.signal ?? `code ${String(e.code)}`}) before printing ${String(pattern)}`))),
      );
      this.#watchers.add(check);
      check();
    });
  }

  /** Asks the process to stop (one SIGINT, as Ctrl-C would), then kills its group after the grace time. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGINT');
    const timer = setTimeout(() => this.#killGroup(), STOP_GRACE_MS);
    await this.exit;
    clearTimeout(timer);
  }

  #killGroup(): void {
    const pid = this.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      this.child.kill('SIGKILL');
    }
  }
}

export class ProcessSet {
  readonly #all: CliProcess[] = [];
  readonly #env: NodeJS.ProcessEnv;

  /** `env`: the environment every child starts from (the demo strips the user's SLEAP_RTC_* settings). */
  constructor(env: NodeJS.ProcessEnv) {
    this.#env = env;
  }

  /** Starts `sleap-rtc ...args` (the CLI from source, through scripts/ts-loader.mjs) and tracks it. */
  start(label: string, args: readonly string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): CliProcess {
    const child = spawn(process.execPath, ['--import', TS_LOADER, CLI_ENTRY, ...args], {
      cwd: opts.cwd,
      env: { ...this.#env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const p = new CliProcess(label, child);
    this.#all.push(p);
    return p;
  }

  /** Runs `sleap-rtc ...args` to completion; a run that takes longer than `timeoutMs` is stopped and fails. */
  async run(
    label: string,
    args: readonly string[],
    opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; onStderrLine?: (line: string) => void },
  ): Promise<CliProcess & { result: Exit }> {
    const p = this.start(label, args, opts);
    if (opts.onStderrLine) p.follow(opts.onStderrLine);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void p.stop();
    }, opts.timeoutMs ?? 60_000);
    const result = await p.exit;
    clearTimeout(timer);
    if (timedOut) throw new StepFailed(`${label} took longer than ${(opts.timeoutMs ?? 60_000) / 1000} s and was stopped`);
    return Object.assign(p, { result });
  }

  /** Stops every process still running, newest first (clients, then workers, then the server). */
  async stopAll(): Promise<void> {
    for (const p of [...this.#all].reverse()) await p.stop();
  }

  /** Processes that were started and have not exited (for the last check before the temp dir goes). */
  stillRunning(): CliProcess[] {
    return this.#all.filter((p) => p.running);
  }
}
