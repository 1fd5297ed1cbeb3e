/**
 * Framing on a transfer channel: text frames are JSON control messages, validated against the
 * schema of what this side may receive and required to name this transfer; binary frames are
 * stream data. Shared by file-send.ts and file-receive.ts.
 */
import type { z } from 'zod';
import { SleapRtcError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { decodeMessage, encodeMessage } from '../protocol/codec.js';
import type { PeerChannel } from './channel.js';

export interface FrameHandlers<M> {
  control(message: M): void;
  binary(chunk: Uint8Array): void;
  /** A text frame that failed validation (its ProtocolError or a TRANSFER_PROTOCOL error). */
  invalid(error: SleapRtcError): void;
  closed(): void;
}

export class TransferFraming<M extends { type: string; transfer_id: string }, Out extends { type: string; transfer_id: string }> {
  readonly channel: PeerChannel;
  readonly transferId: string;
  readonly #schema: z.ZodType<M>;
  readonly #types: ReadonlySet<string>;

  constructor(channel: PeerChannel, transferId: string, schema: z.ZodType<M>, types: ReadonlySet<string>) {
    this.channel = channel;
    this.transferId = transferId;
    this.#schema = schema;
    this.#types = types;
  }

  listen(handlers: FrameHandlers<M>): () => void {
    const offMessage = this.channel.onMessage((frame) => {
      if (typeof frame !== 'string') {
        handlers.binary(frame);
        return;
      }
      let message: M;
      try {
        message = decodeMessage(frame, this.#schema, this.#types, LIMITS.transferControlMaxBytes);
      } catch (err) {
        handlers.invalid(err instanceof SleapRtcError ? err : new SleapRtcError('INVALID_MESSAGE', String(err)));
        return;
      }
      if (message.transfer_id !== this.transferId) {
        handlers.invalid(
          new SleapRtcError('TRANSFER_PROTOCOL', `A ${message.type} for transfer "${message.transfer_id}" arrived on the channel of transfer "${this.transferId}".`),
        );
        return;
      }
      handlers.control(message);
    });
    const offClose = this.channel.onClose(() => handlers.closed());
    return () => {
      offMessage();
      offClose();
    };
  }

  /** Sends a control message; false (no throw) when the channel has already closed. */
  send(message: Out): boolean {
    if (!this.channel.isOpen) return false;
    try {
      this.channel.send(encodeMessage(message));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * After this side's last message: give the other side up to `ms` to read it and close the
   * channel itself, then close it from here. Closing at once can lose what is still in flight:
   * messages not yet delivered to the other side's JavaScript when the close reaches it are
   * dropped (seen with node-datachannel when the receiving event loop is busy).
   */
  async lingerThenClose(ms: number): Promise<void> {
    if (this.channel.isClosed) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.channel.closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
    this.channel.close();
  }
}

/** The error a side reports for a failure the other side told it about (TRANSFER_ERROR). */
export function remoteTransferError(code: SleapRtcError['code'], message: string, transferId: string): SleapRtcError {
  return new SleapRtcError(code, `The receiving side reported: ${message}`, { transfer_id: transferId, remote: true });
}
