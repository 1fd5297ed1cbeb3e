/** A real pino logger whose JSON lines are kept in memory, for tests that assert a log line was written. */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from '../../src/log.js';

export interface CapturedLog {
  logger: Logger;
  lines: { level: number; msg: string; [key: string]: unknown }[];
}

export function captureLogger(): CapturedLog {
  const lines: CapturedLog['lines'] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as CapturedLog['lines'][number]);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}
