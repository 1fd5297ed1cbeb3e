/**
 * The default SignalingStore: plain maps in this process. Idle rooms are removed lazily (any read
 * of an expired room removes it) and by `sweepIdleRooms`, which the server calls on a timer; a
 * networked store would use its own key expiry instead.
 */
import type { Metadata, Role } from '../../protocol/signaling.js';
import { RoutingBook, routingMethods } from '../routing-book.js';
import { peerIdCandidate, type NewPeer, type PeerRecord, type RoomRecord, type SignalingStore, type StoreStats } from '../store.js';

export interface MemoryStoreOptions {
  /** Clock for idle expiry; tests of the store itself may pass their own. */
  now?: () => number;
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

export function createMemoryStore(opts: MemoryStoreOptions = {}): SignalingStore {
  const now = opts.now ?? Date.now;
  const rooms = new Map<string, RoomState>();
  const peers = new Map<string, PeerRecord>();
  const roleCounts: Record<Role, number> = { worker: 0, client: 0 };
  let closed = false;

  function isExpired(room: RoomState, at: number): boolean {
    return room.idleSince !== null && at - room.idleSince >= room.record.idle_ttl_ms;
  }

  /** The live room, removing it on the way when it has expired. */
  function liveRoom(roomId: string): RoomState | undefined {
    const room = rooms.get(roomId);
    if (room === undefined) return undefined;
    if (isExpired(room, now())) {
      rooms.delete(roomId);
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

  const routing = new RoutingBook({ listPeers: peersOf });

  return {
    async createRoom(record) {
      assertOpen();
      if (liveRoom(record.room_id) !== undefined) return false;
      rooms.set(record.room_id, { record: Object.freeze({ ...record }), peers: new Set(), idleSince: now() });
      return true;
    },

    async getRoom(roomId) {
      assertOpen();
      return liveRoom(roomId)?.record;
    },

    async addPeer(input: NewPeer) {
      assertOpen();
      const room = liveRoom(input.room_id);
      if (room === undefined) return undefined;
      const record: PeerRecord = Object.freeze({
        peer_id: freeId(input.preferred_id),
        room_id: input.room_id,
        role: input.role,
        metadata: deepFreeze(structuredClone(input.metadata)),
        node_id: input.node_id,
      });
      peers.set(record.peer_id, record);
      room.peers.add(record.peer_id);
      room.idleSince = null;
      roleCounts[record.role] += 1;
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
      peers.delete(peerId);
      roleCounts[record.role] -= 1;
      const room = rooms.get(record.room_id);
      if (room !== undefined) {
        room.peers.delete(peerId);
        if (room.peers.size === 0) room.idleSince = now();
      }
      return record;
    },

    async sweepIdleRooms() {
      assertOpen();
      const at = now();
      const gone: string[] = [];
      for (const [id, room] of rooms) {
        if (isExpired(room, at)) {
          rooms.delete(id);
          gone.push(id);
        }
      }
      return gone;
    },

    async stats(): Promise<StoreStats> {
      assertOpen();
      return { rooms: rooms.size, peers: { ...roleCounts } };
    },

    ...routingMethods(routing, assertOpen),

    async close() {
      closed = true;
      rooms.clear();
      peers.clear();
      routing.clear();
    },
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
