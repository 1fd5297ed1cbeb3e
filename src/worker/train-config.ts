/**
 * The one fact the worker reads from a training config: how many epochs sleap-nn will run, so the
 * client can show "epoch N/M" and an ETA. sleap-nn's TrainerConfig (sleap_nn/config/trainer_config.py)
 * has `max_epochs: int = 100` directly under `trainer_config`; a deeper `max_epochs` (in a
 * sub-config) is not it. This reads only that line of the YAML, not the whole format.
 */
import { readFile } from 'node:fs/promises';

/** sleap-nn's default when the config does not say (TrainerConfig.max_epochs). */
export const SLEAP_NN_DEFAULT_MAX_EPOCHS = 100;

export function trainerMaxEpochs(yaml: string): number | undefined {
  const lines = yaml.split(/\r?\n/);
  const start = lines.findIndex((l) => /^trainer_config:\s*(#.*)?$/.test(l));
  if (start < 0) return undefined;
  let indent: string | null = null;
  for (const line of lines.slice(start + 1)) {
    if (/^\s*(#.*)?$/.test(line)) continue;
    const lead = /^(\s*)/.exec(line)?.[1] ?? '';
    if (lead === '') break;
    indent ??= lead;
    if (lead !== indent) continue;
    const m = /^\s*max_epochs:\s*(\d{1,9})\s*(#.*)?$/.exec(line);
    if (m) return Number(m[1]) || undefined;
  }
  return SLEAP_NN_DEFAULT_MAX_EPOCHS;
}

/** The epoch count a train job will run: the override if given, else the config's, else undefined when unreadable. */
export async function expectedEpochs(configFile: string, override: number | undefined): Promise<number | undefined> {
  if (override !== undefined) return override;
  const text = await readFile(configFile, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : trainerMaxEpochs(text);
}
