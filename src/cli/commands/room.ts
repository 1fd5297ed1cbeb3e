/** `sleap-rtc room create`: ask a signaling server for a new room and print its id and token. */
import type { Command } from 'commander';
import { loadConfig, resolveSignaling } from '../../config/index.js';
import { requestRoom } from '../../transport/room-client.js';
import { httpBaseUrl } from '../../transport/server-url.js';

interface CreateOptions {
  server?: string;
  config?: string;
  json?: boolean;
}

export function register(program: Command): void {
  const room = program.command('room').description('Manage rooms on a signaling server.');
  room
    .command('create')
    .description('Create a room; workers and clients that know its id and token can find each other in it.')
    .option('--server <url>', 'signaling server (default: $SLEAP_RTC_SERVER, else [signaling] server_url in the config, else http://127.0.0.1:8080)')
    .option('--config <file>', 'config file whose [signaling] section to use')
    .option('--json', 'print one JSON object instead of text')
    .action(async (opts: CreateOptions) => {
      await create(opts);
    });
}

async function create(opts: CreateOptions): Promise<void> {
  const config = await loadConfig(opts.config !== undefined ? { configPath: opts.config } : {});
  const serverUrl = httpBaseUrl(resolveSignaling(config, { server_url: opts.server }).server_url);
  const room = await requestRoom(serverUrl);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ ...room, server_url: serverUrl })}\n`);
    return;
  }
  process.stdout.write(
    [
      `Room created on ${serverUrl}`,
      `  room id: ${room.room_id}`,
      `  token:   ${room.token}`,
      room.idle_ttl_s === null ? '  kept until it is deleted, also while no peer is connected' : `  removed after ${describeSeconds(room.idle_ttl_s)} with no peer connected`,
      'Start a worker in this room with:',
      `  sleap-rtc worker --server ${serverUrl} --room ${room.room_id} --token ${room.token}`,
      '',
    ].join('\n'),
  );
}

function describeSeconds(s: number): string {
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}
