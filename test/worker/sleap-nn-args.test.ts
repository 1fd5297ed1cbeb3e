import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { SleapRtcError } from '../../src/errors.js';
import { buildInferenceArgs, buildTrainArgs, hydraQuote, withTrailingSeparator, type TrainArgsInput } from '../../src/worker/sleap-nn-args.js';
import { readPredictions, readRecords, runFake, tempDir } from '../fixtures/fake-sleap-nn.js';
import { copySleapFile, copyTrainingConfig, writeLabelsNamingVideos } from '../helpers/sleap-data.js';

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
      "++data_config.train_labels_path=['/mnt/vast/amick/proj/labels.slp']",
      "++trainer_config.ckpt_dir='/mnt/vast/amick/proj/models'",
      "++trainer_config.run_name='run-1'",
      '++trainer_config.save_ckpt=true',
    ],
  );
});

test('train: every option; the prefix map is two values, each ending in a separator', () => {
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
      '/Volumes/vast/',
      '/mnt/vast/',
      "++data_config.train_labels_path=['/w/l.slp']",
      "++trainer_config.ckpt_dir='/w/out'",
      "++trainer_config.run_name='r'",
      '++trainer_config.save_ckpt=true',
      '++trainer_config.max_epochs=7',
      '++trainer_config.train_data_loader.batch_size=16',
      '++trainer_config.val_data_loader.batch_size=16',
      '++trainer_config.optimizer.lr=0.0003',
    ],
  );
});

test("train: the worker's ZMQ relay ports as sleap-nn's trainer_config.zmq overrides, each only when given", () => {
  const base = { configFile: '/w/c.yaml', labels: '/w/l.slp', outputDir: '/w/o', runName: 'r', maxEpochs: 2 };
  assert.deepEqual(buildTrainArgs({ ...base, zmq: { publishPort: 40001, controllerPort: 40002 } }).slice(-3), [
    '++trainer_config.max_epochs=2',
    '++trainer_config.zmq.publish_port=40001',
    '++trainer_config.zmq.controller_port=40002',
  ]);
  assert.deepEqual(buildTrainArgs({ ...base, zmq: { publishPort: 1 } }).slice(-1), ['++trainer_config.zmq.publish_port=1']);
  assert.deepEqual(buildTrainArgs({ ...base, zmq: {} }), buildTrainArgs(base));
});

test('train: one --video-path-map OLD NEW per video', () => {
  const args = buildTrainArgs({
    configFile: '/w/c.yaml',
    labels: '/w/l.slp',
    outputDir: '/w/o',
    runName: 'r',
    videoPathMap: [
      { from: '/Volumes/talmo/alice/a.mp4', to: '/mnt/vast/alice/a.mp4' },
      { from: 'D:\\cams\\b.mp4', to: '/scratch/cams/b.mp4' },
    ],
  });
  assert.deepEqual(args.slice(5, 11), [
    '--video-path-map',
    '/Volumes/talmo/alice/a.mp4',
    '/mnt/vast/alice/a.mp4',
    '--video-path-map',
    'D:\\cams\\b.mp4',
    '/scratch/cams/b.mp4',
  ]);
  assert.equal(args[11], "++data_config.train_labels_path=['/w/l.slp']");
});

test('prefix-map sides get their own separator, so /Volumes/talmo/ cannot match /Volumes/talmo2/', () => {
  const table: [string, string][] = [
    ['/Volumes/talmo', '/Volumes/talmo/'],
    ['/Volumes/talmo/', '/Volumes/talmo/'],
    ['/', '/'],
    ['C:\\Users\\alice\\data', 'C:\\Users\\alice\\data\\'],
    ['C:/Users/alice', 'C:/Users/alice/'],
    ['\\\\nas\\lab', '\\\\nas\\lab\\'],
  ];
  for (const [input, expected] of table) assert.equal(withTrailingSeparator(input), expected, input);
  const args = buildTrainArgs({ configFile: '/c.yaml', labels: '/l', outputDir: '/o', runName: 'r', prefixMap: { from: 'Z:\\talmo', to: '/mnt/talmo' } });
  assert.deepEqual(args.slice(5, 8), ['--prefix-map', 'Z:\\talmo\\', '/mnt/talmo/']);
});

test('learning rates are written so Hydra reads a float', () => {
  const lr = (x: number): string | undefined =>
    buildTrainArgs({ configFile: '/c.yaml', labels: '/l', outputDir: '/o', runName: 'r', learningRate: x }).at(-1);
  assert.equal(lr(1), '++trainer_config.optimizer.lr=1.0');
  assert.equal(lr(0.001), '++trainer_config.optimizer.lr=0.001');
  assert.equal(lr(1e-7), '++trainer_config.optimizer.lr=1e-7');
});

test('inference: the probed command, one --model_paths per model, then --output_path', () => {
  for (const command of ['predict', 'track'] as const) {
    assert.deepEqual(buildInferenceArgs({ command, data: '/d/v.mp4', models: ['/m/a', '/m/b'], output: '/d/v.predictions.slp' }), [
      command,
      '--data_path',
      '/d/v.mp4',
      '--model_paths',
      '/m/a',
      '--model_paths',
      '/m/b',
      '--output_path',
      '/d/v.predictions.slp',
    ]);
  }
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
  const bad: [string, Record<string, unknown>][] = [
    ['relative labels', { labels: 'l.slp' }],
    ['option-like labels', { labels: '--help' }],
    ['relative config', { configFile: 'c.yaml' }],
    ['relative output', { outputDir: 'out' }],
    ['NUL in labels', { labels: '/l\0.slp' }],
    ['empty run name', { runName: '' }],
    ['run name with a slash', { runName: 'a/b' }],
    ['run name ..', { runName: '..' }],
    ['zero epochs', { maxEpochs: 0 }],
    ['fractional epochs', { maxEpochs: 1.5 }],
    ['NaN batch', { batchSize: Number.NaN }],
    ['negative lr', { learningRate: -1 }],
    ['infinite lr', { learningRate: Number.POSITIVE_INFINITY }],
    ['relative prefix map', { prefixMap: { from: 'a', to: '/c' } }],
    ['relative prefix target', { prefixMap: { from: '/a', to: 'c' } }],
    ['NUL in prefix map', { prefixMap: { from: '/a\0', to: '/c' } }],
    ['both path options', { prefixMap: { from: '/a', to: '/b' }, videoPathMap: [{ from: '/a/v.mp4', to: '/b/v.mp4' }] }],
    ['empty video map', { videoPathMap: [] }],
    ['relative video target', { videoPathMap: [{ from: '/a/v.mp4', to: 'v.mp4' }] }],
    ['empty video source', { videoPathMap: [{ from: '', to: '/v.mp4' }] }],
    ['video named twice', { videoPathMap: [{ from: '/a.mp4', to: '/x.mp4' }, { from: '/a.mp4', to: '/y.mp4' }] }],
    ['port 0', { zmq: { publishPort: 0, controllerPort: 1 } }],
    ['port past 65535', { zmq: { publishPort: 1, controllerPort: 65_536 } }],
    ['fractional port', { zmq: { publishPort: 1.5 } }],
    ['NaN port', { zmq: { controllerPort: Number.NaN } }],
  ];
  for (const [name, patch] of bad) {
    assert.throws(
      () => buildTrainArgs({ ...ok, ...patch } as TrainArgsInput),
      (e: unknown) => e instanceof SleapRtcError && e.code === 'INTERNAL',
      name,
    );
  }
  const inf = { command: 'predict' as const, data: '/d', models: ['/m'], output: '/o' };
  for (const patch of [{ models: [] }, { data: 'd' }, { models: ['m'] }, { output: 'o' }, { command: 'infer' }]) {
    assert.throws(() => buildInferenceArgs({ ...inf, ...patch } as typeof inf), SleapRtcError, JSON.stringify(patch));
  }
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

// Dozens of stand-in runs, each loading HDF5 WebAssembly: generous on a loaded machine.
test('hostile names reach the stand-in verbatim, one argv element each, and are read and written as named', { timeout: 600_000 }, async (t) => {
  const root = await tempDir(t);
  // One case per name, a few at a time: each run is a process start, mostly spent waiting.
  const runCase = async (name: string, i: number): Promise<void> => {
    const dir = path.join(root, `case${i}`, name);
    await mkdir(dir, { recursive: true });
    const record = path.join(root, `case${i}`, 'record.jsonl');
    // Real files under hostile names: a package labels file (frames embedded) and a sample config.
    const labels = await copySleapFile('pkg', path.join(dir, `${name}.slp`));
    const configFile = await copyTrainingConfig(path.join(dir, `${name}.yaml`));
    const outputDir = path.join(dir, `out ${name}`);
    const args = buildTrainArgs({ configFile, labels, outputDir, runName: name, maxEpochs: 1, prefixMap: { from: `/client/${name}`, to: dir } });

    const r = await runFake(args, { cwd: root, env: { FAKE_SLEAP_NN_RECORD: record } });
    assert.equal(r.code, 0, `train with ${JSON.stringify(name)}: ${r.stderr}`);
    assert.deepEqual((await readRecords(record)).at(-1)?.argv, args);
    // The stand-in read the labels at the decoded path and wrote the checkpoint where it was told.
    assert.ok(r.stdout.includes(`Loading labels from ${labels}\n`), JSON.stringify(name));
    assert.match(await readFile(path.join(outputDir, name, 'best.ckpt'), 'utf8'), /FAKE-CKPT/);

    const output = path.join(dir, `${name}.predictions.slp`);
    const inferArgs = buildInferenceArgs({ command: 'predict', data: labels, models: [path.join(outputDir, name)], output });
    const r2 = await runFake(inferArgs, { cwd: root, env: { FAKE_SLEAP_NN_RECORD: record } });
    assert.equal(r2.code, 0, `predict with ${JSON.stringify(name)}: ${r2.stderr}`);
    assert.deepEqual((await readRecords(record)).at(-1)?.argv, inferArgs);
    // The stand-in's predictions name the labels file it read (its frames are embedded there).
    assert.deepEqual((await readPredictions(output)).videos, [[labels]]);
  };
  const queue = HOSTILE_NAMES.map((name, i) => () => runCase(name, i));
  await Promise.all(Array.from({ length: 6 }, async () => {
    for (let job = queue.shift(); job; job = queue.shift()) await job();
  }));
  // Nothing was executed: no file appeared beside the cases.
  assert.deepEqual((await readdir(root)).filter((n) => !n.startsWith('case')), []);
});

test('a comma in a path cannot add a second labels file (Hydra list injection)', async (t) => {
  const root = await tempDir(t);
  // Someone with write access to the share creates "x,/etc/passwd" under their folder.
  const labels = await copySleapFile('pkg', path.join(root, 'x,', 'etc', 'passwd'));
  const configFile = await copyTrainingConfig(path.join(root, 'c.yaml'));
  const args = buildTrainArgs({ configFile, labels, outputDir: path.join(root, 'o'), runName: 'r', maxEpochs: 1 });
  const r = await runFake(args);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.match(/Loading labels from .*/g), [`Loading labels from ${labels}`]);
});

test('property: any file name survives Hydra quoting into sleap-nn', { timeout: 600_000 }, async (t) => {
  const root = await tempDir(t);
  const configFile = await copyTrainingConfig(path.join(root, 'c.yaml'));
  const tricky = fc.constantFrom("'", '"', '\\', '$', '{', '}', ',', '[', ']', ' ', '\n', '=', ':', '(', ')', 'a', 'ü');
  let n = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.string({ unit: tricky, minLength: 1, maxLength: 12 }).filter((s) => s !== '.' && s !== '..'),
      async (name) => {
        const dir = path.join(root, String(n++));
        const labels = await copySleapFile('pkg', path.join(dir, name));
        const args = buildTrainArgs({ configFile, labels, outputDir: path.join(dir, name + 'o'), runName: name, maxEpochs: 1 });
        const r = await runFake(args);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(r.stdout.includes(`Loading labels from ${labels}\n`));
        assert.match(await readFile(path.join(dir, name + 'o', name, 'best.ckpt'), 'utf8'), /FAKE-CKPT/);
      },
    ),
    { numRuns: 10 },
  );
});

test('options reach sleap-nn: epochs, batch size and learning rate honoured, checkpoints saved', async (t) => {
  const root = await tempDir(t);
  const configFile = await copyTrainingConfig(path.join(root, 'c.yaml'));
  const labels = await copySleapFile('pkg', path.join(root, 'l.pkg.slp'));
  const args = buildTrainArgs({ configFile, labels, outputDir: path.join(root, 'models'), runName: 'r', maxEpochs: 3, batchSize: 2, learningRate: 1 });
  const r = await runFake(args);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Epoch 3\/3/);
  assert.doesNotMatch(r.stdout, /Epoch 4\//);
  assert.match(r.stdout, /max_epochs=3 batch_size=2 lr=1 save_ckpt=true/);
  const log = await readFile(path.join(root, 'models', 'r', 'training_log.csv'), 'utf8');
  assert.equal(log.trim().split('\n').length, 4);
  const config = await readFile(path.join(root, 'models', 'r', 'training_config.yaml'), 'utf8');
  assert.match(config, /^ {2}run_name: r$/m);
  assert.match(config, /^ {4}batch_size: 2$/m);
});

test('the prefix map moves videos from the client mount to the worker mount, and not a sibling mount', async (t) => {
  const root = await tempDir(t);
  const worker = path.join(root, 'mnt', 'vast');
  await copySleapFile('video', path.join(worker, 'alice', 'session1.mp4'));
  const configFile = await copyTrainingConfig(path.join(worker, 'alice', 'c.yaml'));
  const train = async (videoAsSaved: string): Promise<{ code: number | null; stdout: string; stderr: string }> => {
    // In another folder than the video: sleap-io would otherwise find it by name next to the labels.
    const labels = await writeLabelsNamingVideos(path.join(worker, 'alice', 'labels', `labels-${videoAsSaved.length}.slp`), [videoAsSaved]);
    const args = buildTrainArgs({
      configFile,
      labels,
      outputDir: path.join(worker, 'alice', 'models'),
      runName: `r${videoAsSaved.length}`,
      maxEpochs: 1,
      prefixMap: { from: '/Volumes/talmo', to: worker },
    });
    return runFake(args);
  };
  const ok = await train('/Volumes/talmo/alice/session1.mp4');
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(ok.stdout.includes(`: ${worker}/alice/session1.mp4\n`), ok.stdout);
  // Same prefix as a string, another mount: left alone, so the video is missing on the worker.
  const sibling = await train('/Volumes/talmo2/alice/session1.mp4');
  assert.equal(sibling.code, 1);
  assert.match(sibling.stderr, /video not found: \/Volumes\/talmo2\/alice\/session1\.mp4/);
  assert.match(sibling.stderr, /FileNotFoundError: One or more video files do not exist or are not accessible\./);
});

test('video path maps rewrite each named video', async (t) => {
  const root = await tempDir(t);
  const video = await copySleapFile('video', path.join(root, 'worker', 'cam A.mp4'));
  const configFile = await copyTrainingConfig(path.join(root, 'c.yaml'));
  const labels = await writeLabelsNamingVideos(path.join(root, 'labels.slp'), ['D:\\rig\\cam A.mp4']);
  const args = buildTrainArgs({ configFile, labels, outputDir: path.join(root, 'models'), runName: 'r', maxEpochs: 1, videoPathMap: [{ from: 'D:\\rig\\cam A.mp4', to: video }] });
  const r = await runFake(args);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.includes(`: ${video}\n`), r.stdout);
});
