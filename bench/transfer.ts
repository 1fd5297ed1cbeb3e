/**
 * File-transfer throughput on loopback, against the data channel it runs on.
 *
 *   npm run bench:transfer                 (256 MiB and 1 GiB)
 *   npm run bench:transfer -- --size 64    (MiB for the first case)  --skip-large  --sweep
 *
 * A real signaling server runs in this process; each side of each case is its own child process
 * (bench/transfer-peer.ts) registered in one room, so the peak RSS reported is per side.
 *  (a) baseline: node-datachannel's W3C polyfill alone, one in-memory chunk sent over and over
 *      with the project's chunk size and bufferedAmount thresholds;
 *  (b) this project: sendFile -> receiveTransfer of a generated file, disk to disk: SHA-256 pass
 *      over the source, transfer with flow control, hash on arrival, fsync, rename;
 *  (c) the same at 1 GiB. --sweep adds (b) with other chunk sizes and thresholds.
 * The ratio is (b)/(a) in MB/s over the whole sendFile call (hash pass included). The last line
 * of output is one JSON object.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LIMITS } from '../src/limits.js';
import { startSignalingServer } from '../src/signaling/server.js';
import type { PeerArgs } from './transfer-peer.js';
import { TS_LOADER } from '../test/helpers/cli.js';

const MIB = 1024 * 1024;
const PEER = fileURLToPath(new URL('./transfer-peer.ts', import.meta.url));
/** A side that has not finished by then is killed and the run fails. */
const CHILD_TIMEOUT_MS = 150_000;

const argv = process.argv.slice(2);
const sizeAt = argv.indexOf('--size');
const smallMiB = sizeAt >= 0 ? Number(argv[sizeAt + 1]) : 256;
if (!Number.isFinite(smallMiB) || smallMiB <= 0) {
  process.stderr.write('--size takes a number of MiB, e.g. --size 256\n');
  process.exit(2);
}
const skipLarge = argv.includes('--skip-large');
const sweep = argv.includes('--sweep');

type Tuning = Pick<PeerArgs, 'chunkBytes' | 'highWaterBytes' | 'lowWaterBytes' | 'windowBytes'>;
const DEFAULTS: Tuning = {
  chunkBytes: LIMITS.transferChunkBytes,
  highWaterBytes: LIMITS.transferBufferedHighBytes,
  lowWaterBytes: LIMITS.transferBufferedLowBytes,
  windowBytes: LIMITS.transferWindowBytes,
};

const children = new Set<ChildProcess>();

interface Side {
  /** Resolves with the receiver's peer id once it is registered. */
  ready: Promise<string>;
  result: Promise<Record<string, unknown>>;
}

function startSide(role: 'sender' | 'receiver', mode: 'raw' | 'file', args: PeerArgs): Side {
  const child = spawn(process.execPath, ['--import', TS_LOADER, PEER, role, mode, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  let onReady!: (id: string) => void;
  const ready = new Promise<string>((resolve) => (onReady = resolve));
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    const m = /\{"ready":"([^"]+)"\}/.exec(out);
    if (m) onReady(m[1] as string);
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
  const result = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      const last = out.trim().split('\n').pop() ?? '';
      if (code === 0 && last.startsWith('{"size"')) resolve(JSON.parse(last) as Record<string, unknown>);
      else reject(new Error(`${mode} ${role} exited (${code ?? signal}): ${err.trim() || out.trim()}`));
    });
  });
  result.catch(() => {});
  return { ready, result };
}

async function writeSized(file: string, bytes: number): Promise<void> {
  const chunk = randomFillSync(Buffer.alloc(Math.min(bytes, 16 * MIB)));
  const fh = await open(file, 'w');
  try {
    for (let written = 0; written < bytes; written += chunk.length) await fh.write(chunk, 0, Math.min(chunk.length, bytes - written));
  } finally {
    await fh.close();
  }
}

const mbps = (bytes: number, ms: number): number => Math.round((bytes / 1e6 / (ms / 1000)) * 10) / 10;
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

interface Measured {
  mbps: number;
  ms: number;
  /** WebRTC set-up, offer to open channel, as the sender saw it. */
  connect_ms: number;
  rss: { sender: number; receiver: number };
}

interface FileMeasured extends Measured {
  /** Throughput of the transfer proper (after the sender's hash pass). */
  wire_mbps: number;
  hash_ms: number;
}

const server = await startSignalingServer({ host: '127.0.0.1', port: 0, rateLimit: false });
const room = await server.createRoom();
const base = { serverUrl: server.url, roomId: room.room_id, token: room.token };
const root = await mkdtemp(path.join(os.tmpdir(), 'sleap-rtc-bench-transfer-'));

async function pair(mode: 'raw' | 'file', recvArgs: PeerArgs, sendArgs: Omit<PeerArgs, 'target'>): Promise<[Record<string, unknown>, Record<string, unknown>]> {
  const receiver = startSide('receiver', mode, recvArgs);
  const target = await Promise.race([receiver.ready, receiver.result.then(() => '')]);
  const sender = startSide('sender', mode, { ...sendArgs, target });
  return Promise.all([sender.result, receiver.result]);
}

async function raw(bytes: number, tuning: Tuning = DEFAULTS): Promise<Measured> {
  const [s, r] = await pair('raw', { ...base, ...tuning, bytes }, { ...base, ...tuning, bytes });
  if (r.size !== bytes) throw new Error(`raw: the receiver counted ${String(r.size)} of ${bytes} bytes`);
  const ms = s.total_ms as number;
  return { mbps: mbps(bytes, ms), ms: round(ms), connect_ms: round(s.connect_ms as number), rss: { sender: s.max_rss_mb as number, receiver: r.max_rss_mb as number } };
}

async function file(source: string, bytes: number, tuning: Tuning = DEFAULTS): Promise<FileMeasured> {
  const dest = await mkdtemp(path.join(root, 'recv-'));
  const [s, r] = await pair('file', { ...base, ...tuning, path: dest }, { ...base, ...tuning, path: source });
  const landed = await stat(r.path as string);
  if (s.sha256 !== r.sha256 || r.size !== bytes || landed.size !== bytes) {
    throw new Error(`file: sent ${String(s.size)} bytes (${String(s.sha256)}), received ${String(r.size)} (${String(r.sha256)}), on disk ${landed.size}`);
  }
  const left = await readdir(dest);
  if (left.length !== 1 || left[0] !== path.basename(r.path as string)) throw new Error(`file: the receiving folder holds ${JSON.stringify(left)}, not just the received file`);
  await rm(dest, { recursive: true, force: true });
  const ms = s.total_ms as number;
  return {
    mbps: mbps(bytes, ms),
    ms: round(ms),
    connect_ms: round(s.connect_ms as number),
    wire_mbps: mbps(bytes, s.wire_ms as number),
    hash_ms: round(s.hash_ms as number),
    rss: { sender: s.max_rss_mb as number, receiver: r.max_rss_mb as number },
  };
}

const describe = (t: Tuning): string =>
  `chunk ${t.chunkBytes / 1024} KiB, bufferedAmount high ${t.highWaterBytes / MIB} MiB / low ${t.lowWaterBytes / MIB} MiB, window ${t.windowBytes / MIB} MiB`;

const cleanup = async (): Promise<void> => {
  for (const c of children) c.kill('SIGKILL');
  await server.close();
  await rm(root, { recursive: true, force: true });
};
process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));

try {
  await mkdir(root, { recursive: true });
  const log = (line: string): void => void process.stdout.write(`${line}\n`);
  log(`bench:transfer on loopback, ${os.cpus().length} cores; ${describe(DEFAULTS)}`);
  log('');

  const cases: { label: string; bytes: number }[] = [{ label: `${smallMiB} MiB`, bytes: Math.round(smallMiB * MIB) }];
  if (!skipLarge) cases.push({ label: '1 GiB', bytes: 1024 * MIB });

  const results: { label: string; bytes: number; raw: Measured; file: FileMeasured; ratio: number }[] = [];
  for (const c of cases) {
    const source = path.join(root, `source-${c.bytes}.bin`);
    await writeSized(source, c.bytes);
    const a = await raw(c.bytes);
    const b = await file(source, c.bytes);
    const ratio = round(b.mbps / a.mbps, 2);
    results.push({ label: c.label, bytes: c.bytes, raw: a, file: b, ratio });
    log(`${c.label}`);
    log(`  (a) raw data channel, in memory:      ${a.mbps.toFixed(1).padStart(7)} MB/s  (${a.ms} ms)   peak RSS sender ${a.rss.sender} MB, receiver ${a.rss.receiver} MB`);
    log(`  (b) sendFile -> receiveTransfer:      ${b.mbps.toFixed(1).padStart(7)} MB/s  (${b.ms} ms)   peak RSS sender ${b.rss.sender} MB, receiver ${b.rss.receiver} MB`);
    log(`      of which the sender's SHA-256 pass ${b.hash_ms} ms; transfer alone ${b.wire_mbps} MB/s`);
    log(`      WebRTC set-up (offer to open channel): ${a.connect_ms} ms raw, ${b.connect_ms} ms sleap-rtc`);
    log(`  ratio (b)/(a): ${ratio.toFixed(2)}  (target >= 0.80)   transfer alone / (a): ${(b.wire_mbps / a.mbps).toFixed(2)}`);
    log('');
    if (c.bytes !== cases[0]?.bytes) await rm(source, { force: true });
  }

  const sweeps: { tuning: Tuning; file: FileMeasured; ratio: number }[] = [];
  const first = results[0];
  if (sweep && first) {
    const source = path.join(root, `source-${first.bytes}.bin`);
    const variants: Tuning[] = [
      { ...DEFAULTS, chunkBytes: 64 * 1024 },
      { ...DEFAULTS, chunkBytes: 128 * 1024 },
      { ...DEFAULTS, highWaterBytes: 4 * MIB, lowWaterBytes: 1 * MIB },
      { ...DEFAULTS, highWaterBytes: 32 * MIB, lowWaterBytes: 8 * MIB, windowBytes: 64 * MIB },
    ];
    log(`sweep, ${first.label}, against (a) with the defaults (${first.raw.mbps} MB/s):`);
    for (const tuning of variants) {
      const b = await file(source, first.bytes, tuning);
      const ratio = round(b.mbps / first.raw.mbps, 2);
      sweeps.push({ tuning, file: b, ratio });
      log(`  ${describe(tuning).padEnd(84)} ${b.mbps.toFixed(1).padStart(7)} MB/s  ratio ${ratio.toFixed(2)}  RSS ${b.rss.sender}/${b.rss.receiver} MB`);
    }
    log('');
  }

  const small = results[0] as (typeof results)[number];
  const large = results[1];
  const summary = {
    bench: 'transfer',
    size_bytes: small.bytes,
    chunk_bytes: DEFAULTS.chunkBytes,
    buffered_high_bytes: DEFAULTS.highWaterBytes,
    buffered_low_bytes: DEFAULTS.lowWaterBytes,
    window_bytes: DEFAULTS.windowBytes,
    raw_mbps: small.raw.mbps,
    transfer_mbps: small.file.mbps,
    transfer_wire_mbps: small.file.wire_mbps,
    hash_ms: small.file.hash_ms,
    ratio: small.ratio,
    peak_rss_mb: small.file.rss,
    raw_peak_rss_mb: small.raw.rss,
    large: large
      ? {
          size_bytes: large.bytes,
          raw_mbps: large.raw.mbps,
          transfer_mbps: large.file.mbps,
          transfer_wire_mbps: large.file.wire_mbps,
          hash_ms: large.file.hash_ms,
          ratio: large.ratio,
          peak_rss_mb: large.file.rss,
          raw_peak_rss_mb: large.raw.rss,
        }
      : null,
    connect_ms: results.flatMap((r) => [r.raw.connect_ms, r.file.connect_ms]).concat(sweeps.map((s) => s.file.connect_ms)),
    sweep: sweeps.map((s) => ({ ...s.tuning, transfer_mbps: s.file.mbps, ratio: s.ratio, peak_rss_mb: s.file.rss })),
  };
  log(JSON.stringify(summary));
} catch (err) {
  process.stderr.write(`bench:transfer failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
