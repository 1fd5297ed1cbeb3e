/** `sleap-rtc server` as a real child process: started, its listening line awaited, killed after the test. */
import type { TestContext } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { spawnCli } from '../helpers/cli.js';

const LISTENING = /listening on (http:\/\/\S+) \(WebSocket (ws:\/\/\S+)\)/;

export interface RunningServer {
  child: ChildProcess;
  url: string;
  wsUrl: string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `sleap-rtc server ...args` and resolves once it prints its listening line (the timeout is a hang guard: a loaded 2-core machine takes seconds to start a CLI). */
export async function startCliServer(t: TestContext, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunningServer> {
  const child = spawnCli(['server', ...args], { env });
  let stderr = '';
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exit;
    }
  });
  child.stdout?.resume();
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line within 120 s; stderr: ${stderr}`)), 120_000);
    const check = (): void => {
      const m = LISTENING.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stderr?.on('data', check);
    void exit.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before listening; stderr: ${stderr}`));
    });
  });
  return { child, url: match[1] as string, wsUrl: match[2] as string, stderr: () => stderr, exit };
}

export async function createRoomOn(url: string): Promise<{ room_id: string; token: string }> {
  const res = await fetch(`${url}/rooms`, { method: 'POST' });
  if (res.status !== 201) throw new Error(`POST /rooms: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { room_id: string; token: string };
  return { room_id: body.room_id, token: body.token };
}
