// The stand-in must be as strict as the real sleap-nn, or tests built on it prove nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readRecords, runFake, tempDir } from '../fixtures/fake-sleap-nn.js';

async function trainSetup(t: Parameters<typeof tempDir>[0]): Promise<{ root: string; base: string[] }> {
  const root = await tempDir(t);
  await writeFile(path.join(root, 'c.yaml'), 'trainer_config:\n  max_epochs: 2\n');
  await writeFile(path.join(root, 'l.slp'), 'labels');
  const base = [
    'train',
    '--config-name',
    'c.yaml',
    '--config-dir',
    root,
    `data_config.train_labels_path=['${root}/l.slp']`,
    `trainer_config.ckpt_dir='${root}/out'`,
    "trainer_config.run_name='r'",
  ];
  return { root, base };
}

test('malformed command lines exit 2 with usage on stderr', async (t) => {
  const { root, base } = await trainSetup(t);
  const cases: [string, string[]][] = [
    ['no command', []],
    ['unknown command', ['fit']],
    ['unknown option', [...base, '--gpus', '2']],
    ['unknown override', [...base, 'trainer_config.seed=1']],
    ['override twice', [...base, "trainer_config.run_name='x'"]],
    ['missing required override', base.slice(0, -1)],
    ['missing --config-dir', base.filter((_, i) => i !== 3 && i !== 4)],
    ['option without value', [...base, '--prefix-map']],
    ['bad prefix map', [...base, '--prefix-map', '/a=>/b']],
    ['non-integer epochs', [...base, 'trainer_config.max_epochs=1.5']],
    ['zero epochs', [...base, 'trainer_config.max_epochs=0']],
    ['bad lr', [...base, 'trainer_config.optimizer.lr=fast']],
    ['unterminated quote', [...base.slice(0, -1), "trainer_config.run_name='r"]],
    ['unquoted comma', [...base.slice(0, -1), 'trainer_config.run_name=a,b']],
    ['interpolation', [...base.slice(0, -1), "trainer_config.run_name='${oc.env:HOME}'"]],
    ['labels not a list', [...base.slice(0, 5), `data_config.train_labels_path='${root}/l.slp'`, ...base.slice(6)]],
    ['track without -o', ['track', '--data_path', '/d', '--model_paths', '/m']],
    ['track without model', ['track', '--data_path', '/d', '-o', '/o']],
    ['track twice data', ['track', '--data_path', '/d', '--data_path', '/e', '--model_paths', '/m', '-o', '/o']],
    ['track stray argument', ['track', '--data_path', '/d', '--model_paths', '/m', '-o', '/o', 'extra']],
  ];
  for (const [name, args] of cases) {
    const r = await runFake(args, { cwd: root });
    assert.equal(r.code, 2, `${name}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, /usage: sleap-nn/, name);
  }
  assert.deepEqual(await readdir(root).then((n) => n.sort()), ['c.yaml', 'l.slp'], 'nothing written');
});

test('a missing input fails like Python (exit 1, traceback naming the file)', async (t) => {
  const { root, base } = await trainSetup(t);
  const r = await runFake([...base.slice(0, 5), `data_config.train_labels_path=['${root}/missing.slp']`, ...base.slice(6)]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Traceback \(most recent call last\)/);
  assert.ok(r.stderr.includes(`FileNotFoundError: [Errno 2] No such file or directory: '${root}/missing.slp'`));
  const r2 = await runFake(['track', '--data_path', `${root}/l.slp`, '--model_paths', `${root}/nomodel`, '-o', `${root}/p.slp`]);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /nomodel/);
});

test('FAKE_SLEAP_NN_FAIL exits 3 after some output; RECORD holds argv and cwd', async (t) => {
  const { root, base } = await trainSetup(t);
  const record = path.join(root, 'rec.jsonl');
  const r = await runFake(base, { cwd: root, env: { FAKE_SLEAP_NN_FAIL: '1', FAKE_SLEAP_NN_RECORD: record } });
  assert.equal(r.code, 3);
  assert.match(r.stdout, /Started training/);
  assert.match(r.stderr, /CUDA out of memory/);
  const recs = await readRecords(record);
  assert.equal(recs.length, 1);
  assert.deepEqual(recs[0]?.argv, base);
  assert.equal(recs[0]?.cwd, root);
});

test('train writes best.ckpt, training_config.yaml and training_log.csv; track writes -o', async (t) => {
  const { root, base } = await trainSetup(t);
  const r = await runFake(base);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((await readdir(path.join(root, 'out', 'r'))).sort(), ['best.ckpt', 'training_config.yaml', 'training_log.csv']);
  assert.match(r.stdout, /Epoch 2\/2/);
  const r2 = await runFake(['track', '--data_path', `${root}/l.slp`, '--model_paths', `${root}/out/r`, '-o', `${root}/p/pred.slp`]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.ok((await readdir(path.join(root, 'p'))).includes('pred.slp'));
});
