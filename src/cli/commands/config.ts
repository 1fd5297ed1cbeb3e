/** `sleap-rtc config check`: show which config file is used, whether it is valid, and how each backend looks. */
import type { Command } from 'commander';
import { ConfigError, ConfigNotFoundError, configSearchOrder, findConfigFile, loadConfig, type ConfigProblem, type SleapRtcConfig } from '../../config/index.js';
import { createLogger } from '../../log.js';
import type { BackendHealth } from '../../storage/index.js';

interface CheckOptions {
  config?: string;
  json?: boolean;
}

interface BackendReport {
  name: string;
  base_path: string;
  type: string;
  description: string;
  user_subdir: string | null;
  health: BackendHealth;
}

export function register(program: Command): void {
  const config = program.command('config').description('Inspect the sleap-rtc configuration.');
  config
    .command('check')
    .description('Validate the config file and check that each storage backend is mounted and usable.')
    .option('--config <file>', 'config file to check (default: $SLEAP_RTC_CONFIG, ./sleap-rtc.toml, ~/.config/sleap-rtc/config.toml)')
    .option('--json', 'print one JSON object instead of text')
    .action(async (opts: CheckOptions) => {
      await check(opts);
    });
}

async function check(opts: CheckOptions): Promise<void> {
  const loadOpts = { ...(opts.config !== undefined ? { configPath: opts.config } : {}), logger: createLogger({ name: 'config' }) };
  let file: string | null = null;
  let config: SleapRtcConfig;
  try {
    file = (await findConfigFile(loadOpts)).file;
    config = await loadConfig(loadOpts);
  } catch (err) {
    if (!opts.json) {
      if (file) process.stdout.write(`config file: ${file}\n`);
      throw err;
    }
    if (err instanceof ConfigNotFoundError) {
      emitJson({ config_file: err.file, valid: false, problems: [{ file: err.file, path: '', message: err.message }], backends: [] });
    } else if (err instanceof ConfigError) {
      emitJson({ config_file: file, valid: false, problems: err.problems, backends: [] });
    } else {
      throw err;
    }
    process.exitCode = 2;
    return;
  }

  const { StorageConfig } = await import('../../storage/index.js');
  const storage = StorageConfig.fromConfig(config);
  const backends: BackendReport[] = await Promise.all(
    storage.backends().map(async (b) => ({
      name: b.name,
      base_path: b.basePath,
      type: b.type,
      description: b.description,
      user_subdir: b.userSubdir ?? null,
      health: await b.health(),
    })),
  );
  if (opts.json) {
    emitJson({ config_file: config.config_file, valid: true, problems: [], storage_origin: config.storage_origin, backends });
    return;
  }
  printText(config, backends, opts);
}

function emitJson(report: {
  config_file: string | null;
  valid: boolean;
  problems: readonly ConfigProblem[];
  storage_origin?: string;
  backends: BackendReport[];
}): void {
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

function status(h: BackendHealth): string {
  if (!h.error) return 'ok';
  return h.exists ? `warning: ${h.error}` : `missing: ${h.error}`;
}

function printText(config: SleapRtcConfig, backends: BackendReport[], opts: CheckOptions): void {
  const out: string[] = [];
  if (config.config_file) {
    out.push(`config file: ${config.config_file}`);
  } else {
    out.push('no config file found; using defaults. Looked in, in order:');
    for (const { origin, file } of configSearchOrder(opts.config !== undefined ? { configPath: opts.config } : {})) {
      out.push(`  ${origin.padEnd(34)} ${file}`);
    }
  }
  if (backends.length === 0) {
    out.push('storage backends: none configured; add a [storage.<name>] section with base_path (see config.example.toml)');
  } else {
    const from = config.storage_origin === 'SHARED_STORAGE_ROOT' ? ' (from SHARED_STORAGE_ROOT)' : '';
    out.push(`storage backends${from}:`);
    const w = (k: (b: BackendReport) => string): number => Math.max(...backends.map((b) => k(b).length));
    const nameW = w((b) => b.name);
    const pathW = w((b) => b.base_path);
    const typeW = w((b) => `(${b.type})`);
    for (const b of backends) {
      out.push(`  ${b.name.padEnd(nameW)}  ${b.base_path.padEnd(pathW)}  ${`(${b.type})`.padEnd(typeW)}  ${status(b.health)}`);
      const extra = [b.user_subdir !== null ? `user folder: ${b.user_subdir || '(base itself)'}` : '', b.description].filter(Boolean);
      if (extra.length) out.push(`  ${' '.repeat(nameW)}  ${extra.join('; ')}`);
    }
  }
  const warnings = backends.filter((b) => b.health.error).length;
  out.push(
    warnings
      ? `configuration is valid; ${warnings} backend${warnings === 1 ? ' is' : 's are'} not usable as is (see above)`
      : 'configuration is valid',
  );
  process.stdout.write(`${out.join('\n')}\n`);
}
