/**
 * GPU facts for the worker's capabilities, from nvidia-smi when it is installed. A machine
 * without nvidia-smi (or whose driver is not loaded) simply advertises no GPU; that is not an error.
 */
import { execFile } from 'node:child_process';
import type { GpuInfo } from '../protocol/signaling.js';
import { LIMITS } from '../limits.js';
import type { Logger } from '../log.js';

/** The query whose output `parseNvidiaSmiCsv` reads. */
export const NVIDIA_SMI_ARGS = ['--query-gpu=name,memory.total,driver_version', '--format=csv,noheader,nounits'] as const;

/**
 * Parses `name, memory.total, driver_version` lines (MiB, no units), one per GPU.
 * Several GPUs become one entry: `count`, the distinct names joined, and the smallest memory,
 * because a job must fit on whichever GPU it lands on. Undefined when no line parses.
 */
export function parseNvidiaSmiCsv(text: string): GpuInfo | undefined {
  const gpus: { name: string; memoryMb: number | undefined; driver: string }[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const fields = raw.split(',').map((f) => f.trim());
    if (fields.length < 3) continue;
    // Read from the right: a product name could in principle contain a comma.
    const driver = fields[fields.length - 1] ?? '';
    const memory = fields[fields.length - 2] ?? '';
    const name = fields.slice(0, -2).join(', ');
    // Anything else with two commas (an error sentence) is not a GPU line.
    const memoryOk = /^\d+$/.test(memory) || memory === '[N/A]';
    const driverOk = /^[0-9][0-9.]*$/.test(driver) || driver === '[N/A]';
    if (name === '' || !memoryOk || !driverOk) continue;
    const memoryMb = memory === '[N/A]' ? undefined : Number(memory);
    gpus.push({ name, memoryMb, driver: driver === '[N/A]' ? '' : driver });
  }
  const first = gpus[0];
  if (!first) return undefined;
  const names = [...new Set(gpus.map((g) => g.name))].join(' + ').slice(0, 256);
  const memories = gpus.map((g) => g.memoryMb).filter((m): m is number => m !== undefined);
  const info: GpuInfo = { name: names, count: gpus.length };
  if (memories.length === gpus.length) info.memory_mb = Math.min(...memories);
  if (first.driver) info.driver = first.driver.slice(0, 64);
  return info;
}

export interface DetectGpuOptions {
  /** Defaults to `nvidia-smi` on the PATH. */
  executable?: string;
  timeoutMs?: number;
  /** Receives a debug line saying why no GPU was found. */
  log?: Logger;
}

/** Runs nvidia-smi; undefined when it is absent, fails, times out or reports nothing. */
export function detectGpu(opts: DetectGpuOptions = {}): Promise<GpuInfo | undefined> {
  const executable = opts.executable ?? 'nvidia-smi';
  return new Promise((resolve) => {
    execFile(
      executable,
      [...NVIDIA_SMI_ARGS],
      { timeout: opts.timeoutMs ?? LIMITS.gpuProbeTimeoutMs, maxBuffer: 256 * 1024, windowsHide: true },
      (err, stdout) => {
        if (err) {
          const code = (err as NodeJS.ErrnoException).code;
          opts.log?.debug({ executable, code }, code === 'ENOENT' ? 'no nvidia-smi: advertising no GPU' : `nvidia-smi failed: ${err.message}`);
          resolve(undefined);
          return;
        }
        const info = parseNvidiaSmiCsv(stdout);
        if (!info) opts.log?.debug({ executable }, 'nvidia-smi listed no GPU');
        resolve(info);
      },
    );
  });
}
