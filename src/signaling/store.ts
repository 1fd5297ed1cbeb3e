/**
 * All signaling state (rooms, peers, their metadata) sits behind this one interface, so a shared
 * store (e.g. Redis) can replace the in-memory default and let several server processes serve one
 * set of rooms. Keep it narrow: each method is one atomic step a networked store can do in one
 * round trip (or one script), and nothing here knows about sockets.
 *
 * Records handed out are frozen snapshots; changing state goes through the methods.
 */
import type { Metadata, Role } from '../protocol/signaling.js';
import type { RoutingStore } from './routing-store.js';

export interface RoomRecord {
  readonly room_id: string;
  /** SHA-256 of the room token, hex. The token itself is never stored. */
  readonly token_sha256: string;
  readonly created_at_ms: number;
  /** The room is removed once it has had no peer for this long. */
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
}

export interface StoreStats {
  rooms: number;
  peers: Record<Role, number>;
}

/** Routing state (queues, reservations, last-assigned order) is part of the store: see routing-store.ts. */
export interface SignalingStore extends RoutingStore {
  /** Adds a room; false when the id is already taken (the caller draws another). */
  createRoom(room: RoomRecord): Promise<boolean>;
  /** The room, or undefined when it does not exist or has sat idle past its TTL. */
  getRoom(roomId: string): Promise<RoomRecord | undefined>;
  /**
   * Adds a peer to an existing room under `preferred_id`, or under the first free
   * `preferred_id-N` (N = 2, 3, ...) when a live peer holds it; peer ids are unique across rooms.
   * Stops the room's idle clock. Undefined when the room does not exist (or just expired).
   */
  addPeer(peer: NewPeer): Promise<PeerRecord | undefined>;
  getPeer(peerId: string): Promise<PeerRecord | undefined>;
  /** Every peer in the room, in join order. */
  listPeers(roomId: string): Promise<readonly PeerRecord[]>;
  /** Replaces the peer's metadata; undefined when the peer is gone. */
  setMetadata(peerId: string, metadata: Metadata): Promise<PeerRecord | undefined>;
  /** Removes the peer; when it was the room's last, the room's idle clock starts. */
  removePeer(peerId: string): Promise<PeerRecord | undefined>;
  /** Removes every room idle past its TTL and returns their ids. */
  sweepIdleRooms(): Promise<string[]>;
  stats(): Promise<StoreStats>;
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
