/** Errors raised while finding and validating the configuration file. */
import { SleapRtcError } from '../errors.js';

/** One thing wrong with the configuration: where (file + dotted key) and what to do about it. */
export interface ConfigProblem {
  /** The config file, or the environment variable the value came from. */
  file: string;
  /** Dotted key such as `storage.vast.base_path`; "" for the file as a whole. */
  path: string;
  /** A sentence that says what is wrong and how to fix it. */
  message: string;
}

export function formatProblem(p: ConfigProblem): string {
  return p.path ? `${p.file}: ${p.path}: ${p.message}` : `${p.file}: ${p.message}`;
}

/** Every problem found in one pass; nothing should start on a configuration that raised this. */
export class ConfigError extends SleapRtcError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const n = problems.length;
    const header = `the configuration has ${n} problem${n === 1 ? '' : 's'}:`;
    super('CONFIG_INVALID', [header, ...problems.map((p) => `  - ${formatProblem(p)}`)].join('\n'), {
      problems: problems.map((p) => ({ ...p })),
    });
    this.problems = Object.freeze(problems.map((p) => Object.freeze({ ...p })));
  }
}

export class ConfigNotFoundError extends SleapRtcError {
  readonly file: string;

  constructor(file: string, origin: string) {
    const drop = origin.startsWith('--') ? `leave ${origin} out` : `unset ${origin}`;
    super(
      'CONFIG_NOT_FOUND',
      `config file ${file} (from ${origin}) does not exist; check the path, or ${drop} to use the default search order`,
      { file, origin },
    );
    this.file = file;
  }
}
