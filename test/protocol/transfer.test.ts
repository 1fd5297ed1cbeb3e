import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SleapRtcError } from '../../src/errors.js';
import { decodeMessage } from '../../src/protocol/codec.js';
import {
  RECEIVER_TO_SENDER_TYPES,
  ReceiverToSenderSchema,
  SENDER_TO_RECEIVER_TYPES,
  SenderToReceiverSchema,
  transferChannelLabel,
  transferIdFromLabel,
} from '../../src/protocol/transfer.js';

const SHA = 'ab'.repeat(32);

test('transfer channel labels round-trip, and anything else is not a transfer label', () => {
  assert.equal(transferIdFromLabel(transferChannelLabel('0f3c-9a.b_c')), '0f3c-9a.b_c');
  for (const label of ['control', 'transfer:', 'transfer:../x', 'transfer:a/b', 'Transfer:abc', 'transfer: abc', `transfer:${'a'.repeat(200)}`]) {
    assert.equal(transferIdFromLabel(label), null, label);
  }
});

const META = { type: 'FILE_META', transfer_id: 't1', name: 'labels.slp' };
const metas: { name: string; msg: Record<string, unknown>; ok: boolean }[] = [
  { name: 'file with size and hash', msg: { ...META, kind: 'file', size: 10, sha256: SHA }, ok: true },
  { name: 'tar with nulls, estimate and entries', msg: { ...META, kind: 'tar', size: null, sha256: null, approx_size: 4096, entries: 3 }, ok: true },
  { name: 'file without hash', msg: { ...META, kind: 'file', size: 10, sha256: null }, ok: false },
  { name: 'file without size', msg: { ...META, kind: 'file', size: null, sha256: SHA }, ok: false },
  { name: 'tar claiming a hash up front', msg: { ...META, kind: 'tar', size: null, sha256: SHA }, ok: false },
  { name: 'unknown kind', msg: { ...META, kind: 'zip', size: 1, sha256: SHA }, ok: false },
  { name: 'fractional size', msg: { ...META, kind: 'file', size: 1.5, sha256: SHA }, ok: false },
  { name: 'short hash', msg: { ...META, kind: 'file', size: 1, sha256: 'abc' }, ok: false },
  { name: 'empty name', msg: { ...META, name: '', kind: 'file', size: 1, sha256: SHA }, ok: false },
  { name: 'bad transfer id', msg: { ...META, transfer_id: '../t', kind: 'file', size: 1, sha256: SHA }, ok: false },
  { name: 'extra key', msg: { ...META, kind: 'file', size: 1, sha256: SHA, mode: 0o777 }, ok: false },
];

for (const c of metas) {
  test(`FILE_META: ${c.name}`, () => {
    const run = (): unknown => decodeMessage(JSON.stringify(c.msg), SenderToReceiverSchema, SENDER_TO_RECEIVER_TYPES);
    if (c.ok) assert.doesNotThrow(run);
    else assert.throws(run, (e: unknown) => e instanceof SleapRtcError && e.code === 'INVALID_MESSAGE');
  });
}

test('each direction accepts only its own messages', () => {
  const ack = JSON.stringify({ type: 'TRANSFER_ACK', transfer_id: 't1', size: 1, sha256: SHA });
  const complete = JSON.stringify({ type: 'FILE_COMPLETE', transfer_id: 't1', size: 1, sha256: SHA });
  const cancel = JSON.stringify({ type: 'TRANSFER_CANCEL', transfer_id: 't1' });
  assert.throws(() => decodeMessage(ack, SenderToReceiverSchema, SENDER_TO_RECEIVER_TYPES), (e: unknown) => (e as SleapRtcError).code === 'UNKNOWN_TYPE');
  assert.throws(() => decodeMessage(complete, ReceiverToSenderSchema, RECEIVER_TO_SENDER_TYPES), (e: unknown) => (e as SleapRtcError).code === 'UNKNOWN_TYPE');
  assert.equal(decodeMessage(cancel, SenderToReceiverSchema, SENDER_TO_RECEIVER_TYPES).type, 'TRANSFER_CANCEL');
  assert.equal(decodeMessage(cancel, ReceiverToSenderSchema, RECEIVER_TO_SENDER_TYPES).type, 'TRANSFER_CANCEL');
  const err = JSON.stringify({ type: 'TRANSFER_ERROR', transfer_id: 't1', code: 'NOT_A_CODE', message: 'x' });
  assert.throws(() => decodeMessage(err, ReceiverToSenderSchema, RECEIVER_TO_SENDER_TYPES), (e: unknown) => (e as SleapRtcError).code === 'INVALID_MESSAGE');
});
