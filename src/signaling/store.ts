/**
 * All signaling state (rooms, peers, presence, each room's routing state) sits behind this one
 * interface, so several server processes can share it (stores/redis.ts) while the embedded
 * store (stores/memory.ts) stays the default. Shaped like socket.io's ClusterAdapter: a store only
 * stores, atomically per room; every routing rule is in routing-policy.ts, run inside
 * `updateRouting`. Nothing here knows about sockets.
 *
 * Records handed out are frozen snapshots; changing state goes through the methods.
 */
import type { Metadata, Role } from '../protocol/signaling.js';
import type { RoomRoutingState } from './routing-policy.js';

export interface RoomRecord {
  readonly room_id: string;
  /** SHA-256 of the room token, hex. The token itself is never stored. */
  readonly token_sha256: string;
  readonly created_at_ms: number;
  /** The room is removed once it has had no peer for this long (a store that keeps rooms until deleted ignores it). */
  readonly idle_ttl_ms: number;
}

export interface PeerRecord {
  readonly peer_id: string;
  readonly room_id: string;
  readonly role: Role;
  readonly metadata: Readonly<Metadata>;
  /** The server instance holding the peer's socket (see MessageBus). */
  readonly node_id: string;
}

export interface NewPeer {
  readonly room_id: string;
  readonly role: Role;
  readonly metadata: Metadata;
  readonly node_id: string;
  /** The id the peer asked for (or one the server drew); taken ids get a `-2`, `-3` ... suffix. */
  readonly preferred_id: string;
  /** Refuse (RoomFullError) when the room already has this many peers; absent: no limit. */
  readonly max_room_peers?: number;
}

/** addPeer's refusal when the room is at its peer limit. */
export class RoomFullError extends Error {
  constructor(readonly limit: number) {
    super(`room is full (${limit} peers)`);
    this.name = 'RoomFullError';
  }
}

/** A store's own failure (unreachable, timed out): transient, the caller may retry. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** What /health says about the store. */
export interface StoreHealth {
  readonly kind: 'memory' | 'redis';
  /** false while a networked store cannot reach its server. */
  readonly connected: boolean;
  /** Where it lives: the rooms file of the memory store, the Redis URL (no password) of the Redis store. */
  readonly location?: string;
}

/** One atomic routing update: the new state (undefined: unchanged) and what the step returns. */
export interface RoutingUpdate<T> {
  readonly state: RoomRoutingState | undefined;
  readonly result: T;
}

export interface StoreStats {
  rooms: number;
  peers: Record<Role, number>;
}

export interface SignalingStore {
  describe(): StoreHealth;
  /**
   * True when the store keeps every room until DELETE /rooms/<id> (no idle expiry: `idle_ttl_ms`
   * is ignored and `sweepIdleRooms` removes nothing). POST /rooms tells the room's creator which.
   */
  readonly keepsRoomsUntilDeleted: boolean;
  /** Adds a room; false when the id is already taken (the caller draws another). */
  createRoom(room: RoomRecord): Promise<boolean>;
  /** The room, or undefined when it does not exist or has sat idle past its TTL. */
  getRoom(roomId: string): Promise<RoomRecord | undefined>;
  /** Removes the room with its peers and routing state; returns the peers it had, undefined when there was no such room. */
  deleteRoom(roomId: string): Promise<PeerRecord[] | undefined>;
  /**
   * True when the room existed and was deleted or expired within LIMITS.roomTombstoneTtlMs, so a
   * peer asking for it hears ROOM_DELETED (final) rather than ROOM_NOT_FOUND (never known here).
   */
  wasDeleted(roomId: string): Promise<boolean>;
  /**
   * Adds a peer to an existing room under `preferred_id`, or under the first free
   * `preferred_id-N` (N = 2, 3, ...) when a live peer holds it; peer ids are unique across rooms.
   * Stops the room's idle clock. Undefined when the room does not exist (or just expired);
   * RoomFullError past `max_room_peers`.
   */
  addPeer(peer: NewPeer): Promise<PeerRecord | undefined>;
  getPeer(peerId: string): Promise<PeerRecord | undefined>;
  /** Every peer in the room, in join order. */
  listPeers(roomId: string): Promise<readonly PeerRecord[]>;
  /** Replaces the peer's metadata; undefined when the peer is gone. */
  setMetadata(peerId: string, metadata: Metadata): Promise<PeerRecord | undefined>;
  /** Removes the peer; when it was the room's last, the room's idle clock starts. Only one caller gets the record. */
  removePeer(peerId: string): Promise<PeerRecord | undefined>;
  /** Removes every room idle past its TTL and returns their ids. */
  sweepIdleRooms(): Promise<string[]>;
  stats(): Promise<StoreStats>;

  // ---- presence: which server process holds which peers ----
  /** This node is alive until `nowMs + ttlMs`. */
  heartbeat(nodeId: string, nowMs: number, ttlMs: number): Promise<void>;
  /** Nodes whose last heartbeat ran out before `nowMs`. */
  deadNodes(nowMs: number): Promise<string[]>;
  isNodeAlive(nodeId: string, nowMs: number): Promise<boolean>;
  /** Ids of the peers registered through the node. */
  nodePeers(nodeId: string): Promise<string[]>;
  /** Drops the node from presence (after its peers were removed, or when it closes). */
  forgetNode(nodeId: string): Promise<void>;

  // ---- routing state, one atomic update per room ----
  /**
   * Reads the room's routing state and peers, runs `step`, and writes the state it returns, as
   * one atomic change: no other update of the room's routing state or peers lands in between. A
   * networked store may run `step` more than once (after a conflict), so it must be pure. The
   * room's next deadline (routing-policy.ts nextDeadline) is indexed for `dueRoutingRooms`.
   */
  updateRouting<T>(roomId: string, step: (state: RoomRoutingState, peers: readonly PeerRecord[]) => RoutingUpdate<T>): Promise<T>;
  readRouting(roomId: string): Promise<RoomRoutingState>;
  /** Rooms with a claim or queue deadline at or before `nowMs`. */
  dueRoutingRooms(nowMs: number): Promise<string[]>;

  /** Throws StoreUnavailableError when the store cannot be reached. */
  ping(): Promise<void>;
  /** Releases timers and connections; the store is unusable afterwards. Safe twice. */
  close(): Promise<void>;
}

/** Longest id IdSchema accepts; suffixed ids are cut to fit. */
const MAX_ID_LENGTH = 128;

/** The n-th candidate for a wanted peer id: `gpu-1`, then `gpu-1-2`, `gpu-1-3` ... */
export function peerIdCandidate(preferred: string, n: number): string {
  if (n <= 1) return preferred.slice(0, MAX_ID_LENGTH);
  const suffix = `-${n}`;
  return preferred.slice(0, MAX_ID_LENGTH - suffix.length) + suffix;
}
