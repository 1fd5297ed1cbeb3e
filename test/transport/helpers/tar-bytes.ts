/** Hand-built tar archives (hostile ones included), block by block, with the tar package's Header/Pax. */
import { Header, Pax } from 'tar';

export interface RawEntry {
  path: string;
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice' | 'BlockDevice' | 'FIFO' | 'GNUDumpDir';
  data?: string | Buffer;
  linkpath?: string;
  /** Put the real path in a PAX extended header (the ustar field gets a harmless placeholder). */
  paxPath?: string;
  /** Claim this size in the header regardless of data (for truncation). */
  claimSize?: number;
}

function pad(buf: Buffer): Buffer {
  const rem = buf.length % 512;
  return rem === 0 ? buf : Buffer.concat([buf, Buffer.alloc(512 - rem)]);
}

export function tarEntry(e: RawEntry): Buffer {
  const data = typeof e.data === 'string' ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0));
  const parts: Buffer[] = [];
  if (e.paxPath !== undefined) parts.push(new Pax({ path: e.paxPath }).encode());
  const header = new Header({
    path: e.paxPath !== undefined ? 'placeholder' : e.path,
    type: e.type ?? 'File',
    size: e.claimSize ?? data.length,
    mode: e.type === 'Directory' ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    mtime: new Date(0),
    linkpath: e.linkpath,
  });
  const block = Buffer.alloc(512);
  header.encode(block, 0);
  parts.push(block, pad(data));
  return Buffer.concat(parts);
}

export const END_BLOCKS = Buffer.alloc(1024);

export function tarArchive(entries: RawEntry[], opts: { end?: boolean } = {}): Buffer {
  return Buffer.concat([...entries.map(tarEntry), ...(opts.end === false ? [] : [END_BLOCKS])]);
}
