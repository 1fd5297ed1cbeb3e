/** Running a child process to its end: the one collector behind runCli, runTool, Machine.run and runFake. */
import type { ChildProcess } from 'node:child_process';

/** How a child process ended and everything it wrote. */
export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Collects a just-spawned child's stdout and stderr (as UTF-8) until it closes. A hang guard, not a
 * timing: after `timeoutMs` the child is sent SIGKILL, which shows in the result as that signal.
 * Rejects only when the child could not be started.
 */
export function outputUntilClose(child: ChildProcess, timeoutMs: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
