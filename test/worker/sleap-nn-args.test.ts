import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { SleapRtcError } from '../../src/errors.js';
import { buildTrackArgs, buildTrainArgs, hydraQuote, type TrainArgsInput } from '../../src/worker/sleap-nn-args.js';
import { readRecords, runFake, tempDir } from '../fixtures/fake-sleap-nn.js';

test('train: the exact argument array, required parts only', () => {
  assert.deepEqual(
    buildTrainArgs({
      configFile: '/mnt/vast/amick/proj/config.yaml',
      labels: '/mnt/vast/amick/proj/labels.slp',
      outputDir: '/mnt/vast/amick/proj/models',
      runName: 'run-1',
    }),
    [
      'train',
      '--config-name',
      'config.yaml',
      '--config-dir',
      '/mnt/vast/amick/proj',
      "data_config.train_labels_path=['/mnt/vast/amick/proj/labels.slp']",
      "trainer_config.ckpt_dir='/mnt/vast/amick/proj/models'",
      "trainer_config.run_name='run-1'",
    ],
  );
});

test('train: every option, and the prefix map as one argv element', () => {
  assert.deepEqual(
    buildTrainArgs({
      configFile: '/w/cfg/c.yaml',
      labels: '/w/l.slp',
      outputDir: '/w/out',
      runName: 'r',
      maxEpochs: 7,
      batchSize: 16,
      learningRate: 0.0003,
      prefixMap: { from: '/Volumes/vast', to: '/mnt/vast' },
    }),
    [
      'train',
      '--config-name',
      'c.yaml',
      '--config-dir',
      '/w/cfg',
      '--prefix-map',
      '/Volumes/vast->/mnt/vast',
      "data_config.train_labels_path=['/w/l.slp']",
      "trainer_config.ckpt_dir='/w/out'",
      "trainer_config.run_name='r'",
      'trainer_config.max_epochs=7',
      'trainer_config.train_data_loader.batch_size=16',
      'trainer_config.val_data_loader.batch_size=16',
      'trainer_config.optimizer.lr=0.0003',
    ],
  );
});

test('learning rates are written so Hydra reads a float', () => {
  const lr = (x: number): string | undefined =>
    buildTrainArgs({ configFile: '/c.yaml', labels: '/l', outputDir: '/o', runName: 'r', learningRate: x }).at(-1);
  assert.equal(lr(1), 'trainer_config.optimizer.lr=1.0');
  assert.equal(lr(0.001), 'trainer_config.optimizer.lr=0.001');
  assert.equal(lr(1e-7), 'trainer_config.optimizer.lr=1e-7');
});

test('track: one --model_paths per model, then -o', () => {
  assert.deepEqual(buildTrackArgs({ data: '/d/v.mp4', models: ['/m/a', '/m/b'], output: '/d/v.predictions.slp' }), [
    'track',
    '--data_path',
    '/d/v.mp4',
    '--model_paths',
    '/m/a',
    '--model_paths',
    '/m/b',
    '-o',
    '/d/v.predictions.slp',
  ]);
});

test('hydraQuote: escapes only what Hydra would interpret', () => {
  const table: [string, string][] = [
    ['plain', "'plain'"],
    ['with space', "'with space'"],
    ["it's", "'it\\'s'"],
    ['a,b', "'a,b'"],
    ['[x]', "'[x]'"],
    ['${oc.env:HOME}', "'\\${oc.env:HOME}'"],
    ['$(rm -rf ~)', "'$(rm -rf ~)'"],
    ['back\\slash', "'back\\slash'"],
    ['trailing\\', "'trailing\\\\'"],
    ["\\'", "'\\\\\\''"],
    ['\\${x}', "'\\\\\\${x}'"],
    ['"double"', "'\"double\"'"],
    ['new\nline', "'new\nline'"],
    ['', "''"],
  ];
  for (const [input, expected] of table) assert.equal(hydraQuote(input), expected, JSON.stringify(input));
});

test('invalid builder input is refused (a bug upstream, never passed on)', () => {
  const ok: TrainArgsInput = { configFile: '/c.yaml', labels: '/l.slp', outputDir: '/o', runName: 'r' };
  const bad: [string, Partial<TrainArgsInput>][] = [
    ['relative labels', { labels: 'l.slp' }],
    ['option-like labels', { labels: '--help' }],
    ['relative config', { configFile: 'c.yaml' }],
    ['relative output', { outputDir: 'out' }],
    ['NUL in labels', { labels: '/l\0.slp' }],
    ['empty run name', { runName: '' }],
    ['zero epochs', { maxEpochs: 0 }],
    ['fractional epochs', { maxEpochs: 1.5 }],
    ['NaN batch', { batchSize: Number.NaN }],
    ['negative lr', { learningRate: -1 }],
    ['infinite lr', { learningRate: Number.POSITIVE_INFINITY }],
    ['prefix map with arrow', { prefixMap: { from: '/a->b', to: '/c' } }],
    ['relative prefix map', { prefixMap: { from: 'a', to: '/c' } }],
  ];
  for (const [name, patch] of bad) {
    assert.throws(
      () => buildTrainArgs({ ...ok, ...patch }),
      (e: unknown) => e instanceof SleapRtcError && e.code === 'INTERNAL',
      name,
    );
  }
  assert.throws(() => buildTrackArgs({ data: '/d', models: [], output: '/o' }), SleapRtcError);
  assert.throws(() => buildTrackArgs({ data: 'd', models: ['/m'], output: '/o' }), SleapRtcError);
  assert.throws(() => buildTrackArgs({ data: '/d', models: ['m'], output: '/o' }), SleapRtcError);
});

// File and folder names a user (or an attacker with write access to the share) could create.
const HOSTILE_NAMES = [
  'with space',
  "quote'single",
  'dq"uote',
  'semi;colon && echo pwned',
  '$(touch pwned)',
  '`touch pwned`',
  'new\nline',
  'back\\slash',
  'trailing\\',
  '${oc.env:HOME}',
  'comma,list',
  '[bracket]',
  'key=value',
  '-leading-dash',
  '*glob?',
  'pipe | amp & gt > lt <',
  "'",
  "\\'",
  'ünïcødé 日本',
];

test('hostile names reach sleap-nn verbatim, one argv element each, and are read and written as named', async (t) => {
  const root = await tempDir(t);
  const record = path.join(root, 'record.jsonl');
  for (const [i, name] of HOSTILE_NAMES.entries()) {
    const dir = path.join(root, `case${i}`, name);
    await mkdir(dir, { recursive: true });
    const labels = path.join(dir, `${name}.slp`);
    const configFile = path.join(dir, `${name}.yaml`);
    await writeFile(labels, 'labels');
    await writeFile(configFile, 'trainer_config:\n  max_epochs: 2\n');
    const outputDir = path.join(dir, `out ${name}`);
    const args = buildTrainArgs({ configFile, labels, outputDir, runName: name, prefixMap: { from: `/client/${name}`, to: dir } });

    const r = await runFake(args, { cwd: root, env: { FAKE_SLEAP_NN_RECORD: record } });
    assert.equal(r.code, 0, `train with ${JSON.stringify(name)}: ${r.stderr}`);
    assert.deepEqual((await readRecords(record)).at(-1)?.argv, args);
    // The fake read the labels at the decoded path and wrote the checkpoint where it was told.
    assert.ok(r.stdout.includes(`Loading labels from ${labels}`), JSON.stringify(name));
    assert.match(await readFile(path.join(outputDir, name, 'best.ckpt'), 'utf8'), /FAKE-CKPT/);

    const output = path.join(dir, `${name}.predictions.slp`);
    const trackArgs = buildTrackArgs({ data: labels, models: [path.join(outputDir, name)], output });
    const r2 = await runFake(trackArgs, { cwd: root, env: { FAKE_SLEAP_NN_RECORD: record } });
    assert.equal(r2.code, 0, `track with ${JSON.stringify(name)}: ${r2.stderr}`);
    assert.deepEqual((await readRecords(record)).at(-1)?.argv, trackArgs);
    assert.match(await readFile(output, 'utf8'), /fake_predictions/);
  }
  // Nothing was executed: no file appeared beside the cases.
  assert.deepEqual((await readdir(root)).filter((n) => !n.startsWith('case')).sort(), ['record.jsonl']);
});

test('a comma in a path cannot add a second labels file (Hydra list injection)', async (t) => {
  const root = await tempDir(t);
  // Someone with write access to the share creates "x,/etc/passwd" under their folder.
  const labels = path.join(root, 'x,', 'etc', 'passwd');
  await mkdir(path.dirname(labels), { recursive: true });
  await writeFile(labels, 'planted');
  await writeFile(path.join(root, 'c.yaml'), 'max_epochs: 1\n');
  const args = buildTrainArgs({ configFile: path.join(root, 'c.yaml'), labels, outputDir: path.join(root, 'o'), runName: 'r' });
  const r = await runFake(args);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Loaded 1 labels file\(s\)/);
  assert.doesNotMatch(r.stdout, /Loading labels from \/etc\/passwd/);
});

test('property: any file name survives Hydra quoting into sleap-nn', async (t) => {
  const root = await tempDir(t);
  const tricky = fc.constantFrom("'", '"', '\\', '$', '{', '}', ',', '[', ']', ' ', '\n', '=', ':', '(', ')', 'a', 'ü');
  let n = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.string({ unit: tricky, minLength: 1, maxLength: 12 }).filter((s) => s !== '.' && s !== '..'),
      async (name) => {
        const dir = path.join(root, String(n++));
        await mkdir(dir);
        const labels = path.join(dir, name);
        await writeFile(labels, 'x');
        await writeFile(path.join(dir, 'c.yaml'), 'max_epochs: 1\n');
        const args = buildTrainArgs({ configFile: path.join(dir, 'c.yaml'), labels, outputDir: path.join(dir, name + 'o'), runName: name });
        const r = await runFake(args);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(r.stdout.includes(`Loading labels from ${labels}\n`));
        assert.match(await readFile(path.join(dir, name + 'o', name, 'best.ckpt'), 'utf8'), /FAKE-CKPT/);
      },
    ),
    { numRuns: 25 },
  );
});

test('options reach sleap-nn: epochs honoured, prefix map printed', async (t) => {
  const root = await tempDir(t);
  await writeFile(path.join(root, 'c.yaml'), 'trainer_config:\n  max_epochs: 50\n');
  await writeFile(path.join(root, 'l.slp'), 'labels');
  const args = buildTrainArgs({
    configFile: path.join(root, 'c.yaml'),
    labels: path.join(root, 'l.slp'),
    outputDir: path.join(root, 'models'),
    runName: 'r',
    maxEpochs: 3,
    batchSize: 2,
    learningRate: 1,
    prefixMap: { from: '/Volumes/share', to: root },
  });
  const r = await runFake(args);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Epoch 3\/3/);
  assert.doesNotMatch(r.stdout, /Epoch 4\//);
  assert.ok(r.stdout.includes(`Prefix map: /Volumes/share -> ${root}`));
  assert.match(r.stdout, /batch_size=2 lr=1/);
  const log = await readFile(path.join(root, 'models', 'r', 'training_log.csv'), 'utf8');
  assert.equal(log.trim().split('\n').length, 4);
});
