import type { Command } from 'commander';
import { register as registerConfig } from './config.js';
import { register as registerFetch } from './fetch.js';
import { register as registerRoom } from './room.js';
import { register as registerServer } from './server.js';
import { register as registerTrack } from './track.js';
import { register as registerTrain } from './train.js';
import { register as registerWorker } from './worker.js';
import { register as registerWorkers } from './workers.js';

/** Each command module exports `register(program)`; add new ones here. */
export function registerCommands(program: Command): void {
  registerConfig(program);
  registerServer(program);
  registerRoom(program);
  registerWorker(program);
  registerTrain(program);
  registerTrack(program);
  registerFetch(program);
  registerWorkers(program);
}
