/**
 * Reading from processes on simulated machines. The test process cannot reach a machine's network,
 * so machine processes report through stdout, one JSON object per line.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface JsonLines {
  /** The next JSON line; rejects if the process exits first or prints something that is not JSON. */
  next(): Promise<Record<string, unknown>>;
}

/** Reads `child`'s stdout as JSON lines, in order; lines that arrive before next() is called are kept. */
export function jsonLines(child: ChildProcess): JsonLines {
  if (child.stdout === null) throw new Error('the process has no stdout pipe (spawn it with stdio "pipe")');
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const lines: string[] = [];
  const waiters: { resolve: (l: string) => void; reject: (e: Error) => void }[] = [];
  let ended: Error | undefined;
  const rl = createInterface({ input: child.stdout });
  rl.on('line', (line) => {
    const w = waiters.shift();
    if (w === undefined) lines.push(line);
    else w.resolve(line);
  });
  child.once('close', (code, signal) => {
    ended = new Error(`process exited (${signal ?? String(code)}) before the next line; stderr: ${stderr.trim()}`);
    for (const w of waiters.splice(0)) w.reject(ended);
  });
  return {
    async next() {
      const line =
        lines.shift() ??
        (await new Promise<string>((resolve, reject) => {
          if (ended !== undefined) reject(ended);
          else waiters.push({ resolve, reject });
        }));
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`expected a JSON line, got: ${line}`);
      }
    },
  };
}

/** Resolves when `child` has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}
