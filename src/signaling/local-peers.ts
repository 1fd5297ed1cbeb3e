/**
 * The registered peers whose sockets are on this instance, and the bus subscriptions that bring
 * them messages from other instances: one `peer:<id>` channel per peer, one `room:<id>` channel
 * per room with at least one local peer (shared by its local members).
 *
 * For each such room it also keeps the room's roster (every member, on any instance), learned
 * from the listing at registration and then from the room's own `peer_joined` / `peer_left`
 * events. A relay to a peer in the roster needs no store lookup; one not in it is looked up (a
 * roster only ever errs by missing a peer that just joined, never by holding a peer of another room).
 */
import { peerChannel, roomChannel, type BusMessage, type MessageBus } from './bus.js';
import type { PeerConnection } from './connection.js';

interface LocalRoom {
  members: Set<PeerConnection>;
  unsubscribe: () => void;
  /** Every peer of the room on any instance; undefined until the first listing. */
  roster: Set<string> | undefined;
  /** Departures heard before the first listing arrived (the listing may predate them). */
  leftEarly: Set<string>;
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
      const created: LocalRoom = { members, unsubscribe: () => {}, roster: undefined, leftEarly: new Set() };
      created.unsubscribe = this.bus.subscribe(roomChannel(peer.room_id), (msg) => {
        track(created, msg.frame);
        deliverToRoom(members, msg);
      });
      room = created;
      this.rooms.set(peer.room_id, room);
    }
    room.members.add(conn);
  }

  /** The room's members as listed by the store while a local peer registered. */
  setRoster(roomId: string, peerIds: readonly string[]): void {
    const room = this.rooms.get(roomId);
    if (room === undefined || room.roster !== undefined) return;
    room.roster = new Set(peerIds.filter((id) => !room.leftEarly.has(id)));
    room.leftEarly.clear();
  }

  /** True when `peerId` is known to be a member of the room (a local room with a roster). */
  inRoster(roomId: string, peerId: string): boolean {
    return this.rooms.get(roomId)?.roster?.has(peerId) === true;
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

/** Keeps a room's roster in step with its join and leave events (only those frames are parsed). */
function track(room: LocalRoom, frame: string): void {
  if (!frame.startsWith('{"type":"peer_joined"') && !frame.startsWith('{"type":"peer_left"')) return;
  let event: { type: string; peer_id?: string; peer?: { peer_id: string } };
  try {
    event = JSON.parse(frame) as typeof event;
  } catch {
    return;
  }
  if (event.type === 'peer_joined' && event.peer !== undefined) {
    room.roster?.add(event.peer.peer_id);
    room.leftEarly.delete(event.peer.peer_id);
  } else if (event.type === 'peer_left' && event.peer_id !== undefined) {
    if (room.roster !== undefined) room.roster.delete(event.peer_id);
    else room.leftEarly.add(event.peer_id);
  }
}

function deliverToRoom(members: ReadonlySet<PeerConnection>, msg: BusMessage): void {
  for (const member of members) {
    if (member.peer !== undefined && member.peer.peer_id !== msg.except) member.deliver(msg.frame);
  }
}
