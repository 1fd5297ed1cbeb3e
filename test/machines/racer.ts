/**
 * The hostile room member's racer, run as a process on the CLIENT machine against its own mount of
 * the share: it flips each named folder (or file) between the real one and a symbolic link leading
 * out of the share, as fast as it can, until SIGTERM. Each flip is one rename plus one symlink (to
 * the link) or one unlink plus one rename (back). Link targets alternate between an absolute path
 * on the worker (where the canary lives) and a relative path that climbs out of the share. A
 * file's link leads to the file of the same name there. An entry `PATH:UP` climbs with UP instead
 * of RELATIVE_UP (for a file or folder deeper in the share); `PATH:UP:linger` also rests on the
 * link as it rests on the real one, so that a name used long after the check meets the link
 * about half of the time.
 *
 * A folder that was just flipped back to the real one rests there for a random 0-40 ms half of
 * the time (the racer keeps flipping the others), so that some jobs pass the worker's check and
 * the race moves to where it matters: between the check and the use.
 *
 *   node --import ./scripts/ts-loader.mjs test/machines/racer.ts ABSOLUTE_TARGET RELATIVE_UP FOLDER[:UP[:linger]]...
 *
 * stdout: `{"flips": N}` every 1,000 flips and `{"flips": N, "done": true}` once stopped, after
 * every folder is back to the real one.
 */
import { lstatSync, readdirSync, renameSync, rmdirSync, symlinkSync, unlinkSync } from 'node:fs';
import path from 'node:path';

const [absolute, relativeUp, ...entries] = process.argv.slice(2);
if (absolute === undefined || relativeUp === undefined || entries.length === 0) {
  process.stderr.write('usage: racer.ts ABSOLUTE_TARGET RELATIVE_UP FOLDER[:UP[:linger]]...\n');
  process.exit(2);
}
/** Each flipped name, how its relative link climbs out, and whether it is a file (its link names the same file there). */
const targets = new Map(
  entries.map((e) => {
    const [name, up, linger] = e.split(':') as [string, string | undefined, string | undefined];
    return [name, { up: up || relativeUp, file: lstatSync(name).isFile(), linger: linger === 'linger' }];
  }),
);
const folders = [...targets.keys()];

let flips = 0;
let failedFlips = 0;
let stopping = false;
const linked = new Set<string>();
const print = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

function toLink(folder: string, round: number): void {
  renameSync(folder, `${folder}.real`);
  // From here the real one is aside: restore() must know, even if the link cannot be made.
  linked.add(folder);
  // Relative targets are written as seen from the folder's parent: RELATIVE_UP climbs out of the share.
  const how = targets.get(folder) as { up: string; file: boolean; linger: boolean };
  const dir = round % 2 === 0 ? (absolute as string) : path.join(how.up, path.basename(absolute as string));
  symlinkSync(how.file ? path.join(dir, path.basename(folder)) : dir, folder);
}

/**
 * The name was taken while the real folder was aside: the worker, finding no output folder,
 * made one and wrote its results there (as it should). Its entries join the real folder, which
 * then goes back under the name, so no result is lost to the racer.
 */
function mergeBack(folder: string): void {
  for (const name of readdirSync(folder)) renameSync(path.join(folder, name), path.join(`${folder}.real`, name));
  rmdirSync(folder);
  renameSync(`${folder}.real`, folder);
}

function toReal(folder: string): void {
  const now = lstatSync(folder, { throwIfNoEntry: false });
  if (now?.isDirectory()) mergeBack(folder);
  else {
    if (now?.isSymbolicLink()) unlinkSync(folder);
    renameSync(`${folder}.real`, folder);
  }
  linked.delete(folder);
}

/** Puts every real folder back under its name; returns what could not be put back, and why. */
function restore(): string[] {
  const problems: string[] = [];
  for (const folder of [...linked]) {
    try {
      toReal(folder);
    } catch (err) {
      problems.push(`${folder}: ${(err as Error).message}`);
    }
  }
  return problems;
}

let round = 0;
const restUntil = new Map<string, number>();
function burst(): void {
  for (let i = 0; i < 200 && !stopping; i++) {
    const folder = folders[round % folders.length] as string;
    round++;
    if ((restUntil.get(folder) ?? 0) > Date.now()) continue;
    try {
      if (linked.has(folder)) {
        toReal(folder);
        if (Math.random() < 0.5) restUntil.set(folder, Date.now() + Math.random() * 40);
      } else {
        toLink(folder, Math.floor(round / folders.length));
        if (targets.get(folder)?.linger && Math.random() < 0.5) restUntil.set(folder, Date.now() + Math.random() * 40);
      }
      flips++;
      if (flips % 1000 === 0) print({ flips });
    } catch {
      failedFlips++;
    }
  }
  if (stopping) return;
  setImmediate(burst);
}

process.on('SIGTERM', () => {
  stopping = true;
  const problems = restore();
  print({ flips, failed_flips: failedFlips, done: true, ...(problems.length ? { not_restored: problems } : {}) });
  process.exit(0);
});

print({ flips: 0, started: true });
burst();
