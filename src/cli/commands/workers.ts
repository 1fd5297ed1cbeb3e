/** `sleap-rtc workers`: who is in the room, what each worker can serve, and whether it is free now. */
import type { Command } from 'commander';
import { loadConfig, resolveSignaling } from '../../config/index.js';
import { UsageError } from '../../errors.js';
import { createLogger } from '../../log.js';
import { BackendNameSchema } from '../../protocol/common.js';
import type { WorkerStatusEntry } from '../../protocol/routing.js';
import type { GpuInfo } from '../../protocol/signaling.js';

interface WorkersOptions {
  room?: string;
  token?: string;
  server?: string;
  config?: string;
  storageBackend?: string;
  json?: boolean;
}

/** One row of the output; also the shape of each --json array item. */
export interface WorkerRow {
  peer_id: string;
  name: string | null;
  status: string | null;
  storage_backends: string[];
  job_types: string[];
  gpu: GpuInfo | null;
  slots: WorkerStatusEntry['slots'];
  /** Waiting requests in the room this worker could serve. */
  queued: number;
  /** It would get a new job now. */
  available: boolean;
}

export function register(program: Command): void {
  program
    .command('workers')
    .description('List the workers in a room: their storage backends, job types, GPU, free slots and the queue they could serve.')
    .option('--room <id>', 'room to look at (default: $SLEAP_RTC_ROOM, else [signaling] room_id in the config)')
    .option('--token <token>', "the room's token (default: $SLEAP_RTC_TOKEN, else [signaling] token)")
    .option('--server <url>', 'signaling server, or several comma-separated (processes on one Redis store), tried in turn (default: $SLEAP_RTC_SERVER, else [signaling] server_url, else http://127.0.0.1:8080)')
    .option('--config <file>', 'config file whose [signaling] section to use')
    .option('--storage-backend <name>', 'only the workers that have this storage backend, and how many of them are free now')
    .option('--json', 'print a JSON array of workers instead of a table')
    .action(async (opts: WorkersOptions) => {
      await workers(opts);
    });
}

async function workers(opts: WorkersOptions): Promise<void> {
  const backend = opts.storageBackend;
  if (backend !== undefined && !BackendNameSchema.safeParse(backend).success) {
    throw new UsageError(`--storage-backend takes a backend name (letters, digits, "_" or "-"), not "${backend}"; e.g. --storage-backend vast.`);
  }
  const log = createLogger({ name: 'workers' });
  const config = await loadConfig({ ...(opts.config !== undefined ? { configPath: opts.config } : {}), logger: log });
  const signaling = resolveSignaling(config, { server_url: opts.server, room_id: opts.room, token: opts.token });
  if (!signaling.room_id || !signaling.token) {
    const missing = [!signaling.room_id && '--room ID (or SLEAP_RTC_ROOM)', !signaling.token && '--token TOKEN (or SLEAP_RTC_TOKEN)'].filter(Boolean);
    throw new UsageError(`sleap-rtc workers needs ${missing.join(' and ')}: the room to look at, e.g. \`sleap-rtc workers --room ROOM --token TOKEN\`.`);
  }
  const [{ SignalingClient }, { getRoomStatus }] = await Promise.all([import('../../transport/signaling-client.js'), import('../../transport/routing-client.js')]);
  const client = await SignalingClient.connect({
    serverUrl: signaling.server_url,
    roomId: signaling.room_id,
    token: signaling.token,
    role: 'client',
    metadata: { name: 'sleap-rtc workers' },
    reconnect: false,
    logger: log,
  });
  let status;
  try {
    status = await getRoomStatus(client);
  } finally {
    await client.close();
  }
  const all = status.workers.map(toRow);
  const rows = backend === undefined ? all : all.filter((r) => r.storage_backends.includes(backend));
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(rows)}\n`);
    return;
  }
  const lines: string[] = [];
  if (rows.length > 0) lines.push(...formatTable(rows), '');
  lines.push(summary(rows, all, backend, status.queue_length, signaling.room_id));
  process.stdout.write(`${lines.join('\n')}\n`);
}

function toRow(w: WorkerStatusEntry): WorkerRow {
  const caps = w.metadata.capabilities;
  return {
    peer_id: w.peer_id,
    name: w.metadata.name ?? null,
    status: w.metadata.status ?? null,
    storage_backends: [...(caps?.storage_backends ?? [])],
    job_types: [...(caps?.job_types ?? [])],
    gpu: caps?.gpu ?? null,
    slots: w.slots,
    queued: w.queued,
    available: w.slots.free > 0,
  };
}

const COLUMNS: [string, (r: WorkerRow) => string][] = [
  ['NAME', (r) => r.name ?? '-'],
  ['PEER ID', (r) => r.peer_id],
  ['STATUS', (r) => r.status ?? '-'],
  ['BACKENDS', (r) => (r.storage_backends.length > 0 ? r.storage_backends.join(', ') : '(none: transfer jobs only)')],
  ['JOBS', (r) => (r.job_types.length > 0 ? r.job_types.join(',') : '-')],
  ['GPU', (r) => describeGpu(r.gpu)],
  ['SLOTS', (r) => `${r.slots.free}/${r.slots.total}`],
  ['QUEUED', (r) => String(r.queued)],
];

function formatTable(rows: WorkerRow[]): string[] {
  const cells = [COLUMNS.map(([title]) => title), ...rows.map((r) => COLUMNS.map(([, get]) => oneLine(get(r))))];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((row) => (row[i] as string).length)));
  return cells.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd(),
  );
}

function summary(rows: WorkerRow[], all: WorkerRow[], backend: string | undefined, queueLength: number, roomId: string): string {
  const free = rows.filter((r) => r.available).length;
  const queue = queueLength > 0 ? ` (${queueLength} request${queueLength === 1 ? '' : 's'} waiting in the room's queue)` : '';
  if (backend === undefined) {
    if (all.length === 0) return `No workers in room ${roomId}; start one with \`sleap-rtc worker\`.`;
    return `${free} of ${all.length} worker${all.length === 1 ? '' : 's'} ${verb(free, all.length)} available now${queue}`;
  }
  if (rows.length === 0) {
    const have = [...new Set(all.flatMap((r) => r.storage_backends))].sort();
    return `No worker in room ${roomId} has backend '${backend}' (backends in the room: ${have.length > 0 ? have.join(', ') : 'none'}); jobs on it would be sent as transfer jobs.`;
  }
  return `${free} of ${rows.length} worker${rows.length === 1 ? '' : 's'} with backend '${backend}' ${verb(free, rows.length)} available now${queue}`;
}

/** "1 of 3 workers is", "0 of 1 worker is", "2 of 3 workers are". */
function verb(free: number, total: number): string {
  return free === 1 || total === 1 ? 'is' : 'are';
}

function describeGpu(gpu: GpuInfo | null): string {
  if (gpu === null) return '-';
  const count = gpu.count !== undefined && gpu.count > 1 ? `${gpu.count}x ` : '';
  const memory = gpu.memory_mb !== undefined ? ` (${Math.round(gpu.memory_mb / 1024)} GB)` : '';
  return `${count}${gpu.name}${memory}`;
}

/** Names come from peers: keep one row on one line and free of terminal control characters. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}
