/**
 * Delivery between server instances. A peer's socket lives on one instance; a message for it (or
 * a broadcast to its room) may start on another. Each instance subscribes to the channels of the
 * peers and rooms it holds and publishes to channels it does not; a scale-out bus (Redis pub/sub,
 * NATS ...) only has to implement publish/subscribe (cf. socket.io's adapters).
 *
 * Payloads are already-encoded wire frames, so a room broadcast is serialized once.
 */
export interface BusMessage {
  /** One encoded server -> peer message (see ServerToPeerSchema). */
  readonly frame: string;
  /** Room broadcasts skip this peer (usually the one the event is about). */
  readonly except?: string;
}

export type BusHandler = (message: BusMessage) => void;

export interface MessageBus {
  /** Delivers to every current subscriber of the channel, on any instance; none is not an error. */
  publish(channel: string, message: BusMessage): Promise<void>;
  /** Returns the function that ends this subscription (safe twice). */
  subscribe(channel: string, handler: BusHandler): () => void;
  /** Resolves once every subscription asked for so far is in effect (a networked bus subscribes asynchronously). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

export function peerChannel(peerId: string): string {
  return `peer:${peerId}`;
}

export function roomChannel(roomId: string): string {
  return `room:${roomId}`;
}
