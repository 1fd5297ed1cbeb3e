/**
 * One peer's WebSocket as the hub sees it: its state, its rate limiter, its liveness counter and
 * the queue that makes its messages run one at a time, in arrival order (a message that needs the
 * store must finish before the next one from the same peer starts, or `update_metadata` followed
 * by `peer_message` could overtake each other).
 */
import { WebSocket } from 'ws';
import type { ErrorCode } from '../errors.js';
import type { PeerToServer, Role } from '../protocol/signaling.js';
import type { TokenBucket } from './rate-limit.js';

/**
 * open: connected, not registered · registering: `register` in flight · registered ·
 * closing: refused (bad room/token), close frame sent · closed: socket gone, cleanup started.
 */
export type ConnectionState = 'open' | 'registering' | 'registered' | 'closing' | 'closed';

export interface LocalPeer {
  readonly peer_id: string;
  readonly room_id: string;
  readonly role: Role;
}

export class PeerConnection {
  state: ConnectionState = 'open';
  /** Set once registration has succeeded. */
  peer: LocalPeer | undefined;
  /** Pings sent since the last pong. */
  missedPongs = 0;
  /** True between the first refused frame of a flood and the next accepted one. */
  rateLimited = false;
  /** Ends the peer's bus subscription; set while registered. */
  unsubscribe: (() => void) | undefined;
  registerTimer: NodeJS.Timeout | undefined;
  /** True while the message loop runs. */
  busy = false;
  /** The message loop while it waits on the store; close cleanup waits for it. */
  draining: Promise<void> | undefined;
  readonly queue: PeerToServer[] = [];
  /**
   * Frames for this peer that arrive between joining the room and the `registered` reply are
   * held here, so `registered` is always the first thing a peer hears.
   */
  private held: string[] | undefined;

  constructor(
    readonly ws: WebSocket,
    readonly bucket: TokenBucket | undefined,
    private readonly maxBufferedBytes: number,
    private readonly onSlowConsumer: (conn: PeerConnection) => void,
    /** Frames held while registration is answered; one more and the peer is dropped as a slow consumer. */
    private readonly maxHeldFrames = Infinity,
  ) {}

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Sends a frame now, dropping a peer that no longer reads (its backlog would grow without bound). */
  send(frame: string): void {
    if (!this.isOpen) return;
    if (this.ws.bufferedAmount > this.maxBufferedBytes) {
      this.onSlowConsumer(this);
      return;
    }
    this.ws.send(frame);
  }

  /** Sends, or holds the frame while registration is being answered. */
  deliver(frame: string): void {
    if (this.held === undefined) {
      this.send(frame);
      return;
    }
    if (this.held.length >= this.maxHeldFrames) {
      this.held = undefined;
      this.onSlowConsumer(this);
      return;
    }
    this.held.push(frame);
  }

  /** Stops holding and forgets what was held (registration failed: none of it is for this peer any more). */
  dropHeld(): void {
    this.held = undefined;
  }

  hold(): void {
    this.held ??= [];
  }

  /** Sends `first`, then everything held, and stops holding. */
  release(first: string): void {
    const held = this.held ?? [];
    this.held = undefined;
    this.send(first);
    for (const frame of held) this.send(frame);
  }

  sendError(code: ErrorCode, message: string, extra: { details?: Record<string, unknown>; request_id?: string } = {}): void {
    this.send(
      JSON.stringify({
        type: 'error',
        code,
        message,
        ...(extra.details !== undefined ? { details: extra.details } : {}),
        ...(extra.request_id !== undefined ? { request_id: extra.request_id } : {}),
      }),
    );
  }
}
