/** `sleap-rtc server`: run the signaling server until SIGINT/SIGTERM. */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { UsageError } from '../../errors.js';
import { LIMITS } from '../../limits.js';
import { createLogger } from '../../log.js';

interface ServerOptions {
  host?: string;
  port?: string;
  config?: string;
  store?: string;
  roomsFile?: string;
}

/** Where the memory store keeps its rooms unless told otherwise: $XDG_STATE_HOME/sleap-rtc/rooms.json. */
export function defaultRoomsFile(env: NodeJS.ProcessEnv = process.env): string {
  const state = env.XDG_STATE_HOME !== undefined && env.XDG_STATE_HOME !== '' ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state');
  return join(state, 'sleap-rtc', 'rooms.json');
}

export function register(program: Command): void {
  program
    .command('server')
    .description('Run the signaling server that workers and clients meet through (HTTP API and WebSocket on one port).')
    .option('--host <host>', 'interface to listen on (default: [server] host in the config, else 127.0.0.1; 0.0.0.0 for all)')
    .option('--port <port>', 'port to listen on (default: [server] port in the config, else 8080; 0 picks a free port)')
    .option('--config <file>', 'config file whose [server] section to use')
    .option('--store <store>', 'where rooms, peers and the queue live: "memory" (default) or redis://HOST:PORT/DB, shared by every server process on it (default: [signaling] store in the config)')
    .option('--rooms-file <path>', 'memory store: keep rooms and tokens in this file across restarts ("" for none; default $XDG_STATE_HOME/sleap-rtc/rooms.json, [server] rooms_file)')
    .action(async (opts: ServerOptions) => {
      await runServer(opts);
    });
}

async function runServer(opts: ServerOptions): Promise<void> {
  const config = await loadConfig(opts.config !== undefined ? { configPath: opts.config } : {});
  const logger = createLogger({ name: 'signaling' });
  // Loaded here, not at start, so other commands (and --help) do not load the server.
  const [{ startSignalingServer }, { parseStoreSetting }] = await Promise.all([import('../../signaling/server.js'), import('../../signaling/stores/open.js')]);
  const storeSetting = parseStoreSetting(opts.store ?? config.server.store);
  const roomsFile = opts.roomsFile ?? config.server.rooms_file ?? defaultRoomsFile();
  const server = await startSignalingServer({
    storeSetting,
    ...(storeSetting.kind === 'memory' && roomsFile !== '' ? { roomsFile } : {}),
    maxPeersPerRoom: config.server.max_peers_per_room,
    roomCreateLimit: config.server.rooms_per_hour === 0 ? false : { burst: LIMITS.roomCreateBurst, perHour: config.server.rooms_per_hour },
    trustProxy: config.server.trust_proxy,
    host: opts.host ?? config.server.host,
    port: opts.port !== undefined ? parsePort(opts.port) : config.server.port,
    pingIntervalMs: config.server.ping_interval_s * 1000,
    maxPayloadBytes: config.server.max_payload_bytes,
    roomIdleTtlMs: config.server.room_idle_ttl_s * 1000,
    logger,
  });
  const where = storeSetting.kind === 'redis' ? `Redis ${server.store.location ?? ''}` : roomsFile !== '' ? `memory, rooms kept in ${roomsFile}` : 'memory only';
  logger.info(`store: ${where}`);
  // Tests and scripts read the port from this exact line.
  logger.info(`sleap-rtc signaling server listening on ${server.url} (WebSocket ${server.wsUrl})`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const stop = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(sig);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  logger.info(`${signal} received; closing connections`);
  await server.close();
}

function parsePort(text: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(port) || port > 65535) {
    throw new UsageError(`--port must be a number from 0 to 65535 (0 picks a free port), not "${text}"; e.g. --port 8080.`);
  }
  return port;
}
