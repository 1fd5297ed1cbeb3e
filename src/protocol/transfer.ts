/**
 * Data-channel messages of one file transfer (docs/transfer.md has the sequence).
 *
 * Each transfer runs on its own ordered, reliable data channel labelled `transfer:<transfer_id>`,
 * so the peer's `control` channel stays responsive while a large file streams and a transfer's
 * bytes need no header: every binary frame on a transfer channel is the next CHUNK of the stream.
 * Text frames are the JSON control messages below, validated with `decodeMessage`.
 *
 * Sender -> receiver: FILE_META (the offer), FILE_START, CHUNK (binary) ..., FILE_COMPLETE, or
 * TRANSFER_CANCEL.
 * Receiver -> sender: TRANSFER_READY (where to start: 0, or the verified bytes it already holds)
 * or at once TRANSFER_ACK (it already has the file), then TRANSFER_PROGRESS (bytes written and
 * hashed, the flow-control window), then TRANSFER_ACK (verified and in place) or TRANSFER_ERROR,
 * or TRANSFER_CANCEL.
 */
import { z } from 'zod';
import { ErrorCodeSchema, IdSchema } from './common.js';
import { typesOf } from './codec.js';

export const Sha256HexSchema = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits (SHA-256)');
const ByteCount = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** A transfer-channel message: its `type`, the transfer it belongs to (`transfer_id`), then its own fields. */
function transferMessage<const T extends string, F extends z.core.$ZodLooseShape>(type: T, fields: F) {
  return z.strictObject({ type: z.literal(type), transfer_id: IdSchema, ...fields });
}

export const TransferKindSchema = z.enum(['file', 'tar', 'folder']);
export type TransferKind = z.infer<typeof TransferKindSchema>;

/**
 * One file of a folder offered file by file (kind `folder`): its path inside the folder (relative,
 * POSIX, confined there by the receiver), size and SHA-256.
 */
export const FolderFileSchema = z.strictObject({
  path: z.string().min(1).max(4096),
  size: ByteCount,
  sha256: Sha256HexSchema,
});
export type FolderFile = z.infer<typeof FolderFileSchema>;

/**
 * First message of a transfer. For `file`, size and sha256 are known up front (the sender hashes
 * in a first pass). For `tar` (a folder packed on the fly) neither is known until the stream ends,
 * so both are null here and FILE_COMPLETE carries them; `approx_size` (sum of file sizes) and
 * `entries` let the receiver refuse early and draw a progress bar.
 */
export const FileMetaSchema = transferMessage('FILE_META', {
  /** Relative POSIX path the receiver places under its destination directory (confined there). */
  name: z.string().min(1).max(4096),
  kind: TransferKindSchema,
  size: ByteCount.nullable(),
  sha256: Sha256HexSchema.nullable(),
  approx_size: ByteCount.optional(),
  entries: z.number().int().nonnegative().optional(),
  /**
   * `folder` only: every file of the folder, each then sent as its own file transfer on channel
   * `transfer:<transfer_id>.f<index>` (offered, cached and resumed like any file). `size` is their
   * total and `sha256` the SHA-256 of the list (src/content/folder-manifest.ts).
   */
  files: z.array(FolderFileSchema).max(100_000).optional(),
}).superRefine((m, ctx) => {
  if (m.kind === 'folder' && (m.size === null || m.sha256 === null || m.files === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['files'], message: 'a folder transfer must announce size, sha256 and files' });
  }
  if (m.kind !== 'folder' && m.files !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['files'], message: 'only a folder transfer lists files' });
  }
  if (m.kind === 'file' && (m.size === null || m.sha256 === null)) {
    ctx.addIssue({ code: 'custom', path: ['size'], message: 'a file transfer must announce size and sha256' });
  }
  if (m.kind === 'tar' && (m.size !== null || m.sha256 !== null)) {
    ctx.addIssue({ code: 'custom', path: ['size'], message: 'a tar transfer announces size and sha256 in FILE_COMPLETE' });
  }
});
export type FileMeta = z.infer<typeof FileMetaSchema>;

/**
 * Sender -> receiver: the data that follows starts at this byte of the file. 0 always works (it
 * may be sent before TRANSFER_READY arrives); any other offset must be the one TRANSFER_READY
 * offered, and the sender only takes it after checking `held_sha256` against its own bytes.
 */
export const FileStartSchema = transferMessage('FILE_START', {
  offset: ByteCount,
});
export type FileStart = z.infer<typeof FileStartSchema>;

/** The stream ended: total bytes sent and the SHA-256 of exactly those bytes. */
export const FileCompleteSchema = transferMessage('FILE_COMPLETE', {
  size: ByteCount,
  sha256: Sha256HexSchema,
});
export type FileComplete = z.infer<typeof FileCompleteSchema>;

/**
 * Receiver -> sender, the answer to FILE_META when the receiver does not already have the file:
 * it is ready, and holds the first `offset` bytes of this content (verified so far as their
 * SHA-256, `held_sha256`, which the sender compares with its own), from an earlier interrupted
 * transfer. `offset` is 0 when it holds nothing (always, for a folder).
 */
export const TransferReadySchema = transferMessage('TRANSFER_READY', {
  offset: ByteCount,
  held_sha256: Sha256HexSchema.nullable(),
}).refine((m) => (m.offset === 0) === (m.held_sha256 === null), { message: 'held_sha256 is given exactly when offset > 0', path: ['held_sha256'] });
export type TransferReady = z.infer<typeof TransferReadySchema>;

/** Receiver -> sender: bytes of the file received, hashed and handed to the disk so far (counting a resumed prefix). */
export const TransferProgressSchema = transferMessage('TRANSFER_PROGRESS', {
  bytes: ByteCount,
});
export type TransferProgress = z.infer<typeof TransferProgressSchema>;

/**
 * Receiver -> sender: size and hash matched and the result is in place under its final name.
 * Sent in answer to FILE_META (instead of TRANSFER_READY) when the receiver already had the file.
 */
export const TransferAckSchema = transferMessage('TRANSFER_ACK', {
  size: ByteCount,
  sha256: Sha256HexSchema,
});
export type TransferAck = z.infer<typeof TransferAckSchema>;

/**
 * Receiver -> sender, the answer to FILE_META when the receiver holds this content in its cache:
 * prove you have the bytes, not only their hash. `proof` in TRANSFER_PROOF is the SHA-256 of the
 * 16 nonce bytes followed by each range's bytes in order (`file` is the index in a folder's list,
 * absent for a file). Passed, the receiver answers TRANSFER_ACK; failed, TRANSFER_ERROR.
 */
export const TransferChallengeSchema = transferMessage('TRANSFER_CHALLENGE', {
  nonce: z.string().regex(/^[0-9a-f]{32}$/, 'must be 32 lowercase hex digits'),
  ranges: z
    .array(z.strictObject({ file: z.number().int().nonnegative().optional(), offset: ByteCount, length: z.number().int().positive().max(1024 * 1024) }))
    .min(1)
    .max(64),
});
export type TransferChallenge = z.infer<typeof TransferChallengeSchema>;

/** Sender -> receiver: the answer to TRANSFER_CHALLENGE. */
export const TransferProofSchema = transferMessage('TRANSFER_PROOF', {
  proof: Sha256HexSchema,
});
export type TransferProof = z.infer<typeof TransferProofSchema>;

/** Either side: stop now; the receiver deletes what it wrote. */
export const TransferCancelSchema = transferMessage('TRANSFER_CANCEL', {
  reason: z.string().max(1024).optional(),
});
export type TransferCancel = z.infer<typeof TransferCancelSchema>;

/** Receiver -> sender: the transfer failed on this side (which check, in `code`). */
export const TransferErrorSchema = transferMessage('TRANSFER_ERROR', {
  code: ErrorCodeSchema,
  message: z.string().max(4096),
});
export type TransferError = z.infer<typeof TransferErrorSchema>;

export const SenderToReceiverSchema = z.discriminatedUnion('type', [
  FileMetaSchema,
  FileStartSchema,
  FileCompleteSchema,
  TransferCancelSchema,
  TransferProofSchema,
]);
export type SenderToReceiver = z.infer<typeof SenderToReceiverSchema>;
export const SENDER_TO_RECEIVER_TYPES = typesOf(SenderToReceiverSchema);

export const ReceiverToSenderSchema = z.discriminatedUnion('type', [
  TransferReadySchema,
  TransferProgressSchema,
  TransferAckSchema,
  TransferErrorSchema,
  TransferCancelSchema,
  TransferChallengeSchema,
]);
export type ReceiverToSender = z.infer<typeof ReceiverToSenderSchema>;
export const RECEIVER_TO_SENDER_TYPES = typesOf(ReceiverToSenderSchema);

/** Data-channel label of a transfer; the receiving side recognises transfers by it. */
export const TRANSFER_LABEL_PREFIX = 'transfer:';

export function transferChannelLabel(transferId: string): string {
  return TRANSFER_LABEL_PREFIX + transferId;
}

/** The transfer id of file `index` of folder transfer `folderId` (its own channel). */
export function folderFileTransferId(folderId: string, index: number): string {
  return `${folderId}.f${index}`;
}

/** The transfer id of a channel label, or null when the label is not a (valid) transfer label. */
export function transferIdFromLabel(label: string): string | null {
  if (!label.startsWith(TRANSFER_LABEL_PREFIX)) return null;
  const parsed = IdSchema.safeParse(label.slice(TRANSFER_LABEL_PREFIX.length));
  return parsed.success ? parsed.data : null;
}
