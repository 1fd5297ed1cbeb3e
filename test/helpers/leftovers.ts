/**
 * The backstop for a test file that does not end: processes it started and never stopped (a test
 * that timed out before its clean-up, say) keep its process alive, and the whole run would wait for
 * it. test/setup.ts arms `armLeftoverKiller` after the file's last test; if the file is still
 * running when it fires, its remaining child processes are named on stderr, killed, and the file
 * exits with 1 so the run reports it instead of hanging.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** Every live descendant of `root` (children first found, then theirs), read from /proc. */
export function descendantsOf(root: number): { pid: number; command: string }[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readProc(`/proc/${name}/stat`);
    // The command name is in parentheses and may hold spaces or ')': the ppid follows the last ')'.
    const ppid = Number(stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!Number.isInteger(ppid)) continue;
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const found: { pid: number; command: string }[] = [];
  const queue = [...(children.get(root) ?? [])];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    const command = (readProc(`/proc/${pid}/cmdline`) ?? '').split('\0').join(' ').trim();
    found.push({ pid, command });
    queue.push(...(children.get(pid) ?? []));
  }
  return found;
}

function readProc(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined; // the process ended while we looked
  }
}

/** tsx's esbuild service: a child of every process that loads TypeScript, which never holds it open. */
const LOADER_SERVICE = /\/esbuild --service=/;

/** After `graceMs`, if this process still runs, kill what it left and exit 1. Does not keep it alive. */
export function armLeftoverKiller(graceMs: number, file = process.argv[1] ?? 'this test file'): void {
  const timer = setTimeout(() => {
    const left = descendantsOf(process.pid).filter((p) => !LOADER_SERVICE.test(p.command));
    const list = left.map((p) => `  ${p.pid} ${p.command.slice(0, 200)}`).join('\n');
    process.stderr.write(
      `${file} was still running ${graceMs / 1000} s after its last test` +
        (left.length > 0 ? `; killing the ${left.length} process(es) it left:\n${list}\n` : ' (open handles, no child process)\n'),
    );
    for (const p of left) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    process.exit(1);
  }, graceMs);
  timer.unref();
}
