/**
 * The Redis SignalingStore: rooms, peers, presence and each room's routing state in one Redis
 * database, so any number of server processes share them (`sleap-rtc server --store
 * redis://HOST:PORT/DB`). It only stores: every change is one Lua script (redis-scripts.ts), and
 * routing decisions are made by routing-policy.ts between a consistent read of the room
 * (READ_ROUTING) and a compare-and-set write (APPLY_ROUTING) that fails when the room's routing
 * state or peers changed meanwhile; the step is then run again on the fresh state. Both move only
 * what changed (redis-routing.ts): the queue is a sorted set, reservations and marks are hashes,
 * and a change log lets a process catch up on a few versions without reading the whole state.
 *
 * Failures: commands are not queued while Redis is unreachable; they fail at once (or after
 * LIMITS.storeCommandTimeoutMs) with StoreUnavailableError, and ioredis keeps reconnecting in the
 * background. Rooms and their token digests are kept until deleted (no idle expiry, unlike the
 * memory store), so they outlive every server process; across a Redis restart they persist as
 * long as Redis does (docs/signaling.md: AOF).
 */
import { Redis } from 'ioredis';
import { SleapRtcError } from '../../errors.js';
import { LIMITS } from '../../limits.js';
import type { Metadata, Role } from '../../protocol/signaling.js';
import { deepFreeze } from '../routing-ops.js';
import { EMPTY_ROUTING_STATE, isEmptyRouting, nextDeadline, type RoomRoutingState } from '../routing-policy.js';
import { peerIdCandidate, RoomFullError, StoreUnavailableError, type NewPeer, type PeerRecord, type RoomRecord, type SignalingStore, type StoreStats } from '../store.js';
import { applyChange, changeArgs, isNoChange, LOG_LENGTH, routingChange, stateFromFull, type RoutingChange } from './redis-routing.js';
import { ADD_PEER, APPLY_ROUTING, CREATE_ROOM, DELETE_ROOM, PEER_RECORD, READ_ROUTING, REMOVE_PEER } from './redis-scripts.js';

const PREFIX = 'srtc:';
/** Candidate ids sent to ADD_PEER per round trip. */
const CANDIDATES_PER_TRY = 16;
const MAX_ID_ROUNDS = 64;

type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;

/** READ_ROUTING's state answer. */
type ReadAnswer = ['full', string, string, string[], string[], string[]] | ['log', string[]];

interface RoomCache {
  v: string;
  pv: string;
  state: RoomRoutingState;
  peers: readonly PeerRecord[];
}

export interface RedisStoreOptions {
  /** redis://[:password@]host:port/db */
  url: string;
  now?: () => number;
}

export interface RedisConnection {
  readonly redis: Redis;
  /** The URL without its password, for logs and /health. */
  readonly safeUrl: string;
}

/** The URL without credentials. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    u.username = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return 'redis://(invalid URL)';
  }
}

/**
 * Connects, failing with STORE_UNAVAILABLE when Redis does not answer within
 * LIMITS.storeConnectTimeoutMs. Afterwards ioredis reconnects by itself with backoff.
 */
export async function connectRedis(url: string, name: string): Promise<RedisConnection> {
  const safeUrl = redactRedisUrl(url);
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    enableAutoPipelining: true,
    connectTimeout: LIMITS.storeConnectTimeoutMs,
    commandTimeout: LIMITS.storeCommandTimeoutMs,
    connectionName: name,
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 6), 2_000),
  });
  // ioredis emits 'error' on every failed reconnect attempt; the server logs state changes itself.
  redis.on('error', () => {});
  let lastError: Error | undefined;
  const onError = (err: Error): void => {
    lastError = err;
  };
  redis.on('error', onError);
  try {
    await withTimeout(redis.connect(), LIMITS.storeConnectTimeoutMs);
  } catch (err) {
    redis.disconnect();
    const why = (lastError as NodeJS.ErrnoException | undefined)?.code ?? (err as Error).message;
    throw new SleapRtcError(
      'STORE_UNAVAILABLE',
      `Cannot reach Redis at ${safeUrl} (${why}). Start redis-server there, or fix --store / [signaling] store.`,
      { store: safeUrl },
      { cause: err },
    );
  } finally {
    redis.off('error', onError);
  }
  return { redis, safeUrl };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

export async function openRedisStore(opts: RedisStoreOptions): Promise<SignalingStore & { readonly connection: RedisConnection }> {
  const connection = await connectRedis(opts.url, 'sleap-rtc-store');
  // Rooms are kept until deleted; an older version's idle-expiry index is not used any more.
  await connection.redis.del(`${PREFIX}idle`).catch(() => {});
  return createRedisStore(connection, opts.now ?? Date.now);
}

function createRedisStore(connection: RedisConnection, now: () => number): SignalingStore & { readonly connection: RedisConnection } {
  const { redis, safeUrl } = connection;
  const script = (lua: string, keys: number): ScriptCall => {
    const name = `srtc${Math.abs(hashCode(lua))}`;
    redis.defineCommand(name, { lua, numberOfKeys: keys });
    const fn = (redis as unknown as Record<string, ScriptCall>)[name] as ScriptCall;
    return (...args) => fn.apply(redis, args);
  };
  const createRoomScript = script(CREATE_ROOM, 2);
  const deleteRoomScript = script(DELETE_ROOM, 6);
  const addPeerScript = script(ADD_PEER, 3);
  const removePeerScript = script(REMOVE_PEER, 1);
  const peerRecordScript = script(PEER_RECORD, 0);
  const readRoutingScript = script(READ_ROUTING, 7);
  const applyRoutingScript = script(APPLY_ROUTING, 7);
  /** Parsed routing state and peers per room, reused while their versions are unchanged. */
  const cache = new Map<string, RoomCache>();
  let closed = false;

  const k = {
    rooms: `${PREFIX}rooms`,
    due: `${PREFIX}due`,
    count: `${PREFIX}count`,
    nodes: `${PREFIX}nodes`,
    room: (r: string) => `${PREFIX}room:${r}`,
    peers: (r: string) => `${PREFIX}peers:${r}`,
    routing: (r: string) => `${PREFIX}routing:${r}`,
    /** The routing keys of a room, in the order READ_ROUTING and APPLY_ROUTING take them after the room's. */
    routingKeys: (r: string) => [`${PREFIX}rq:${r}`, `${PREFIX}rr:${r}`, `${PREFIX}rl:${r}`, `${PREFIX}rlog:${r}`],
    npeers: (n: string) => `${PREFIX}npeers:${n}`,
  };

  /** Every command goes through here: a lost connection becomes StoreUnavailableError. */
  async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (closed) throw new Error('redis store is closed');
    try {
      return await fn();
    } catch (err) {
      if (err instanceof Error && err.name === 'ReplyError') throw err;
      throw new StoreUnavailableError(`Redis at ${safeUrl} did not answer (${what}: ${(err as Error).message})`, { cause: err });
    }
  }

  function peerFrom(peerId: string, roomId: string, value: string): PeerRecord {
    const t1 = value.indexOf('\t');
    const t2 = value.indexOf('\t', t1 + 1);
    const t3 = value.indexOf('\t', t2 + 1);
    return deepFreeze({
      peer_id: peerId,
      room_id: roomId,
      role: value.slice(t1 + 1, t2) as Role,
      node_id: value.slice(t2 + 1, t3),
      metadata: JSON.parse(value.slice(t3 + 1)) as Metadata,
    });
  }

  function peersFrom(roomId: string, flat: readonly string[]): PeerRecord[] {
    const rows: { seq: number; rec: PeerRecord }[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      const id = flat[i] as string;
      const value = flat[i + 1] as string;
      rows.push({ seq: Number.parseInt(value, 10), rec: peerFrom(id, roomId, value) });
    }
    rows.sort((a, b) => a.seq - b.seq);
    return rows.map((r) => r.rec);
  }

  /**
   * A consistent read of the room's routing state and peers. The parsed copy is cached per
   * version: Redis sends nothing while it is current, only the changes since it while the room's
   * change log holds them, and the whole state otherwise.
   */
  async function readRoom(roomId: string, useCache = true): Promise<RoomCache> {
    const cached = useCache ? cache.get(roomId) : undefined;
    const [v, pv, st, flat] = (await call('read room', () =>
      readRoutingScript(k.routing(roomId), k.room(roomId), k.peers(roomId), ...k.routingKeys(roomId), cached?.v ?? '', cached?.pv ?? ''),
    )) as [string, string, ReadAnswer | false | null, string[] | false | null];
    let state = cached?.state ?? EMPTY_ROUTING_STATE;
    if (Array.isArray(st) && st[0] === 'full') {
      state = stateFromFull(st[1], st[2], st[3], st[4], st[5]);
    } else if (Array.isArray(st) && st[0] === 'log') {
      let at = Number(cached?.v);
      for (const text of st[1]) {
        const change = JSON.parse(text) as RoutingChange;
        // A log that does not continue our copy (never expected): read the whole state instead.
        if (change.v !== at + 1) return readRoom(roomId, false);
        state = applyChange(state, change);
        at = change.v;
      }
    }
    const peers = Array.isArray(flat) ? peersFrom(roomId, flat) : (cached?.peers ?? []);
    const entry = { v, pv, state, peers };
    if (cache.size > 1_000) cache.clear();
    cache.set(roomId, entry);
    return entry;
  }

  return {
    connection,
    keepsRoomsUntilDeleted: true,

    describe() {
      return { kind: 'redis', connected: redis.status === 'ready', location: safeUrl };
    },

    async createRoom(record: RoomRecord) {
      const r = record.room_id;
      const created = await call('create room', () => createRoomScript(k.room(r), k.rooms, r, JSON.stringify(record), PREFIX));
      if (created === 1) cache.delete(r);
      return created === 1;
    },

    async getRoom(roomId) {
      const rec = await call('get room', () => redis.hget(k.room(roomId), 'rec'));
      if (rec === null) return undefined;
      return Object.freeze(JSON.parse(rec) as RoomRecord);
    },

    async deleteRoom(roomId) {
      const flat = (await call('delete room', () => deleteRoomScript(k.room(roomId), k.rooms, k.peers(roomId), k.routing(roomId), k.due, k.count, roomId, PREFIX, now(), LIMITS.roomTombstoneTtlMs))) as string[] | null;
      cache.delete(roomId);
      return Array.isArray(flat) ? peersFrom(roomId, flat) : undefined;
    },

    async wasDeleted(roomId) {
      const [tomb, rec] = await call('room deleted', () => Promise.all([redis.exists(`${PREFIX}deleted:${roomId}`), redis.hexists(k.room(roomId), 'rec')]));
      return rec === 0 && tomb === 1;
    },

    async addPeer(input: NewPeer) {
      const r = input.room_id;
      const metadata = JSON.stringify(input.metadata);
      for (let round = 0; round < MAX_ID_ROUNDS; round++) {
        const candidates: string[] = [];
        for (let i = 0; i < CANDIDATES_PER_TRY; i++) {
          const n = round < MAX_ID_ROUNDS - 1 ? round * CANDIDATES_PER_TRY + i + 1 : 100_000 + Math.floor(Math.random() * 1e9);
          candidates.push(peerIdCandidate(input.preferred_id, n));
        }
        const out = (await call('add peer', () =>
          addPeerScript(k.room(r), k.peers(r), k.count, r, input.max_room_peers ?? '', input.role, input.node_id, metadata, PREFIX, ...candidates),
        )) as [number, string?];
        if (out[0] === 0) return undefined;
        if (out[0] === -1) throw new RoomFullError(input.max_room_peers ?? 0);
        if (out[0] === 1) {
          return deepFreeze({ peer_id: out[1] as string, room_id: r, role: input.role, metadata: structuredClone(input.metadata), node_id: input.node_id });
        }
      }
      throw new StoreUnavailableError(`No free peer id near "${input.preferred_id}" after ${MAX_ID_ROUNDS * CANDIDATES_PER_TRY} tries.`);
    },

    async getPeer(peerId) {
      const out = (await call('get peer', () => peerRecordScript(peerId, PREFIX, ''))) as [string, string] | null;
      return out === null ? undefined : peerFrom(peerId, out[0], out[1]);
    },

    async listPeers(roomId) {
      // One small round trip while the room's peers are unchanged (the parsed list is cached per peers version).
      return (await readRoom(roomId)).peers;
    },

    async setMetadata(peerId, metadata) {
      const out = (await call('set metadata', () => peerRecordScript(peerId, PREFIX, JSON.stringify(metadata)))) as [string, string] | null;
      return out === null ? undefined : peerFrom(peerId, out[0], out[1]);
    },

    async removePeer(peerId) {
      const out = (await call('remove peer', () => removePeerScript(k.count, peerId, PREFIX))) as [string, string] | null;
      return out === null ? undefined : peerFrom(peerId, out[0], out[1]);
    },

    async sweepIdleRooms() {
      // Rooms in Redis are kept until deleted: nothing expires for sitting idle.
      return [];
    },

    async stats(): Promise<StoreStats> {
      const [rooms, counts] = await call('stats', () => Promise.all([redis.scard(k.rooms), redis.hmget(k.count, 'worker', 'client')]));
      return { rooms, peers: { worker: Number(counts[0] ?? 0), client: Number(counts[1] ?? 0) } };
    },

    async heartbeat(nodeId, nowMs, ttlMs) {
      await call('heartbeat', () => redis.zadd(k.nodes, nowMs + ttlMs, nodeId));
    },

    async deadNodes(nowMs) {
      return call('dead nodes', () => redis.zrangebyscore(k.nodes, '-inf', `(${nowMs}`));
    },

    async isNodeAlive(nodeId, nowMs) {
      const until = await call('node alive', () => redis.zscore(k.nodes, nodeId));
      return until !== null && Number(until) >= nowMs;
    },

    async nodePeers(nodeId) {
      return call('node peers', () => redis.smembers(k.npeers(nodeId)));
    },

    async forgetNode(nodeId) {
      await call('forget node', () => Promise.all([redis.zrem(k.nodes, nodeId), redis.del(k.npeers(nodeId))]));
    },

    async updateRouting(roomId, step) {
      for (let attempt = 1; ; attempt++) {
        const { v, pv, state, peers } = await readRoom(roomId);
        const out = step(state, peers);
        if (out.state === undefined) return out.result;
        const after = isEmptyRouting(out.state) ? EMPTY_ROUTING_STATE : out.state;
        const change = routingChange(state, after, Number(v) + 1);
        if (isNoChange(change, state)) return out.result;
        const next = nextDeadline(after);
        const written = await call('routing update', () =>
          applyRoutingScript(k.routing(roomId), k.room(roomId), k.due, ...k.routingKeys(roomId), v, pv, next ?? '', roomId, JSON.stringify(change), LOG_LENGTH, ...changeArgs(change)),
        );
        if (written === 1) {
          // Our own write is the newest version: keep it parsed for the next step.
          cache.set(roomId, { v: String(change.v), pv, state: after, peers });
          return out.result;
        }
        if (attempt >= LIMITS.storeUpdateMaxAttempts) {
          throw new StoreUnavailableError(`Room ${roomId} changed under ${attempt} routing updates in a row; try again.`);
        }
        // Another process changed the room: read its change and run the step again at once (some
        // process always wins a round, so this cannot live-lock); only a long run of conflicts
        // (many processes on one busy room) backs off a little.
        if (attempt >= 4) await new Promise((r) => setTimeout(r, Math.random() * Math.min(attempt, 20)));
      }
    },

    async readRouting(roomId) {
      return (await readRoom(roomId)).state;
    },

    async dueRoutingRooms(nowMs) {
      return call('due rooms', () => redis.zrangebyscore(k.due, '-inf', nowMs));
    },

    async ping() {
      await call('ping', () => redis.ping());
    },

    async close() {
      if (closed) return;
      closed = true;
      cache.clear();
      redis.disconnect();
    },
  };
}

function hashCode(text: string): number {
  let h = 0;
  for (let i = 0; i < text.length; i++) h = (Math.imul(31, h) + text.charCodeAt(i)) | 0;
  return h;
}
