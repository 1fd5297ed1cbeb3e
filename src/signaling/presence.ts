/**
 * Presence across server processes sharing a store: which processes are alive, and what happens
 * to the peers of one that is not.
 *
 * - Heartbeat: every LIMITS.presenceHeartbeatMs this process marks itself alive for
 *   LIMITS.presenceTtlMs.
 * - Sweep: every LIMITS.presenceSweepMs each process looks for processes whose heartbeat ran out
 *   and removes their peers (the store hands each peer to one sweeper only), so the peers of a
 *   SIGKILLed process are gone from their rooms within presenceTtlMs + presenceSweepMs (17 s by
 *   default). The same sweep checks this process's own peers are still in the store (a Redis
 *   that restarted without its data, or a long outage in which others swept us) and drops the
 *   ones that are not, so they reconnect and register again.
 * - Probe: a peer that re-registers under its old id after its process died should get that id
 *   back, not `id-2`. When the id is held on another process, that process is asked over the bus
 *   whether it still holds the peer; no answer within LIMITS.presenceProbeTimeoutMs means it is
 *   gone.
 */
import { randomUUID } from 'node:crypto';
import { LIMITS } from '../limits.js';
import type { Logger } from '../log.js';
import type { MessageBus } from './bus.js';
import type { PeerRecord, SignalingStore } from './store.js';

export interface PresenceHost {
  /** True when this process holds an open, registered connection for the peer. */
  holdsLocally(peerId: string): boolean;
  /** Peer ids registered on this process. */
  localPeerIds(): string[];
  /** Removes a peer whose process is gone (or that is stale) from the store and tells its room. */
  evict(peerId: string, reason: 'disconnected' | 'server_lost'): Promise<PeerRecord | undefined>;
  /** This process's peer is no longer in the store: close its socket so it registers again. */
  dropOrphan(peerId: string): void;
  /** True while some connection here waits for the store to answer its registration. */
  registering(): boolean;
}

type Control = { kind: 'probe'; peer_id: string; reply_to: string; nonce: string } | { kind: 'probe_reply'; nonce: string; holds: boolean };

export function nodeChannel(nodeId: string): string {
  return `node:${nodeId}`;
}

export class Presence {
  private readonly probes = new Map<string, (holds: boolean) => void>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private failing = false;
  /** Our peers the store had but no local connection held at the last sweep. */
  private suspects = new Set<string>();
  private sweeping = false;
  private stopped = false;

  constructor(
    private readonly opts: {
      store: SignalingStore;
      bus: MessageBus;
      nodeId: string;
      logger: Logger;
      host: PresenceHost;
      now?: () => number;
    },
  ) {}

  private get now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** Subscribes to this node's control channel and starts the heartbeat and the sweep. */
  async start(): Promise<void> {
    this.unsubscribe = this.opts.bus.subscribe(nodeChannel(this.opts.nodeId), (m) => this.onControl(m.frame));
    await this.opts.bus.settled();
    await this.opts.store.heartbeat(this.opts.nodeId, this.now, LIMITS.presenceTtlMs);
    this.heartbeatTimer = setInterval(() => void this.beat(), LIMITS.presenceHeartbeatMs);
    this.sweepTimer = setInterval(() => void this.sweep(), LIMITS.presenceSweepMs);
    this.heartbeatTimer.unref();
    this.sweepTimer.unref();
  }

  /** Stops the timers and leaves presence (after the server removed its own peers). Safe twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.heartbeatTimer);
    clearInterval(this.sweepTimer);
    this.unsubscribe?.();
    for (const resolve of this.probes.values()) resolve(false);
    this.probes.clear();
    await this.opts.store.forgetNode(this.opts.nodeId).catch(() => {});
  }

  /** Whether the peer is held by a live connection on `nodeId` (asked over the bus when it is another process). */
  async holds(nodeId: string, peerId: string): Promise<boolean> {
    if (nodeId === this.opts.nodeId) return this.opts.host.holdsLocally(peerId);
    if (!(await this.opts.store.isNodeAlive(nodeId, this.now))) return false;
    const nonce = randomUUID();
    const answer = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.probes.delete(nonce);
        resolve(false);
      }, LIMITS.presenceProbeTimeoutMs);
      this.probes.set(nonce, (holds) => {
        clearTimeout(timer);
        this.probes.delete(nonce);
        resolve(holds);
      });
    });
    const probe: Control = { kind: 'probe', peer_id: peerId, reply_to: this.opts.nodeId, nonce };
    await this.opts.bus.publish(nodeChannel(nodeId), { frame: JSON.stringify(probe) });
    return answer;
  }

  /** One sweep: remove the peers of dead processes, and drop our own peers the store no longer has. */
  async sweep(): Promise<void> {
    if (this.sweeping || this.stopped) return;
    this.sweeping = true;
    try {
      for (const node of await this.opts.store.deadNodes(this.now)) {
        if (node === this.opts.nodeId) continue;
        const ids = await this.opts.store.nodePeers(node);
        let removed = 0;
        for (const id of ids) if ((await this.opts.host.evict(id, 'server_lost')) !== undefined) removed += 1;
        await this.opts.store.forgetNode(node);
        this.opts.logger.warn({ node, peers: removed }, `server process ${node} stopped renewing its presence; removed its ${removed} peer(s)`);
      }
      const mine = new Set(await this.opts.store.nodePeers(this.opts.nodeId));
      for (const id of this.opts.host.localPeerIds()) {
        if (!mine.has(id) && (await this.opts.store.getPeer(id))?.node_id !== this.opts.nodeId) this.opts.host.dropOrphan(id);
      }
      // The other way round: records of ours with no connection here (a departure the store
      // missed while it was down). Removed when two sweeps in a row find them, so a peer whose
      // registration is just being answered is never taken for one.
      if (this.opts.host.registering()) {
        this.suspects.clear();
      } else {
        const stale = new Set([...mine].filter((id) => !this.opts.host.holdsLocally(id)));
        for (const id of stale) if (this.suspects.has(id)) await this.opts.host.evict(id, 'disconnected');
        this.suspects = new Set([...stale].filter((id) => !this.suspects.has(id)));
      }
      this.recovered();
    } catch (err) {
      this.failed(err, 'presence sweep');
    } finally {
      this.sweeping = false;
    }
  }

  private async beat(): Promise<void> {
    try {
      await this.opts.store.heartbeat(this.opts.nodeId, this.now, LIMITS.presenceTtlMs);
      this.recovered();
    } catch (err) {
      this.failed(err, 'presence heartbeat');
    }
  }

  private failed(err: unknown, what: string): void {
    if (this.failing) return;
    this.failing = true;
    this.opts.logger.error({ err }, `${what} failed: the store is unreachable; requests fail with STORE_UNAVAILABLE until it is back`);
  }

  private recovered(): void {
    if (!this.failing) return;
    this.failing = false;
    this.opts.logger.info('the store is reachable again; presence resumed');
  }

  private onControl(frame: string): void {
    let message: Control;
    try {
      message = JSON.parse(frame) as Control;
    } catch {
      return;
    }
    if (message.kind === 'probe_reply') {
      this.probes.get(message.nonce)?.(message.holds);
      return;
    }
    if (message.kind === 'probe') {
      const reply: Control = { kind: 'probe_reply', nonce: message.nonce, holds: this.opts.host.holdsLocally(message.peer_id) };
      this.opts.bus.publish(nodeChannel(message.reply_to), { frame: JSON.stringify(reply) }).catch((err: unknown) => this.opts.logger.warn({ err }, 'could not answer a presence probe'));
    }
  }
}
