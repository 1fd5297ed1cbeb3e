/**
 * The embedded SignalingStore: plain maps in this process, optionally with its rooms and token
 * digests kept in a file (rooms-file.ts) so a restarted server knows its rooms. Peers, presence
 * and routing state are not kept: after a restart every peer registers again.
 *
 * Every method runs start to end without yielding before it changes anything, which is what makes
 * each one atomic on the single-threaded server; `updateRouting` runs the policy step
 * synchronously on the room's state. Idle rooms are removed lazily (any read of an expired room
 * removes it) and by `sweepIdleRooms`, which the server calls on a timer.
 */
import type { Metadata, Role } from '../../protocol/signaling.js';
import { deepFreeze } from '../routing-ops.js';
import { EMPTY_ROUTING_STATE, isEmptyRouting, nextDeadline, type RoomRoutingState } from '../routing-policy.js';
import { peerIdCandidate, RoomFullError, type NewPeer, type PeerRecord, type RoomRecord, type SignalingStore, type StoreStats } from '../store.js';
import { LIMITS } from '../../limits.js';
import { loadRoomsFile, RoomsFileWriter, type SavedState } from './rooms-file.js';

export interface MemoryStoreOptions {
  /** Clock for idle expiry; tests of the store itself may pass their own. */
  now?: () => number;
}

export interface PersistentMemoryStoreOptions extends MemoryStoreOptions {
  /** The rooms file; created when missing. */
  file: string;
}

interface RoomState {
  record: RoomRecord;
  /** Peer ids in join order (a Set keeps insertion order). */
  peers: Set<string>;
  /** When the room last became empty; null while it has peers. */
  idleSince: number | null;
}

/** Peer ids tried before falling back to a random suffix; only a crowd of same-named peers gets there. */
const MAX_SUFFIX_TRIES = 1000;

/** The embedded store without a file: everything is forgotten when the process ends. */
export function createMemoryStore(opts: MemoryStoreOptions = {}): SignalingStore {
  return buildMemoryStore(opts, { rooms: [], deleted: {} }, undefined);
}

/** The embedded store with its rooms in `file` (read now, written on every room change). */
export async function openMemoryStore(opts: PersistentMemoryStoreOptions): Promise<SignalingStore> {
  const saved = await loadRoomsFile(opts.file);
  return buildMemoryStore(opts, saved, new RoomsFileWriter(opts.file));
}

function buildMemoryStore(opts: MemoryStoreOptions, saved: SavedState, writer: RoomsFileWriter | undefined): SignalingStore {
  const now = opts.now ?? Date.now;
  const rooms = new Map<string, RoomState>();
  const peers = new Map<string, PeerRecord>();
  const nodes = new Map<string, { until: number; peers: Set<string> }>();
  const routing = new Map<string, RoomRoutingState>();
  /** room id -> its earliest routing deadline */
  const deadlines = new Map<string, number>();
  const roleCounts: Record<Role, number> = { worker: 0, client: 0 };
  /** Deleted or expired rooms: id -> when (kept LIMITS.roomTombstoneTtlMs). */
  const tombstones = new Map<string, number>();
  let closed = false;

  const loadedAt = now();
  for (const [id, at] of Object.entries(saved.deleted)) if (loadedAt - at < LIMITS.roomTombstoneTtlMs) tombstones.set(id, at);
  for (const r of saved.rooms) {
    const { idle_since_ms, ...record } = r;
    // A room that had peers when the server stopped starts its idle clock now: they may come back.
    rooms.set(record.room_id, { record: Object.freeze(record), peers: new Set(), idleSince: idle_since_ms ?? loadedAt });
  }

  function snapshot(): SavedState {
    return { rooms: [...rooms.values()].map((r) => ({ ...r.record, idle_since_ms: r.idleSince })), deleted: Object.fromEntries(tombstones) };
  }

  /** Writes the rooms file (when there is one); the promise settles once this state is on disk. */
  function save(): Promise<void> {
    return writer === undefined ? Promise.resolve() : writer.write(snapshot);
  }

  function isExpired(room: RoomState, at: number): boolean {
    return room.idleSince !== null && at - room.idleSince >= room.record.idle_ttl_ms;
  }

  function dropRoom(roomId: string): void {
    rooms.delete(roomId);
    tombstones.set(roomId, now());
    routing.delete(roomId);
    deadlines.delete(roomId);
  }

  /** The live room, removing it on the way when it has expired. */
  function liveRoom(roomId: string): RoomState | undefined {
    const room = rooms.get(roomId);
    if (room === undefined) return undefined;
    if (isExpired(room, now())) {
      dropRoom(roomId);
      void save();
      return undefined;
    }
    return room;
  }

  function freeId(preferred: string): string {
    for (let n = 1; n <= MAX_SUFFIX_TRIES; n++) {
      const id = peerIdCandidate(preferred, n);
      if (!peers.has(id)) return id;
    }
    for (;;) {
      const id = peerIdCandidate(preferred, MAX_SUFFIX_TRIES + 1 + Math.floor(Math.random() * 1e9));
      if (!peers.has(id)) return id;
    }
  }

  function assertOpen(): void {
    if (closed) throw new Error('memory store is closed');
  }

  function peersOf(roomId: string): PeerRecord[] {
    const out: PeerRecord[] = [];
    for (const id of liveRoom(roomId)?.peers ?? []) {
      const p = peers.get(id);
      if (p !== undefined) out.push(p);
    }
    return out;
  }

  function unlinkPeer(record: PeerRecord): void {
    peers.delete(record.peer_id);
    roleCounts[record.role] -= 1;
    nodes.get(record.node_id)?.peers.delete(record.peer_id);
  }

  const store: SignalingStore = {
    keepsRoomsUntilDeleted: false,

    describe() {
      return { kind: 'memory', connected: true, ...(writer !== undefined ? { location: writer.file } : {}) };
    },

    async createRoom(record) {
      assertOpen();
      if (liveRoom(record.room_id) !== undefined) return false;
      tombstones.delete(record.room_id);
      rooms.set(record.room_id, { record: Object.freeze({ ...record }), peers: new Set(), idleSince: now() });
      await save();
      return true;
    },

    async getRoom(roomId) {
      assertOpen();
      return liveRoom(roomId)?.record;
    },

    async deleteRoom(roomId) {
      assertOpen();
      const room = liveRoom(roomId);
      if (room === undefined) return undefined;
      const gone = peersOf(roomId);
      for (const p of gone) unlinkPeer(p);
      dropRoom(roomId);
      await save();
      return gone;
    },

    async wasDeleted(roomId) {
      assertOpen();
      if (liveRoom(roomId) !== undefined) return false;
      const at = tombstones.get(roomId);
      return at !== undefined && now() - at < LIMITS.roomTombstoneTtlMs;
    },

    async addPeer(input: NewPeer) {
      assertOpen();
      const room = liveRoom(input.room_id);
      if (room === undefined) return undefined;
      if (input.max_room_peers !== undefined && room.peers.size >= input.max_room_peers) throw new RoomFullError(input.max_room_peers);
      const record: PeerRecord = Object.freeze({
        peer_id: freeId(input.preferred_id),
        room_id: input.room_id,
        role: input.role,
        metadata: deepFreeze(structuredClone(input.metadata)),
        node_id: input.node_id,
      });
      peers.set(record.peer_id, record);
      room.peers.add(record.peer_id);
      const wasIdle = room.idleSince !== null;
      room.idleSince = null;
      roleCounts[record.role] += 1;
      let node = nodes.get(record.node_id);
      if (node === undefined) {
        node = { until: Infinity, peers: new Set() };
        nodes.set(record.node_id, node);
      }
      node.peers.add(record.peer_id);
      if (wasIdle) void save();
      return record;
    },

    async getPeer(peerId) {
      assertOpen();
      return peers.get(peerId);
    },

    async listPeers(roomId) {
      assertOpen();
      return peersOf(roomId);
    },

    async setMetadata(peerId, metadata: Metadata) {
      assertOpen();
      const old = peers.get(peerId);
      if (old === undefined) return undefined;
      const record: PeerRecord = Object.freeze({ ...old, metadata: deepFreeze(structuredClone(metadata)) });
      peers.set(peerId, record);
      return record;
    },

    async removePeer(peerId) {
      assertOpen();
      const record = peers.get(peerId);
      if (record === undefined) return undefined;
      unlinkPeer(record);
      const room = rooms.get(record.room_id);
      if (room !== undefined) {
        room.peers.delete(peerId);
        if (room.peers.size === 0) {
          room.idleSince = now();
          void save();
        }
      }
      return record;
    },

    async sweepIdleRooms() {
      assertOpen();
      const at = now();
      const gone: string[] = [];
      for (const [id, deletedAt] of tombstones) if (at - deletedAt >= LIMITS.roomTombstoneTtlMs) tombstones.delete(id);
      for (const [id, room] of rooms) {
        if (isExpired(room, at)) {
          dropRoom(id);
          gone.push(id);
        }
      }
      if (gone.length > 0) await save();
      return gone;
    },

    async stats(): Promise<StoreStats> {
      assertOpen();
      return { rooms: rooms.size, peers: { ...roleCounts } };
    },

    async heartbeat(nodeId, nowMs, ttlMs) {
      assertOpen();
      const node = nodes.get(nodeId);
      if (node === undefined) nodes.set(nodeId, { until: nowMs + ttlMs, peers: new Set() });
      else node.until = nowMs + ttlMs;
    },

    async deadNodes(nowMs) {
      assertOpen();
      return [...nodes].filter(([, n]) => n.until < nowMs).map(([id]) => id);
    },

    async isNodeAlive(nodeId, nowMs) {
      assertOpen();
      const node = nodes.get(nodeId);
      return node !== undefined && node.until >= nowMs;
    },

    async nodePeers(nodeId) {
      assertOpen();
      return [...(nodes.get(nodeId)?.peers ?? [])];
    },

    async forgetNode(nodeId) {
      assertOpen();
      nodes.delete(nodeId);
    },

    async updateRouting(roomId, step) {
      assertOpen();
      const { state, result } = step(routing.get(roomId) ?? EMPTY_ROUTING_STATE, peersOf(roomId));
      if (state !== undefined) {
        if (isEmptyRouting(state) || !rooms.has(roomId)) routing.delete(roomId);
        else routing.set(roomId, state);
        const next = nextDeadline(state);
        if (next === null || !rooms.has(roomId)) deadlines.delete(roomId);
        else deadlines.set(roomId, next);
      }
      return result;
    },

    async readRouting(roomId) {
      assertOpen();
      return routing.get(roomId) ?? EMPTY_ROUTING_STATE;
    },

    async dueRoutingRooms(nowMs) {
      assertOpen();
      return [...deadlines].filter(([, at]) => at <= nowMs).map(([id]) => id);
    },

    async ping() {
      assertOpen();
    },

    async close() {
      if (closed) return;
      closed = true;
      await writer?.flush();
      rooms.clear();
      peers.clear();
      routing.clear();
      deadlines.clear();
      nodes.clear();
    },
  };
  return store;
}
