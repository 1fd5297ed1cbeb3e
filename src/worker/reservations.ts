/**
 * The worker's side of routing (docs/routing.md): a JOB_REQUEST that carries a `reservation_id`
 * was routed here by the server, and the worker claims that reservation before it runs the job,
 * then releases it when the job is over. A claim that the server refuses, or that names another
 * client, means the job is not ours to run.
 */
import { SleapRtcError } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { ServerToPeer } from '../protocol/signaling.js';
import type { SignalingClient } from '../transport/signaling-client.js';

/** The slice of the signaling client a claim needs (tests may pass a real client only). */
type Signaling = Pick<SignalingClient, 'send' | 'on' | 'off'>;

/** Resolves once the server confirms the reservation is ours, for this client; rejects otherwise. */
export function claimReservation(
  signaling: Signaling,
  reservationId: string,
  clientPeerId: string,
  timeoutMs: number = LIMITS.signalingRequestTimeoutMs,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: SleapRtcError): void => {
      clearTimeout(timer);
      signaling.off('message', onMessage);
      if (err) reject(err);
      else resolve();
    };
    const onMessage = (m: ServerToPeer): void => {
      if (m.type === 'reservation_claimed' && m.reservation_id === reservationId) {
        if (m.client_peer_id === clientPeerId) done();
        else {
          done(new SleapRtcError('RESERVATION_NOT_FOUND', `Reservation ${reservationId} was made for another client, not for ${clientPeerId}.`, { reservation_id: reservationId }));
          // It is ours on the server now; give it back so the rightful client is not left waiting.
          releaseReservation(signaling, reservationId);
        }
      } else if (m.type === 'error' && m.details?.reservation_id === reservationId) {
        const code = m.code === 'RESERVATION_NOT_FOUND' ? 'RESERVATION_NOT_FOUND' : m.code;
        done(new SleapRtcError(code, `The signaling server refused reservation ${reservationId}: ${m.message}`, { reservation_id: reservationId }));
      }
    };
    const timer = setTimeout(
      () => done(new SleapRtcError('SIGNALING_TIMEOUT', `The signaling server did not confirm reservation ${reservationId} within ${timeoutMs} ms.`, { reservation_id: reservationId })),
      timeoutMs,
    );
    signaling.on('message', onMessage);
    try {
      signaling.send({ type: 'claim_reservation', reservation_id: reservationId });
    } catch (err) {
      done(err instanceof SleapRtcError ? err : new SleapRtcError('SIGNALING_CLOSED', String(err)));
    }
  });
}

/** Gives the slot back to the router. Best effort: leaving the room releases it too. */
export function releaseReservation(signaling: Pick<SignalingClient, 'send'>, reservationId: string): void {
  try {
    signaling.send({ type: 'release_reservation', reservation_id: reservationId });
  } catch {
    // Disconnected: the server drops a departed worker's reservations itself.
  }
}
