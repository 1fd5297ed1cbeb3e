/**
 * Finding, reading and validating the configuration. Everything is checked in one pass and every
 * problem is reported together, so a user fixes the file once rather than once per error; the
 * result is frozen, and nothing starts on a file that raised ConfigError.
 */
import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { silentLogger, type Logger } from '../log.js';
import { applySharedStorageRoot, type StorageOrigin } from './compat.js';
import { ConfigError, ConfigNotFoundError, type ConfigProblem } from './errors.js';
import { deepFreeze, type DeepReadonly } from './freeze.js';
import { issuesToProblems } from './problems.js';
import { resolveStoreKey } from './store-key.js';
import { configSchema, expandHome, storageSectionSchema, type ConfigData, type StorageBackendConfig } from './schema.js';

export const CONFIG_ENV_VAR = 'SLEAP_RTC_CONFIG';
export const CWD_CONFIG_NAME = 'sleap-rtc.toml';

export type SleapRtcConfig = DeepReadonly<
  ConfigData & {
    /** Absolute path of the file that was read; null when none was found and defaults apply. */
    config_file: string | null;
    /** Where `storage` came from: the file, the SHARED_STORAGE_ROOT fallback, or nowhere. */
    storage_origin: StorageOrigin;
  }
>;

export interface LoadConfigOptions {
  /** `--config FILE`: must exist. */
  configPath?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  homeDir?: string;
  logger?: Logger;
}

export interface ConfigLocation {
  /** The file to read, or null for "none found, use defaults". */
  file: string | null;
  /** How it was chosen, for messages: "--config", "SLEAP_RTC_CONFIG", "./sleap-rtc.toml", ... */
  origin: string;
  /** Every place looked at, in order (for "no config file found" messages). */
  searched: string[];
}

/** The places a config file is looked for, in order, without touching the filesystem. */
export function configSearchOrder(opts: LoadConfigOptions = {}): { origin: string; file: string }[] {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const home = opts.homeDir ?? os.homedir();
  const order: { origin: string; file: string }[] = [];
  if (opts.configPath !== undefined) order.push({ origin: '--config', file: path.resolve(cwd, expandHome(opts.configPath, home)) });
  const fromEnv = env[CONFIG_ENV_VAR];
  if (fromEnv) order.push({ origin: CONFIG_ENV_VAR, file: path.resolve(cwd, expandHome(fromEnv, home)) });
  order.push({ origin: `./${CWD_CONFIG_NAME}`, file: path.join(cwd, CWD_CONFIG_NAME) });
  order.push({ origin: '~/.config/sleap-rtc/config.toml', file: path.join(home, '.config', 'sleap-rtc', 'config.toml') });
  return order;
}

/**
 * The config file to use: `--config` (must exist), then $SLEAP_RTC_CONFIG (must exist; "" means
 * unset), then ./sleap-rtc.toml, then ~/.config/sleap-rtc/config.toml. Explicitly named files
 * that are missing are an error rather than a silent fall-through to defaults.
 */
export async function findConfigFile(opts: LoadConfigOptions = {}): Promise<ConfigLocation> {
  const searched: string[] = [];
  for (const { origin, file } of configSearchOrder(opts)) {
    searched.push(file);
    const explicit = origin === '--config' || origin === CONFIG_ENV_VAR;
    let isFile: boolean;
    try {
      isFile = (await stat(file)).isFile();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        if (explicit) throw new ConfigNotFoundError(file, origin);
        continue;
      }
      throw new ConfigError([{ file, path: '', message: `cannot be read (${code ?? String(err)}); check its permissions` }]);
    }
    if (!isFile) throw new ConfigError([{ file, path: '', message: 'is not a regular file; give the path of a .toml file' }]);
    return { file, origin, searched };
  }
  return { file: null, origin: 'defaults', searched };
}

/** Find, read and validate the configuration. Throws ConfigNotFoundError or ConfigError. */
export async function loadConfig(opts: LoadConfigOptions = {}): Promise<SleapRtcConfig> {
  const location = await findConfigFile(opts);
  const env = opts.env ?? process.env;
  const homeDir = opts.homeDir ?? os.homedir();
  if (location.file === null) return buildConfig({}, null, env, homeDir, opts.logger);
  let text: string;
  try {
    text = await readFile(location.file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new ConfigError([{ file: location.file, path: '', message: `cannot be read (${code}); check its permissions` }]);
  }
  return parseConfig(text, location.file, env, homeDir, opts.logger);
}

/** Validate TOML text as if read from `source` (a file name used in messages). */
export function parseConfig(
  text: string,
  source: string,
  env: NodeJS.ProcessEnv = process.env,
  homeDir: string = os.homedir(),
  logger?: Logger,
): SleapRtcConfig {
  return buildConfig(parseTomlText(text, source), source, env, homeDir, logger);
}

function parseTomlText(text: string, source: string): Record<string, unknown> {
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    // smol-toml's message is "Invalid TOML document: <reason>" followed by a code excerpt.
    const reason = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document:\s*/, '');
    throw new ConfigError([
      { file: source, path: '', message: `TOML syntax error at line ${err.line}, column ${err.column}: ${reason}` },
    ]);
  }
}

function buildConfig(
  raw: Record<string, unknown>,
  source: string | null,
  env: NodeJS.ProcessEnv,
  homeDir: string,
  logger: Logger = silentLogger(),
): SleapRtcConfig {
  const ctx = { homeDir };
  const schema = configSchema(ctx);
  const parsed = schema.safeParse(raw, { reportInput: true });
  const problems: ConfigProblem[] = parsed.success
    ? []
    : issuesToProblems(parsed.error.issues, source ?? 'defaults', schema, raw);
  const compat = applySharedStorageRoot(parsed.success ? parsed.data.storage : {}, hasEntries(raw.storage), {
    ...ctx,
    env,
    source,
    logger,
  });
  problems.push(...compat.problems);
  const store = parsed.success ? resolveStoreKey(parsed.data.signaling.store, parsed.data.server.store, source) : undefined;
  problems.push(...(store?.problems ?? []));
  if (!parsed.success || problems.length) throw new ConfigError(problems);
  return deepFreeze({
    ...parsed.data,
    server: { ...parsed.data.server, store: (store as NonNullable<typeof store>).store },
    storage: compat.storage,
    config_file: source,
    storage_origin: compat.origin,
  });
}

/** True for a non-empty table: `[storage.x]` sections exist (even if they are invalid). */
function hasEntries(v: unknown): boolean {
  return v !== null && typeof v === 'object' && Object.keys(v).length > 0;
}

export interface StorageSectionOptions {
  /** Name used in messages (a file name). */
  source?: string;
  env?: NodeJS.ProcessEnv;
  homeDir?: string;
  logger?: Logger;
}

/**
 * Validate a `[storage]` table on its own (as parsed from TOML, i.e. `{ vast: { base_path } }`),
 * applying the SHARED_STORAGE_ROOT fallback when `env` is given. Throws ConfigError.
 */
export function parseStorageSection(
  raw: unknown,
  opts: StorageSectionOptions = {},
): { backends: DeepReadonly<Record<string, StorageBackendConfig>>; origin: StorageOrigin } {
  const source = opts.source ?? 'storage configuration';
  const ctx = { homeDir: opts.homeDir ?? os.homedir() };
  const schema = storageSectionSchema(ctx);
  const parsed = schema.safeParse(raw ?? {}, { reportInput: true });
  const problems = parsed.success
    ? []
    : issuesToProblems(parsed.error.issues, source, schema, raw).map((p) => ({ ...p, path: p.path ? `storage.${p.path}` : 'storage' }));
  const compat = applySharedStorageRoot(parsed.success ? parsed.data : {}, hasEntries(raw), {
    ...ctx,
    env: opts.env ?? {},
    source,
    logger: opts.logger ?? silentLogger(),
  });
  problems.push(...compat.problems);
  if (!parsed.success || problems.length) throw new ConfigError(problems);
  return { backends: deepFreeze(compat.storage), origin: compat.origin };
}
