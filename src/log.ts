/**
 * Logging: pino, written to stderr so stdout stays free for command results (tables, --json).
 * Humans get one readable line per event; SLEAP_RTC_LOG_FORMAT=json gives pino's JSON lines for
 * log shippers on clusters. Level from SLEAP_RTC_LOG_LEVEL (default info).
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export interface LoggerOptions {
  name: string;
  level?: string;
  format?: 'pretty' | 'json';
  /** Where lines go; defaults to stderr (fd 2). */
  destination?: NodeJS.WritableStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  const level = opts.level ?? process.env.SLEAP_RTC_LOG_LEVEL ?? 'info';
  const format = opts.format ?? (process.env.SLEAP_RTC_LOG_FORMAT === 'json' ? 'json' : 'pretty');
  if (format === 'json') {
    return pino({ name: opts.name, level }, opts.destination ?? pino.destination({ fd: 2, sync: true }));
  }
  const stream = pretty({
    destination: opts.destination ?? 2,
    sync: true,
    colorize: opts.destination === undefined && process.stderr.isTTY === true,
    translateTime: 'HH:MM:ss',
    ignore: 'pid,hostname,name',
    messageFormat: '{if name}[{name}] {end}{msg}',
    hideObject: level !== 'debug' && level !== 'trace',
  });
  return pino({ name: opts.name, level }, stream);
}

/** A logger that drops everything; for library callers and tests that do not care. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
