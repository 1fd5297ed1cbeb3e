/**
 * Turning one inbound WebSocket frame into a validated peer -> server message, or a
 * ProtocolError with the code to answer with. Cheap checks on the raw bytes come first, so an
 * oversized or absurdly nested frame is refused before it is decoded or parsed.
 */
import { decodeMessage, ProtocolError, typesOf } from '../protocol/codec.js';
import { PeerToServerSchema, type PeerToServer } from '../protocol/signaling.js';
import { jsonDepthExceeds } from './json-depth.js';

const PEER_TO_SERVER_TYPES = typesOf(PeerToServerSchema);

export interface FrameLimits {
  maxPayloadBytes: number;
  maxJsonDepth: number;
}

/** Throws ProtocolError (INVALID_MESSAGE, FRAME_TOO_LARGE, INVALID_JSON, UNKNOWN_TYPE). */
export function decodePeerFrame(data: Buffer, isBinary: boolean, limits: FrameLimits): PeerToServer {
  if (isBinary) {
    throw new ProtocolError('INVALID_MESSAGE', 'Binary frames are not accepted; send each message as one JSON text frame.');
  }
  if (data.length > limits.maxPayloadBytes) {
    throw new ProtocolError('FRAME_TOO_LARGE', `Frame of ${data.length} bytes exceeds the ${limits.maxPayloadBytes}-byte limit.`, {
      limit: limits.maxPayloadBytes,
    });
  }
  if (jsonDepthExceeds(data, limits.maxJsonDepth)) {
    throw new ProtocolError('INVALID_MESSAGE', `Message is nested more than ${limits.maxJsonDepth} levels deep; flatten it.`, {
      limit: limits.maxJsonDepth,
    });
  }
  return decodeMessage(data.toString('utf8'), PeerToServerSchema, PEER_TO_SERVER_TYPES, limits.maxPayloadBytes);
}
