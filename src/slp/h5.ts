/**
 * The one place that talks to h5wasm (HDF5 compiled to WebAssembly). Its Node build reads real
 * files through the operating system, page by page as HDF5 asks, so opening a labels file and
 * reading one small dataset costs a few reads, whatever the file's size.
 *
 * HDF5 prints its error stack to stderr when a call fails. Every call into the library goes
 * through `quietly`, which keeps that text for the error message instead of letting it reach the
 * user's terminal (the calls are synchronous, so nothing else writes in between).
 */
import fs from 'node:fs';
import h5wasm from 'h5wasm/node';
import type { Dataset, File as H5File } from 'h5wasm/node';

export type H5Module = Awaited<typeof h5wasm.ready>;

let ready: Promise<H5Module> | undefined;

/** The loaded library (loaded once per process, on first use). */
export function h5(): Promise<H5Module> {
  ready ??= h5wasm.ready;
  return ready;
}

/**
 * Runs a synchronous library call; returns its result and whatever HDF5 printed meanwhile. The
 * Node build writes file descriptor 2 with fs.writeSync (all its files are real files), so that is
 * where the text is caught; console output is caught too, for builds that print through it.
 */
export function quietly<T>(fn: () => T): { value?: T; error?: unknown; diagnostics: string } {
  const chunks: string[] = [];
  const keep = (chunk: unknown) => chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
  const writeSync = fs.writeSync;
  const stderrWrite = process.stderr.write;
  fs.writeSync = ((fd: number, buffer: unknown, ...rest: unknown[]) => {
    if (fd !== 2) return (writeSync as (...a: unknown[]) => number)(fd, buffer, ...rest);
    keep(typeof buffer === 'string' ? buffer : Buffer.from(buffer as Uint8Array).subarray(Number(rest[0] ?? 0), rest[1] === undefined ? undefined : Number(rest[0] ?? 0) + Number(rest[1])));
    return typeof buffer === 'string' ? Buffer.byteLength(buffer) : Number(rest[1] ?? (buffer as Uint8Array).byteLength);
  }) as typeof fs.writeSync;
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => {
    keep(chunk);
    (rest.find((r) => typeof r === 'function') as (() => void) | undefined)?.();
    return true;
  }) as typeof process.stderr.write;
  try {
    return { value: fn(), diagnostics: chunks.join('') };
  } catch (error) {
    return { error, diagnostics: chunks.join('') };
  } finally {
    fs.writeSync = writeSync;
    process.stderr.write = stderrWrite;
  }
}

/** The most telling line of an HDF5 error stack ("file signature not found", "truncated file: ..."). */
export function diagnosticReason(diagnostics: string): string | undefined {
  const details = [...diagnostics.matchAll(/ in [A-Za-z0-9_]+\(\): (.+)$/gm)].map((m) => m[1]!.trim());
  return details.at(-1);
}

export type OpenMode = 'r' | 'a';

export interface OpenResult {
  file?: H5File;
  /** Why the file could not be opened, in HDF5's words, when it could not. */
  reason?: string;
}

export async function openH5(path: string, mode: OpenMode): Promise<OpenResult> {
  const lib = await h5();
  void lib;
  const r = quietly(() => new h5wasm.File(path, mode));
  if (r.value && r.value.file_id >= 0n) return { file: r.value };
  return { reason: diagnosticReason(r.diagnostics) ?? (r.error instanceof Error ? r.error.message : 'unknown HDF5 error') };
}

export function closeH5(file: H5File): void {
  quietly(() => file.close());
}

/** What h5wasm knows of a dataset's element type and shape. */
export interface StringDatasetInfo {
  rank: number;
  length: number;
  isString: boolean;
  vlen: boolean;
  /** Bytes per element of a fixed-length string. */
  size: number;
}

export function stringDatasetInfo(ds: Dataset): StringDatasetInfo {
  const m = ds.metadata;
  return {
    rank: m.shape?.length ?? 0,
    length: m.shape?.[0] ?? 0,
    isString: m.type === 3,
    vlen: Boolean(m.vlen),
    size: m.size,
  };
}

// Only HEAPU8 is exported by the build, and it is replaced when wasm memory grows: read it afresh.
function u32(lib: H5Module, at: number): number {
  const heap = lib.HEAPU8;
  return new DataView(heap.buffer, heap.byteOffset).getUint32(at, true);
}

function setU32(lib: H5Module, at: number, value: number): void {
  const heap = lib.HEAPU8;
  new DataView(heap.buffer, heap.byteOffset).setUint32(at, value, true);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads a 1-D string dataset as raw UTF-8 (h5wasm's own reader decodes fixed-length ASCII-tagged
 * strings as Latin-1, which would mangle a UTF-8 file name).
 */
export function readStrings(lib: H5Module, file: H5File, name: string, info: StringDatasetInfo): string[] {
  const count = info.length;
  if (count === 0) return [];
  const elem = info.vlen ? 4 : info.size;
  const ptr = lib._malloc(count * elem);
  try {
    const status = lib.get_dataset_data(file.file_id, name, null, null, null, BigInt(ptr));
    if (status < 0) throw new Error(`could not read ${name}`);
    const out: string[] = [];
    if (info.vlen) {
      try {
        for (let i = 0; i < count; i++) {
          const p = u32(lib, ptr + 4 * i);
          let end = p;
          while (lib.HEAPU8[end] !== 0) end++;
          out.push(utf8.decode(lib.HEAPU8.slice(p, end)));
        }
      } finally {
        lib.reclaim_vlen_memory(file.file_id, name, '', BigInt(ptr));
      }
    } else {
      for (let i = 0; i < count; i++) {
        const bytes = lib.HEAPU8.subarray(ptr + i * elem, ptr + (i + 1) * elem);
        const nul = bytes.indexOf(0);
        out.push(utf8.decode(bytes.slice(0, nul === -1 ? elem : nul)));
      }
    }
    return out;
  } finally {
    lib._free(ptr);
  }
}

/**
 * Overwrites every element of a 1-D string dataset in place (same count). A fixed-length string
 * that would not fit is refused by the caller before this runs.
 */
export function writeStrings(lib: H5Module, file: H5File, name: string, info: StringDatasetInfo, values: readonly string[]): void {
  const encoded = values.map((v) => Buffer.from(v, 'utf8'));
  if (info.vlen) {
    const held: number[] = [];
    const table = lib._malloc(values.length * 4);
    try {
      encoded.forEach((bytes, i) => {
        const p = lib._malloc(bytes.length + 1);
        held.push(p);
        lib.HEAPU8.set(bytes, p);
        lib.HEAPU8[p + bytes.length] = 0;
        setU32(lib, table + 4 * i, p);
      });
      const status = lib.set_dataset_data(file.file_id, name, null, null, null, BigInt(table));
      if (status < 0) throw new Error(`could not write ${name}`);
    } finally {
      for (const p of held) lib._free(p);
      lib._free(table);
    }
    return;
  }
  const size = info.size;
  const ptr = lib._malloc(values.length * size);
  try {
    lib.HEAPU8.fill(0, ptr, ptr + values.length * size);
    encoded.forEach((bytes, i) => lib.HEAPU8.set(bytes, ptr + i * size));
    const status = lib.set_dataset_data(file.file_id, name, null, null, null, BigInt(ptr));
    if (status < 0) throw new Error(`could not write ${name}`);
  } finally {
    lib._free(ptr);
  }
}
