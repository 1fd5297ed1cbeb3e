/**
 * A WebRTC connection to one remote peer, set up through a Signaler, carrying ordered reliable
 * data channels: `control` (opened by the offerer during set-up) and any number of others (one per
 * file transfer) opened later by either side.
 *
 * Uses only the W3C RTCPeerConnection interface (src/transport/rtc.ts), so it runs on Node with
 * node-datachannel's polyfill and, later, in a browser. Every channel object is held in a set for
 * as long as it is open: a garbage-collected native channel closes under its user.
 */
import { SleapRtcError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { PeerChannel } from './channel.js';
import { defaultRtc, type IceServerConfig, type RtcDataChannel, type RtcPeerConnection, type RtcPeerConnectionConstructor } from './rtc.js';
import type { SignalMessage, Signaler } from './signaler.js';

export const CONTROL_CHANNEL_LABEL = 'control';

export type PeerRole = 'offerer' | 'answerer';

export interface PeerConnectOptions {
  signaler: Signaler;
  remotePeerId: string;
  /** `[ice] servers` from the config; loopback and most LANs need none. */
  iceServers?: readonly IceServerConfig[];
  /** Whole set-up (offer to open control channel) must finish within this. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** RTCPeerConnection implementation; defaults to the platform's (see rtc.ts). */
  rtc?: RtcPeerConnectionConstructor;
}

/** Remote channels waiting for an onChannel listener; more than this and new ones are refused. */
const MAX_UNCLAIMED_CHANNELS = 64;
/** Delay before a reported `closed` state is believed (see the connectionstatechange handler). */
const CLOSED_RECHECK_MS = 100;
/** Remote ICE candidates held until the remote description is set. */
const MAX_PENDING_CANDIDATES = 256;

export class PeerConnection {
  readonly remotePeerId: string;
  readonly role: PeerRole;
  /** Settles with the reason once the connection is closed. */
  readonly closed: Promise<SleapRtcError>;

  readonly #pc: RtcPeerConnection;
  readonly #channels = new Set<PeerChannel>();
  readonly #activityListeners = new Set<() => void>();
  #control: PeerChannel | null = null;
  #unclaimed: PeerChannel[] = [];
  #channelListener: ((channel: PeerChannel) => void) | null = null;
  #closeListeners = new Set<(reason: SleapRtcError) => void>();
  #suspectListeners = new Set<() => void>();
  #state: 'connecting' | 'open' | 'closed' = 'connecting';
  #resolveClosed!: (reason: SleapRtcError) => void;
  #cleanup: (() => void)[] = [];

  /** @internal Use connectToPeer / acceptPeer. */
  constructor(pc: RtcPeerConnection, role: PeerRole, remotePeerId: string) {
    this.#pc = pc;
    this.role = role;
    this.remotePeerId = remotePeerId;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    pc.addEventListener('datachannel', (ev) => this.#onRemoteChannel(ev.channel));
    pc.addEventListener('connectionstatechange', () => {
      const s = pc.connectionState;
      if (s === 'disconnected') for (const listener of [...this.#suspectListeners]) listener();
      if (s === 'failed') this.#shutdown(this.#lostError(s));
      // node-datachannel occasionally reports `closed` for a connection that is not closed (seen
      // when connections are created right after others closed with data in flight). A real close
      // stays closed and also closes the channels; a spurious reading does not survive a re-read.
      else if (s === 'closed') setTimeout(() => pc.connectionState === 'closed' && this.#shutdown(this.#lostError('closed')), CLOSED_RECHECK_MS);
    });
  }

  get isOpen(): boolean {
    return this.#state === 'open';
  }

  /** The ordered, reliable `control` channel opened during set-up. */
  get control(): PeerChannel {
    if (!this.#control) throw new SleapRtcError('PEER_CLOSED', `The connection to peer ${this.remotePeerId} has no control channel yet.`);
    return this.#control;
  }

  /** Largest message either side may send, as negotiated (SCTP max-message-size). */
  get maxMessageSize(): number {
    const negotiated = this.#pc.sctp?.maxMessageSize;
    return typeof negotiated === 'number' && negotiated > 0 ? negotiated : 65_536;
  }

  /** Open a new ordered, reliable channel and wait until it is open. */
  async openChannel(label: string, opts: { timeoutMs?: number } = {}): Promise<PeerChannel> {
    if (this.#state === 'closed') throw this.#closedError();
    const channel = this.#adopt(this.#pc.createDataChannel(label, { ordered: true }));
    const timeoutMs = opts.timeoutMs ?? LIMITS.peerConnectTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        channel.opened,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            reject(new SleapRtcError('PEER_CONNECT_TIMEOUT', `Data channel "${label}" to peer ${this.remotePeerId} did not open within ${timeoutMs} ms.`, { label }));
          }, timeoutMs);
        }),
      ]);
      return channel;
    } catch (err) {
      channel.close();
      channel.markClosed();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Receive channels the remote side opens (other than `control`). Channels that arrived before
   * a listener was set are handed over first. One listener at a time; returns the remover.
   */
  onChannel(listener: (channel: PeerChannel) => void): () => void {
    this.#channelListener = listener;
    for (const channel of this.#unclaimed.splice(0)) {
      if (!channel.isClosed) listener(channel);
    }
    return () => {
      if (this.#channelListener === listener) this.#channelListener = null;
    };
  }

  /** Called once with the reason when the connection closes. Returns the remover. */
  onClose(listener: (reason: SleapRtcError) => void): () => void {
    if (this.#state === 'closed') {
      void this.closed.then(listener);
      return () => {};
    }
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  /**
   * Called each time the connection reports `disconnected`: the path to the peer went quiet. It
   * may come back, so this is a reason to ask the peer (a PING), not to give up. Returns the remover.
   */
  onSuspect(listener: () => void): () => void {
    this.#suspectListeners.add(listener);
    return () => this.#suspectListeners.delete(listener);
  }

  /** Close the connection and every channel on it. Safe to call any number of times. */
  close(): void {
    this.#shutdown(new SleapRtcError('PEER_CLOSED', `The connection to peer ${this.remotePeerId} was closed locally.`, { peer_id: this.remotePeerId }));
  }

  /** @internal Set-up steps of connectToPeer / acceptPeer. */
  _setControl(channel: PeerChannel): void {
    this.#control = channel;
    this.#watchControl(channel);
  }

  /** The control channel is the connection's lifeline: when it closes, the connection is over. */
  #watchControl(channel: PeerChannel): void {
    channel.onClose(() => this.#shutdown(new SleapRtcError('PEER_CLOSED', `The control channel to peer ${this.remotePeerId} closed.`, { peer_id: this.remotePeerId })));
  }

  /** @internal */
  _adopt(raw: RtcDataChannel): PeerChannel {
    return this.#adopt(raw);
  }

  /** @internal */
  _markOpen(): void {
    if (this.#state === 'connecting') this.#state = 'open';
  }

  /** @internal Runs on close (signaler unsubscribe). */
  _onShutdown(fn: () => void): void {
    if (this.#state === 'closed') fn();
    else this.#cleanup.push(fn);
  }

  /**
   * Called for every message received from the peer on any channel (control, transfers): each
   * proves the peer is there, so a peer busy sending a large file is never taken for gone while
   * its answer to a PING waits behind that file's data. Returns the remover.
   */
  onActivity(listener: () => void): () => void {
    this.#activityListeners.add(listener);
    return () => this.#activityListeners.delete(listener);
  }

  #adopt(raw: RtcDataChannel): PeerChannel {
    const channel = new PeerChannel(raw);
    channel.onArrival = () => {
      for (const l of this.#activityListeners) l();
    };
    this.#channels.add(channel);
    void channel.closed.then(() => this.#channels.delete(channel));
    return channel;
  }

  #onRemoteChannel(raw: RtcDataChannel): void {
    const channel = this.#adopt(raw);
    if (this.#state === 'closed') {
      channel.close();
      return;
    }
    if (raw.label === CONTROL_CHANNEL_LABEL && this.#control === null && this.role === 'answerer') {
      this.#control = channel;
      this.#watchControl(channel);
      this.#controlWaiter?.(channel);
      return;
    }
    if (this.#channelListener) {
      this.#channelListener(channel);
      return;
    }
    if (this.#unclaimed.length >= MAX_UNCLAIMED_CHANNELS) {
      channel.close();
      return;
    }
    this.#unclaimed.push(channel);
  }

  /** @internal Set by acceptPeer while it waits for the offerer's control channel. */
  #controlWaiter: ((channel: PeerChannel) => void) | null = null;

  /** @internal */
  _waitControl(): Promise<PeerChannel> {
    if (this.#control) return Promise.resolve(this.#control);
    return new Promise((resolve) => {
      this.#controlWaiter = resolve;
    });
  }

  #lostError(state: string): SleapRtcError {
    return new SleapRtcError('PEER_CLOSED', `The WebRTC connection to peer ${this.remotePeerId} is ${state}.`, { peer_id: this.remotePeerId, state });
  }

  #closedError(): SleapRtcError {
    return new SleapRtcError('PEER_CLOSED', `The connection to peer ${this.remotePeerId} is closed.`, { peer_id: this.remotePeerId });
  }

  #shutdown(reason: SleapRtcError): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    for (const fn of this.#cleanup.splice(0)) fn();
    for (const channel of [...this.#channels]) channel.close();
    try {
      this.#pc.close();
    } catch {
      // Closing an already-failed native connection can throw; it is closed either way.
    }
    // The native close fires channel close events later, or never for a failed transport:
    // settle every wrapper now so no one waits on a channel of a dead connection.
    for (const channel of [...this.#channels]) channel.markClosed();
    this.#channels.clear();
    this.#unclaimed = [];
    this.#resolveClosed(reason);
    for (const listener of [...this.#closeListeners]) {
      try {
        listener(reason);
      } catch {
        // One listener's failure must not keep the others from learning of the close.
      }
    }
    this.#closeListeners.clear();
    this.#suspectListeners.clear();
  }
}

/** Set up a connection as the offerer: opens the `control` channel and waits until it is open. */
export function connectToPeer(opts: PeerConnectOptions): Promise<PeerConnection> {
  return openPeerConnection('offerer', opts);
}

/** Set up a connection as the answerer: waits for the peer's offer and its `control` channel. */
export function acceptPeer(opts: PeerConnectOptions): Promise<PeerConnection> {
  return openPeerConnection('answerer', opts);
}

async function openPeerConnection(role: PeerRole, opts: PeerConnectOptions): Promise<PeerConnection> {
  const { signaler, remotePeerId } = opts;
  const timeoutMs = opts.timeoutMs ?? LIMITS.peerConnectTimeoutMs;
  opts.signal?.throwIfAborted();
  const Rtc = opts.rtc ?? (await defaultRtc());
  let pc: RtcPeerConnection;
  try {
    pc = new Rtc({ iceServers: (opts.iceServers ?? []).map((s) => ({ ...s })) });
  } catch (err) {
    throw new SleapRtcError('PEER_CONNECT_FAILED', `Could not create a WebRTC connection: ${(err as Error).message}. Check the [ice] servers entries (urls like "stun:host:3478" or "turn:host:3478" with username and credential).`);
  }
  const peer = new PeerConnection(pc, role, remotePeerId);

  let fail!: (err: unknown) => void;
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  // Failures after set-up has finished (the connection closing later) are nobody's business here.
  failed.catch(() => {});

  let remoteDescriptionSet = false;
  let gotDescription = false;
  const pendingCandidates: { candidate: string; sdpMid: string }[] = [];
  const addCandidate = async (c: { candidate: string; sdpMid: string }): Promise<void> => {
    try {
      await pc.addIceCandidate(c);
    } catch {
      // One unusable candidate is not fatal; ICE tries the others and the timeout covers the rest.
    }
  };
  const sendSignal = (signal: SignalMessage): void => {
    try {
      signaler.sendSignal(remotePeerId, signal);
    } catch (err) {
      fail(err);
    }
  };

  const onSignal = async (signal: SignalMessage): Promise<void> => {
    if (signal.type === 'candidate') {
      const c = { candidate: signal.candidate, sdpMid: signal.mid };
      if (remoteDescriptionSet) await addCandidate(c);
      else if (pendingCandidates.length < MAX_PENDING_CANDIDATES) pendingCandidates.push(c);
      return;
    }
    const expected = role === 'offerer' ? 'answer' : 'offer';
    // A repeated or misdirected description (e.g. a retransmitted offer) is ignored, not fatal.
    if (signal.type !== expected || gotDescription) return;
    gotDescription = true;
    try {
      await pc.setRemoteDescription({ type: signal.type, sdp: signal.sdp });
    } catch (err) {
      throw new SleapRtcError('PEER_CONNECT_FAILED', `Peer ${remotePeerId} sent an ${signal.type} that could not be used: ${(err as Error).message}`, { peer_id: remotePeerId });
    }
    remoteDescriptionSet = true;
    for (const c of heldCandidates.splice(0)) sendSignal(c);
    for (const c of pendingCandidates.splice(0)) await addCandidate(c);
    if (role === 'answerer') {
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      sendSignal({ type: 'answer', sdp: String(answer.sdp ?? '') });
    }
  };

  // The offerer holds its own candidates until it has applied the answer. Sent earlier, they let
  // the answerer finish ICE and start DTLS before the offerer knows the answerer's certificate
  // fingerprint; libdatachannel then rejects the handshake ("unknown CA") and both sides fail.
  // On a zero-latency link (loopback, veth) that happened in about one set-up in ten.
  const heldCandidates: SignalMessage[] = [];
  const sendLocalCandidate = (signal: SignalMessage): void => {
    if (role === 'offerer' && !remoteDescriptionSet) heldCandidates.push(signal);
    else sendSignal(signal);
  };
  pc.addEventListener('icecandidate', (ev) => {
    // A null candidate (end of gathering, in browsers) needs no message.
    if (ev.candidate && ev.candidate.candidate) {
      sendLocalCandidate({ type: 'candidate', candidate: ev.candidate.candidate, mid: ev.candidate.sdpMid ?? '0' });
    }
  });
  const unsubscribe = signaler.onSignal(remotePeerId, (signal) => {
    onSignal(signal).catch(fail);
  });
  peer._onShutdown(unsubscribe);
  void peer.closed.then((reason) => fail(reason));

  const onAbort = (): void => fail(new SleapRtcError('PEER_CONNECT_FAILED', `Connecting to peer ${remotePeerId} was cancelled.`, { peer_id: remotePeerId }));
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new SleapRtcError(
          'PEER_CONNECT_TIMEOUT',
          `No WebRTC connection to peer ${remotePeerId} after ${timeoutMs} ms. The two machines need a UDP path to each other; across firewalls or NAT, add a TURN server under [ice] servers in the config.`,
          { peer_id: remotePeerId, timeout_ms: timeoutMs },
        ),
      );
    }, timeoutMs);
  });

  const setUp = async (): Promise<PeerChannel> => {
    if (role === 'offerer') {
      const control = peer._adopt(pc.createDataChannel(CONTROL_CHANNEL_LABEL, { ordered: true }));
      peer._setControl(control);
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      sendSignal({ type: 'offer', sdp: String(offer.sdp ?? '') });
      await control.opened;
      return control;
    }
    const control = await peer._waitControl();
    await control.opened;
    return control;
  };

  const setUpDone = setUp();
  setUpDone.catch(() => {});
  try {
    await Promise.race([setUpDone, failed, timeout]);
    peer._markOpen();
    return peer;
  } catch (err) {
    peer.close();
    if (err instanceof SleapRtcError && err.code === 'PEER_CLOSED') {
      throw new SleapRtcError('PEER_CONNECT_FAILED', `The WebRTC connection to peer ${remotePeerId} failed while being set up (${err.message})`, { peer_id: remotePeerId });
    }
    throw err;
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
