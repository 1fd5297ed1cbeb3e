/**
 * A signaling server is named by one URL that users type (`--server`, `SLEAP_RTC_SERVER`,
 * `[signaling] server_url`), as http(s) or as its ws(s) endpoint. These turn it into the HTTP base
 * for the REST API and the WebSocket URL for peers.
 */
import { UsageError } from '../errors.js';

/** Path of the WebSocket endpoint on a sleap-rtc signaling server. */
export const WS_PATH = '/ws';

function parse(serverUrl: string): URL {
  let url: URL;
  try {
    url = new URL(serverUrl);
  } catch {
    throw new UsageError(`"${serverUrl}" is not a server URL; pass one like --server http://127.0.0.1:8080.`, { server_url: serverUrl });
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) {
    throw new UsageError(`"${serverUrl}" is not an http(s) or ws(s) URL; pass one like --server http://127.0.0.1:8080.`, {
      server_url: serverUrl,
    });
  }
  return url;
}

/** `ws://host:8080/ws`, `http://host:8080/` ... -> `http://host:8080`. */
export function httpBaseUrl(serverUrl: string): string {
  const url = parse(serverUrl);
  const secure = url.protocol === 'https:' || url.protocol === 'wss:';
  return `${secure ? 'https:' : 'http:'}//${url.host}`;
}

/** `http://host:8080` ... -> `ws://host:8080/ws`. */
export function wsEndpointUrl(serverUrl: string): string {
  const url = parse(serverUrl);
  const secure = url.protocol === 'https:' || url.protocol === 'wss:';
  return `${secure ? 'wss:' : 'ws:'}//${url.host}${WS_PATH}`;
}
