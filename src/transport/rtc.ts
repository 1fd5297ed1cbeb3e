/**
 * The slice of the W3C WebRTC interface the peer layer uses, typed here because the project
 * compiles without the DOM library. Browsers provide it as `globalThis.RTCPeerConnection`; on
 * Node, node-datachannel's polyfill does. Nothing in the peer layer (this file, signaler.ts,
 * channel.ts, peer-connection.ts) touches files, streams or other Node-only APIs, so it can be
 * bundled for a browser later.
 */

/** One `[ice] servers` entry, as in RTCIceServer. */
export interface IceServerConfig {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export type RtcDataChannelState = 'connecting' | 'open' | 'closing' | 'closed';

export interface RtcMessageEvent {
  readonly data: unknown;
}

export interface RtcDataChannel {
  readonly label: string;
  readonly readyState: RtcDataChannelState;
  readonly bufferedAmount: number;
  bufferedAmountLowThreshold: number;
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(): void;
  addEventListener(type: 'message', listener: (ev: RtcMessageEvent) => void): void;
  addEventListener(type: 'open' | 'close' | 'closing' | 'error' | 'bufferedamountlow', listener: (ev: unknown) => void): void;
  removeEventListener(type: string, listener: (ev: never) => void): void;
}

export interface RtcIceCandidateLike {
  readonly candidate: string;
  readonly sdpMid: string | null;
}

export interface RtcSessionDescriptionLike {
  type: 'offer' | 'answer';
  sdp: string;
}

export interface RtcPeerConnection {
  readonly connectionState: string;
  readonly sctp?: { readonly maxMessageSize: number | null } | null;
  createDataChannel(label: string, init?: { ordered?: boolean }): RtcDataChannel;
  createOffer(): Promise<{ type: string; sdp?: string }>;
  createAnswer(): Promise<{ type: string; sdp?: string }>;
  setLocalDescription(description: { type: string; sdp?: string }): Promise<void>;
  setRemoteDescription(description: RtcSessionDescriptionLike): Promise<void>;
  addIceCandidate(candidate: { candidate: string; sdpMid: string }): Promise<void>;
  addEventListener(type: 'icecandidate', listener: (ev: { candidate: RtcIceCandidateLike | null }) => void): void;
  addEventListener(type: 'datachannel', listener: (ev: { channel: RtcDataChannel }) => void): void;
  addEventListener(type: 'connectionstatechange', listener: () => void): void;
  close(): void;
}

export type RtcPeerConnectionConstructor = new (config: { iceServers: IceServerConfig[] }) => RtcPeerConnection;

/**
 * The platform's RTCPeerConnection: the global one where it exists (browsers), otherwise
 * node-datachannel's polyfill, loaded only when needed.
 */
export async function defaultRtc(): Promise<RtcPeerConnectionConstructor> {
  const global = (globalThis as { RTCPeerConnection?: unknown }).RTCPeerConnection;
  if (typeof global === 'function') return global as RtcPeerConnectionConstructor;
  const polyfill = await import('node-datachannel/polyfill');
  // The polyfill's own typings refer to DOM types this project does not load.
  return polyfill.RTCPeerConnection as unknown as RtcPeerConnectionConstructor;
}

/**
 * Let the process exit once no peer connection is in use any more. node-datachannel keeps native
 * threads and callbacks alive, and a channel whose native close never reports back can keep the
 * event loop running forever; this releases them all. Any connection still open is closed. No-op
 * where the platform provides WebRTC (browsers).
 */
export async function releaseRtc(): Promise<void> {
  if (typeof (globalThis as { RTCPeerConnection?: unknown }).RTCPeerConnection === 'function') return;
  const native = await import('node-datachannel');
  native.cleanup();
}
