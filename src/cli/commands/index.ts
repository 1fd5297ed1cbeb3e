import type { Command } from 'commander';
import { register as registerConfig } from './config.js';

/** Each command module exports `register(program)`; add new ones here. */
export function registerCommands(program: Command): void {
  registerConfig(program);
}
