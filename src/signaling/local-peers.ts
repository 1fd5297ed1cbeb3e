/**
 * The registered peers whose sockets are on this instance, and the bus subscriptions that bring
 * them messages from other instances: one `peer:<id>` channel per peer, one `room:<id>` channel
 * per room with at least one local peer (shared by its local members).
 */
import { peerChannel, roomChannel, type BusMessage, type MessageBus } from './bus.js';
import type { PeerConnection } from './connection.js';

interface LocalRoom {
  members: Set<PeerConnection>;
  unsubscribe: () => void;
}

export class LocalPeers {
  private readonly byId = new Map<string, PeerConnection>();
  private readonly rooms = new Map<string, LocalRoom>();

  constructor(private readonly bus: MessageBus) {}

  get(peerId: string): PeerConnection | undefined {
    return this.byId.get(peerId);
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }

  /** Subscribes a just-registered connection (its `peer` must be set) to its channels. */
  add(conn: PeerConnection): void {
    const peer = conn.peer;
    if (peer === undefined) throw new Error('LocalPeers.add needs a registered connection');
    this.byId.set(peer.peer_id, conn);
    conn.unsubscribe = this.bus.subscribe(peerChannel(peer.peer_id), (msg) => conn.deliver(msg.frame));
    let room = this.rooms.get(peer.room_id);
    if (room === undefined) {
      const members = new Set<PeerConnection>();
      room = { members, unsubscribe: this.bus.subscribe(roomChannel(peer.room_id), (msg) => deliverToRoom(members, msg)) };
      this.rooms.set(peer.room_id, room);
    }
    room.members.add(conn);
  }

  /** Ends the connection's subscriptions; the room's too when it was the last local member. */
  remove(conn: PeerConnection, peer: { peer_id: string; room_id: string }): void {
    conn.unsubscribe?.();
    conn.unsubscribe = undefined;
    if (this.byId.get(peer.peer_id) === conn) this.byId.delete(peer.peer_id);
    const room = this.rooms.get(peer.room_id);
    if (room === undefined) return;
    room.members.delete(conn);
    if (room.members.size === 0) {
      room.unsubscribe();
      this.rooms.delete(peer.room_id);
    }
  }
}

function deliverToRoom(members: ReadonlySet<PeerConnection>, msg: BusMessage): void {
  for (const member of members) {
    if (member.peer !== undefined && member.peer.peer_id !== msg.except) member.deliver(msg.frame);
  }
}
