/** Moving a finished file or folder into place: all or nothing, under races and failures. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DestinationExistsError, moveDirIntoPlace, moveFileIntoPlace } from '../../src/content/place.js';
import { tempDir } from '../transport/helpers/transfer.js';

test('files without overwrite: of many racing into one name exactly one wins, the rest are refused, nothing is replaced', async (t) => {
  const dir = await tempDir(t, 'place');
  const final = path.join(dir, 'out.slp');
  const parts = await Promise.all(
    Array.from({ length: 20 }, async (_, i) => {
      const p = path.join(dir, `out.slp.${i}.part`);
      await writeFile(p, `copy ${i}`);
      return p;
    }),
  );
  const outcomes = await Promise.allSettled(parts.map((p) => moveFileIntoPlace(p, final, false)));
  const won = outcomes.filter((o) => o.status === 'fulfilled');
  assert.equal(won.length, 1);
  for (const o of outcomes) if (o.status === 'rejected') assert.ok(o.reason instanceof DestinationExistsError);
  const winner = parts[outcomes.findIndex((o) => o.status === 'fulfilled')] as string;
  assert.equal(await readFile(final, 'utf8'), `copy ${parts.indexOf(winner)}`);
});

test('files with overwrite replace the old one', async (t) => {
  const dir = await tempDir(t, 'place');
  await writeFile(path.join(dir, 'f'), 'old');
  await writeFile(path.join(dir, 'f.part'), 'new');
  await moveFileIntoPlace(path.join(dir, 'f.part'), path.join(dir, 'f'), true);
  assert.equal(await readFile(path.join(dir, 'f'), 'utf8'), 'new');
  assert.deepEqual(await readdir(dir), ['f']);
});

test('replacing a folder: if the new one cannot be moved in, the old one is back under its name', async (t) => {
  const dir = await tempDir(t, 'place');
  const final = path.join(dir, 'run1');
  await mkdir(final);
  await writeFile(path.join(final, 'best.ckpt'), 'old');
  // The part folder vanished (removed by someone else): the second rename fails.
  await assert.rejects(moveDirIntoPlace(path.join(dir, 'run1.x.part'), final, true));
  assert.equal(await readFile(path.join(final, 'best.ckpt'), 'utf8'), 'old');
  assert.deepEqual(await readdir(dir), ['run1'], 'no .old copy left beside it');
  const part = path.join(dir, 'run1.y.part');
  await mkdir(part);
  await writeFile(path.join(part, 'best.ckpt'), 'new');
  await moveDirIntoPlace(part, final, true);
  assert.equal(await readFile(path.join(final, 'best.ckpt'), 'utf8'), 'new');
  assert.deepEqual(await readdir(dir), ['run1']);
  await mkdir(part);
  await assert.rejects(moveDirIntoPlace(part, final, false), DestinationExistsError);
});
