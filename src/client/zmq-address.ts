/**
 * The ZMQ endpoints `--zmq-publish` / `--zmq-control` may name. Kept apart from lossviewer.ts so
 * checking a flag does not load the zeromq native module.
 */
import { UsageError } from '../errors.js';

const ZMQ_ADDRESS = /^tcp:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([1-9][0-9]{0,4})$/;

/** A ZMQ endpoint the flag may name: tcp://HOST:PORT. */
export function checkZmqAddress(flag: string, value: string): string {
  const m = ZMQ_ADDRESS.exec(value);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`${flag} must be a ZMQ address like tcp://127.0.0.1:9001, not "${value}".`);
  return value;
}
