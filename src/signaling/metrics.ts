/** Counters one server instance keeps for `metrics()` and GET /metrics. */
import type { ErrorCode } from '../errors.js';
import type { Role } from '../protocol/signaling.js';

export interface ServerMetrics extends CounterSnapshot {
  /** The store this instance uses. */
  store: 'memory' | 'redis';
  /** Messages that crossed between server processes through the store's pub/sub (0 with the memory store). */
  cross_process: { sent: number; received: number };
}

export interface CounterSnapshot {
  uptime_s: number;
  /**
   * Rooms in the store (shared by every instance on it). `metrics()` gives the count as this
   * instance last read it (after each room or peer change it made); GET /metrics reads it fresh.
   */
  rooms: number;
  /** Registered peers whose socket is on this instance, by role. */
  peers: Record<Role, number>;
  /** Open WebSocket connections on this instance, registered or not. */
  connections: number;
  /** Frames received from peers, valid or not. */
  messages_received: number;
  /** peer_message / offer / answer / candidate frames forwarded to their recipient. */
  messages_relayed: number;
  rooms_created: number;
  rooms_expired: number;
  /** Rooms deleted through DELETE /rooms/<id> on this instance. */
  rooms_deleted: number;
  /** Error replies sent to peers (and HTTP error responses), by code. */
  errors: Partial<Record<ErrorCode, number>>;
}

export class MetricsCounters {
  readonly startedAt = Date.now();
  rooms = 0;
  connections = 0;
  readonly peers: Record<Role, number> = { worker: 0, client: 0 };
  messagesReceived = 0;
  messagesRelayed = 0;
  roomsCreated = 0;
  roomsExpired = 0;
  roomsDeleted = 0;
  private readonly errors = new Map<ErrorCode, number>();

  countError(code: ErrorCode): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  snapshot(): CounterSnapshot {
    return {
      uptime_s: Math.floor((Date.now() - this.startedAt) / 1000),
      rooms: this.rooms,
      peers: { ...this.peers },
      connections: this.connections,
      messages_received: this.messagesReceived,
      messages_relayed: this.messagesRelayed,
      rooms_created: this.roomsCreated,
      rooms_expired: this.roomsExpired,
      rooms_deleted: this.roomsDeleted,
      errors: Object.fromEntries(this.errors) as Partial<Record<ErrorCode, number>>,
    };
  }
}
