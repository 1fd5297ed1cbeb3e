/**
 * How a peer connection exchanges its offer, answer and ICE candidates with one remote peer.
 * The signaling client implements it over the signaling server; tests wire two in memory.
 */

export type SignalMessage =
  | { type: 'offer' | 'answer'; sdp: string }
  | { type: 'candidate'; candidate: string; mid: string };

export interface Signaler {
  /** Deliver one signal to `target` (a peer id). May throw a SleapRtcError when it cannot. */
  sendSignal(target: string, signal: SignalMessage): void;
  /**
   * Receive signals sent by `from`. Signals that arrived before anyone subscribed are delivered
   * first, in order, so the answering side can subscribe after it learns of an offer.
   * Returns the unsubscribe function.
   */
  onSignal(from: string, listener: (signal: SignalMessage) => void): () => void;
}
