import type { Command } from 'commander';
import { register as registerConfig } from './config.js';
import { register as registerRoom } from './room.js';
import { register as registerServer } from './server.js';

/** Each command module exports `register(program)`; add new ones here. */
export function registerCommands(program: Command): void {
  registerConfig(program);
  registerServer(program);
  registerRoom(program);
}
