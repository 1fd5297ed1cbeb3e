// The stand-in must be as strict as the real sleap-nn, or tests built on it prove nothing.
// Each table row is a command line with what sleap-nn 0.3.3 does with it (sleap_nn/cli.py with
// click and Hydra 1.3): exit 2 for a click usage error, exit 1 for a Python exception.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, open, readFile, readdir, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readRecords, runFake, tempDir } from '../fixtures/fake-sleap-nn.js';
import { copyLabelsWithVideo, copySleapFile, copyTrainingConfig } from '../helpers/sleap-data.js';
import { labelsContent, labelsOnly } from '../helpers/slp-content.js';
import { writeLabelsNamingVideos } from '../helpers/sleap-data.js';

interface Setup {
  root: string;
  labels: string;
  /** train with the real config, the real labels (video beside them), checkpoints on, 2 epochs. */
  base: string[];
  /** The overrides of `base` alone. */
  overrides: string[];
  model: string;
}

async function setup(t: TestContext): Promise<Setup> {
  const root = await tempDir(t);
  const { labels } = await copyLabelsWithVideo(root);
  await copyTrainingConfig(path.join(root, 'c.yaml'));
  const overrides = [
    `++data_config.train_labels_path=['${labels}']`,
    `++trainer_config.ckpt_dir='${root}/out'`,
    "++trainer_config.run_name='r'",
    '++trainer_config.save_ckpt=true',
    '++trainer_config.max_epochs=2',
  ];
  // A model folder as training leaves it.
  const model = path.join(root, 'model');
  await copyTrainingConfig(path.join(model, 'training_config.yaml'));
  await writeFile(path.join(model, 'best.ckpt'), 'ckpt');
  return { root, labels, base: ['train', '--config-name', 'c.yaml', '--config-dir', root, ...overrides], overrides, model };
}

const RUN_FILES_NO_CKPT = ['initial_config.yaml', 'labels_gt.train.0.slp', 'labels_gt.val.0.slp', 'training_config.yaml'];
const RUN_FILES = [...RUN_FILES_NO_CKPT, 'best.ckpt', 'labels_pr.train.0.slp', 'labels_pr.val.0.slp', 'metrics.train.0.npz', 'metrics.val.0.npz', 'training_log.csv'].sort();

test('command lines the real sleap-nn refuses are refused, with its exit code and message', async (t) => {
  const s = await setup(t);
  const { root, base, overrides, labels, model } = s;
  const cfg = ['train', '--config-name', 'c.yaml', '--config-dir', root];
  const notHdf5 = path.join(root, 'text.slp');
  await writeFile(notHdf5, 'labels');
  const noVideos = path.join(root, 'no-videos.slp');
  await new Promise<void>((resolve, reject) =>
    execFile('/usr/bin/python3', ['-c', 'import h5py,sys; h5py.File(sys.argv[1], "w").create_dataset("frames", data=[1])', noVideos], (e) => (e ? reject(e) : resolve())),
  );
  const videoless = path.join(root, 'elsewhere', 'labels.slp');
  await copySleapFile('labels', videoless);
  const modelNoCkpt = path.join(root, 'model-no-ckpt');
  await copyTrainingConfig(path.join(modelNoCkpt, 'training_config.yaml'));
  const modelNoConfig = path.join(root, 'model-no-config');
  await mkdir(modelNoConfig);
  await writeFile(path.join(modelNoConfig, 'best.ckpt'), 'x');
  const withLabels = (p: string): string[] => [...cfg, `++data_config.train_labels_path=['${p}']`, ...overrides.slice(1)];
  const predict = (...a: string[]): string[] => ['predict', '-i', labels, '-m', model, '-o', `${root}/p.slp`, ...a];

  const cases: [string, string[], 1 | 2, RegExp, Record<string, string>?][] = [
    // click: the command group
    ['no command', [], 2, /Error: Missing command\./],
    ['unknown command', ['fit'], 2, /Error: No such command 'fit'\./],
    ['unknown group option', ['--gpus', 'train'], 2, /No such option: --gpus/],
    ['predict on a sleap-nn without it', predict(), 2, /No such command 'predict'/, { FAKE_SLEAP_NN_NO_PREDICT: '1' }],
    // click: train's options
    ['unknown option', [...base, '--gpus', '2'], 2, /Error: No such option: --gpus/],
    ['--prefix-map without values', [...base, '--prefix-map'], 2, /Option '--prefix-map' requires 2 arguments\./],
    ['--prefix-map with one value', [...base, '--prefix-map', '/a'], 2, /requires 2 arguments/],
    ['--video-path-map with one value', [...base, '--video-path-map', '/a.mp4'], 2, /Option '--video-path-map' requires 2 arguments\./],
    ['--config-name without value', [...base, '--config-name'], 2, /Option '--config-name' requires an argument\./],
    ['two path options', [...base, '--prefix-map', '/a', '/b', '--video-path-map', '/c', '/d'], 2, /Cannot use multiple path replacement options/],
    ['--video-paths and --prefix-map', [...base, '-v', '/v.mp4', '--prefix-map', '/a', '/b'], 2, /Cannot use multiple path replacement options/],
    ['no config at all', ['train', ...overrides], 2, /no config given/],
    ['config name twice (stricter)', [...base, '--config-name', 'd.yaml'], 2, /given twice/],
    // The old one-value form: click gives --prefix-map the NEXT argument as its second value, so the
    // labels override never reaches Hydra; sleap-nn then has no labels to train on.
    ['old --prefix-map A->B form', [...cfg, '--prefix-map', '/Volumes/a->/mnt/a', ...overrides], 1, /TypeError: .*train_labels_path must be a non-empty list/],
    // click: inference options
    ['predict without --data_path', ['predict', '-m', model], 2, /Missing option '--data_path' \/ '-i'\./],
    ['predict unknown option', predict('--json'), 2, /No such option: --json/],
    ['predict bad integer', predict('--batch_size', 'many'), 2, /'many' is not a valid integer/],
    ['track stray argument', ['track', '-i', labels, '-m', model, '-o', `${root}/p.slp`, 'extra'], 2, /Got unexpected extra argument \(extra\)/],
    // Hydra (struct mode)
    ['plain override of a missing key', [...base, 'trainer_config.not_a_key=1'], 1, /Could not override 'trainer_config\.not_a_key'\.[\s\S]*Key 'not_a_key' is not in struct/],
    ['append over an existing key', [...base.slice(0, -1), '+trainer_config.max_epochs=2'], 1, /Could not append to config\. An item is already at 'trainer_config\.max_epochs'/],
    ['sweep', [...base.slice(0, -1), 'trainer_config.max_epochs=1,2'], 1, /sweep/],
    ['unterminated quote', [...base.slice(0, 2 + 3), ...overrides.slice(0, 2), "++trainer_config.run_name='r"], 1, /OverrideParseException/],
    ['interpolation', [...base.slice(0, 2 + 3), ...overrides.slice(0, 2), "++trainer_config.run_name='${oc.env:HOME}'"], 1, /OverrideParseException/],
    ['same key twice (stricter)', [...base, '++trainer_config.max_epochs=3'], 1, /overridden twice/],
    ['under a null node', [...base, '++model_config.head_configs.single_instance.confmaps.sigma=1'], 1, /is null/],
    ['missing config file', ['train', '--config-name', 'nope.yaml', '--config-dir', root, ...overrides], 1, /MissingConfigException: Cannot find primary config 'nope'/],
    ['missing config dir', ['train', '--config-name', 'c.yaml', '--config-dir', `${root}/none`, ...overrides], 1, /Primary config directory not found/],
    // what sleap-nn does with the composed values
    ['labels not a list', [...cfg, `++data_config.train_labels_path='${labels}'`, ...overrides.slice(1)], 1, /train_labels_path must be a non-empty list/],
    ['fractional epochs', [...base.slice(0, -1), '++trainer_config.max_epochs=1.5'], 1, /max_epochs must be a positive integer/],
    ['save_ckpt not a bool', [...base.slice(0, -2), '++trainer_config.save_ckpt=yes', '++trainer_config.max_epochs=2'], 1, /save_ckpt must be true or false/],
    // sleap-io reading the labels
    ['missing labels', withLabels(`${root}/missing.slp`), 1, /FileNotFoundError: Unable to synchronously open file \(unable to open file: name = '.*missing\.slp', errno = 2/],
    ['labels not HDF5', withLabels(notHdf5), 1, /OSError: Unable to synchronously open file \(file signature not found\)/],
    ['labels without videos_json', withLabels(noVideos), 1, /KeyError: .*'videos_json' doesn't exist/],
    ['a video that is not there', withLabels(videoless), 1, /FileNotFoundError: One or more video files do not exist or are not accessible\./],
    ['predict: a video that is not there', ['predict', '-i', videoless, '-m', model, '-o', `${root}/p.slp`], 1, /FileNotFoundError: Video file not found: '.*small_robot\.mp4'/],
    ['predict: missing data', ['predict', '-i', `${root}/none.mp4`, '-m', model], 1, /No such file or directory: '.*none\.mp4'/],
    ['predict: no model', ['predict', '-i', labels], 1, /no --model_paths/],
    ['predict: model without best.ckpt', ['predict', '-i', labels, '-m', modelNoCkpt], 1, /FileNotFoundError: .*best\.ckpt/],
    ['predict: model without training_config', ['track', '-i', labels, '-m', modelNoConfig], 1, /FileNotFoundError: .*training_config\.yaml/],
    ['a broken installation', ['--version'], 1, /ImportError/, { FAKE_SLEAP_NN_BROKEN: '1' }],
  ];
  for (const [name, args, code, message, env] of cases) {
    const r = await runFake(args, { cwd: root, ...(env ? { env } : {}) });
    assert.equal(r.code, code, `${name}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, message, name);
    if (code === 2) assert.match(r.stderr, /^Usage: sleap-nn/m, name);
    else assert.match(r.stderr, /^Traceback \(most recent call last\):/m, name);
  }
  assert.deepEqual((await readdir(root)).filter((n) => n === 'out' || n === 'p.slp'), [], 'no refused command wrote anything');
});

test('command lines the real sleap-nn accepts are accepted', async (t) => {
  const s = await setup(t);
  const { root, overrides, labels, model } = s;
  const pkg = await copySleapFile('pkg', path.join(root, 'pkg', 'minimal_instance.pkg.slp'));
  const video = path.join(root, 'small_robot.mp4');
  const run = (name: string, i: number): string => `++trainer_config.run_name='${name}${i}'`;
  const trains: [string, (i: number) => string[]][] = [
    ['long options', (i) => ['train', '--config-name', 'c.yaml', '--config-dir', root, ...overrides.slice(0, 2), run('a', i), ...overrides.slice(3)]],
    ['short options', (i) => ['train', '-c', 'c.yaml', '-d', root, ...overrides.slice(0, 2), run('b', i), ...overrides.slice(3)]],
    ['--opt=value', (i) => ['train', '--config-name=c.yaml', `--config-dir=${root}`, ...overrides.slice(0, 2), run('c', i), ...overrides.slice(3)]],
    ['config name without .yaml', (i) => ['train', '-c', 'c', '-d', root, ...overrides.slice(0, 2), run('d', i), ...overrides.slice(3)]],
    ['positional config path', (i) => ['train', `${root}/c.yaml`, ...overrides.slice(0, 2), run('e', i), ...overrides.slice(3)]],
    ['--config PATH', (i) => ['train', '--config', `${root}/c.yaml`, ...overrides.slice(0, 2), run('f', i), ...overrides.slice(3)]],
    ['plain override of an existing key', (i) => ['train', '-c', 'c.yaml', '-d', root, ...overrides.slice(0, 2), run('g', i), 'trainer_config.save_ckpt=true', 'trainer_config.max_epochs=1']],
    ['append of a new key', (i) => ['train', '-c', 'c.yaml', '-d', root, ...overrides.slice(0, 2), run('h', i), ...overrides.slice(3), '+trainer_config.note=hello']],
    ['options after overrides', (i) => ['train', ...overrides.slice(0, 2), run('i', i), ...overrides.slice(3), '--config-name', 'c.yaml', '--config-dir', root, '--prefix-map', '/Volumes/x/', '/mnt/x/']],
    ['-- before overrides', (i) => ['train', '-c', 'c.yaml', '-d', root, '--', ...overrides.slice(0, 2), run('j', i), ...overrides.slice(3)]],
    ['repeated --video-path-map', (i) => ['train', '-c', 'c.yaml', '-d', root, '--video-path-map', '/a.mp4', '/b.mp4', '--video-path-map', '/c.mp4', '/d.mp4', ...overrides.slice(0, 2), run('k', i), ...overrides.slice(3)]],
    ['--video-paths in video order', (i) => ['train', '-c', 'c.yaml', '-d', root, '--video-paths', video, ...overrides.slice(0, 2), run('l', i), ...overrides.slice(3)]],
    ['embedded frames, no video file', (i) => ['train', '-c', 'c.yaml', '-d', root, `++data_config.train_labels_path=['${pkg}']`, overrides[1] as string, run('m', i), ...overrides.slice(3)]],
  ];
  for (const [i, [name, args]] of trains.entries()) {
    const r = await runFake(args(i), { cwd: root });
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
  }
  const infers: [string, string[]][] = [
    ['predict, long options', ['predict', '--data_path', labels, '--model_paths', model, '--output_path', `${root}/p1.slp`]],
    ['predict, short options', ['predict', '-i', labels, '-m', model, '-m', model, '-o', `${root}/p2.slp`]],
    ['predict on a video', ['predict', '-i', video, '-m', model, '-o', `${root}/p3.slp`]],
    ['predict, model named by its best.ckpt', ['predict', '-i', pkg, '-m', `${model}/best.ckpt`, '-o', `${root}/p4.slp`]],
    ['track', ['track', '--data_path', labels, '--model_paths', model, '-o', `${root}/p5.slp`]],
    ['help', ['predict', '--help']],
    ['version', ['--version']],
  ];
  for (const [name, args] of infers) {
    const r = await runFake(args, { cwd: root });
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
  }
  assert.equal((await runFake(['-v'])).stdout, 'sleap-nn 0.3.3\n');
  assert.equal((await runFake(['--version'], { env: { FAKE_SLEAP_NN_VERSION: '0.0.9' } })).stdout, 'sleap-nn 0.0.9\n');
  assert.equal((await runFake(['track', '--help'], { env: { FAKE_SLEAP_NN_NO_PREDICT: '1' } })).code, 0);
});

test('the run folder holds what sleap-nn writes; save_ckpt=false writes no model', async (t) => {
  const { root, base, overrides } = await setup(t);
  const r = await runFake(base);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Epoch 2\/2/);
  assert.deepEqual((await readdir(path.join(root, 'out', 'r'))).sort(), RUN_FILES);
  // The ground-truth copies are real HDF5 files.
  assert.equal((await readFile(path.join(root, 'out', 'r', 'labels_gt.train.0.slp'))).subarray(1, 4).toString(), 'HDF');
  const noCkpt = [...base.slice(0, 5), ...overrides.slice(0, 2), "++trainer_config.run_name='n'", '++trainer_config.save_ckpt=false', '++trainer_config.max_epochs=1'];
  const r2 = await runFake(noCkpt);
  assert.equal(r2.code, 0, r2.stderr);
  assert.deepEqual((await readdir(path.join(root, 'out', 'n'))).sort(), RUN_FILES_NO_CKPT);
});

test('labels_gt and labels_pr name the videos as sleap-nn holds them after the path map (not a copy of the input)', async (t) => {
  const { root, base, overrides } = await setup(t);
  // Videos named as on the labelling machine, mapped to where they are here (as the worker does).
  const labels = await writeLabelsNamingVideos(path.join(root, 'lab.slp'), ['/Volumes/talmo/alice/a.mp4', '/Volumes/talmo/alice/b.mp4']);
  await copySleapFile('video', path.join(root, 'v', 'a.mp4'));
  await copySleapFile('video', path.join(root, 'v', 'b.mp4'));
  const r = await runFake([...base.slice(0, 5), `++data_config.train_labels_path=['${labels}']`, ...overrides.slice(1),
    '--video-path-map', '/Volumes/talmo/alice/a.mp4', `${root}/v/a.mp4`, '--video-path-map', '/Volumes/talmo/alice/b.mp4', `${root}/v//b.mp4`]);
  assert.equal(r.code, 0, r.stderr);
  const run = path.join(root, 'out', 'r');
  for (const split of ['train', 'val']) {
    const gt = labelsContent(path.join(run, `labels_gt.${split}.0.slp`));
    assert.deepEqual(gt.videos, [[`${root}/v/a.mp4`], [`${root}/v/b.mp4`]], `labels_gt.${split}: the mapped names (Path(NEW).as_posix())`);
    assert.deepEqual(gt.provenance, { filename: labels }, 'sleap-io records where it loaded the labels from');
    assert.deepEqual(labelsOnly(path.join(run, `labels_gt.${split}.0.slp`)), labelsOnly(labels), 'the same frames, instances and points');
    const pr = labelsContent(path.join(run, `labels_pr.${split}.0.slp`));
    assert.deepEqual(pr.videos, gt.videos, `labels_pr.${split}: predicted on labels_gt, its videos named as there`);
    assert.equal(pr.provenance.source_file, path.join(run, `labels_gt.${split}.0.slp`));
  }
  // A package: its frames stay in it; the ground truth names the package file it was loaded from.
  const pkg = await copySleapFile('pkg', path.join(root, 'p.pkg.slp'));
  const r2 = await runFake([...base.slice(0, 5), `++data_config.train_labels_path=['${pkg}']`, overrides[1]!, "++trainer_config.run_name='p'", ...overrides.slice(3)]);
  assert.equal(r2.code, 0, r2.stderr);
  const gt = labelsContent(path.join(root, 'out', 'p', 'labels_gt.train.0.slp'));
  assert.deepEqual(gt.videos, [[pkg]]);
  assert.deepEqual(labelsOnly(path.join(root, 'out', 'p', 'labels_gt.train.0.slp')), labelsOnly(pkg));
  assert.deepEqual(labelsContent(path.join(root, 'out', 'p', 'labels_pr.val.0.slp')).videos, [[pkg]]);
});

test('an existing run folder with best.ckpt makes sleap-nn train into <run_name>-1, -2; one without is reused', async (t) => {
  const { root, base } = await setup(t);
  for (let i = 0; i < 3; i++) assert.equal((await runFake(base)).code, 0);
  assert.deepEqual((await readdir(path.join(root, 'out'))).sort(), ['r', 'r-1', 'r-2']);
  await mkdir(path.join(root, 'out', 'empty'));
  const again = base.map((a) => (a === "++trainer_config.run_name='r'" ? "++trainer_config.run_name='empty'" : a));
  const r = await runFake(again);
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await readdir(path.join(root, 'out'))).every((n) => !n.startsWith('empty-')));
  assert.ok((await readdir(path.join(root, 'out', 'empty'))).includes('best.ckpt'));
});

test('no run name: sleap-nn makes one from the time, the model type and the frame count', async (t) => {
  const { root, base } = await setup(t);
  const r = await runFake(base.filter((a) => !a.startsWith('++trainer_config.run_name')));
  assert.equal(r.code, 0, r.stderr);
  const [name] = await readdir(path.join(root, 'out'));
  assert.match(name ?? '', /^\d{6}_\d{6}\.centroid\.n=\d+$/);
});

test('FAKE_SLEAP_NN_FAIL exits 3 after some output; RECORD holds argv and cwd', async (t) => {
  const { root, base } = await setup(t);
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

test('RECORD lists the real path of every input opened, read back from the descriptor: links and pinned /proc/<pid>/fd names resolved', async (t) => {
  const { root, labels, model } = await setup(t);
  const real = await realpath(root);
  const record = path.join(root, 'rec.jsonl');
  // The labels as the worker hands them over: a name in a private folder, a link to a descriptor
  // the test holds; the file is then renamed, so only the descriptor still knows where it is.
  const held = await open(labels, 'r');
  t.after(() => held.close());
  await mkdir(path.join(root, 'inputs'));
  await symlink(`/proc/${process.pid}/fd/${held.fd}`, path.join(root, 'inputs', 'labels.slp'));
  await rename(labels, path.join(root, 'moved.slp'));
  await symlink(root, path.join(root, 'configs'));
  const r = await runFake(
    ['train', '--config-name', 'c.yaml', '--config-dir', path.join(root, 'configs'), `++data_config.train_labels_path=['${root}/inputs/labels.slp']`,
      `++trainer_config.ckpt_dir='${root}/out'`, "++trainer_config.run_name='r'", '++trainer_config.save_ckpt=true', '++trainer_config.max_epochs=1',
      '--video-path-map', 'tests/data/videos/small_robot.mp4', `${root}/small_robot.mp4`],
    { cwd: root, env: { FAKE_SLEAP_NN_RECORD: record } },
  );
  assert.equal(r.code, 0, r.stderr);
  // The ground-truth copy names the video as --video-path-map made it; once that file is gone, predicting on it fails.
  await rename(path.join(root, 'small_robot.mp4'), path.join(root, 'away.mp4'));
  const p = await runFake(['predict', '-i', `${root}/out/r/labels_gt.train.0.slp`, '-m', model, '-o', `${root}/p.slp`, '--video_index', '0'], {
    cwd: root,
    env: { FAKE_SLEAP_NN_RECORD: record },
  });
  assert.equal(p.code, 1, 'the copy names the remapped video, which is gone');
  assert.match(p.stderr, new RegExp(`video not found: ${root}/small_robot\\.mp4`));
  await rename(path.join(root, 'away.mp4'), path.join(root, 'small_robot.mp4'));
  const q = await runFake(['predict', '-i', `${real}/small_robot.mp4`, '-m', `${model}/best.ckpt`, '-o', `${root}/p.slp`], { cwd: root, env: { FAKE_SLEAP_NN_RECORD: record } });
  assert.equal(q.code, 0, q.stderr);
  const [trainRun, failedRun, predictRun] = await readRecords(record);
  // Config, labels (read, then read again to save the train and val ground truth), the video the
  // labels name; then each ground-truth copy and its video again, predicted on after training.
  const gt = (split: string): string[] => [`${real}/out/r/labels_gt.${split}.0.slp`, `${real}/small_robot.mp4`];
  assert.deepEqual(trainRun?.opened, [`${real}/c.yaml`, `${real}/moved.slp`, `${real}/small_robot.mp4`, `${real}/moved.slp`, `${real}/moved.slp`, ...gt('train'), ...gt('val')]);
  // A run that stops on a missing video still lists what it had opened (the model files, the labels).
  assert.deepEqual(failedRun?.opened, [`${real}/model/training_config.yaml`, `${real}/model/best.ckpt`, `${real}/out/r/labels_gt.train.0.slp`]);
  assert.deepEqual(predictRun?.opened, [`${real}/model/training_config.yaml`, `${real}/model/best.ckpt`, `${real}/small_robot.mp4`]);
});

test("a labels file given as a link whose real name is gone fails as h5py does: OSError (can't retrieve real path for file)", async (t) => {
  const { root, labels, model } = await setup(t);
  // HDF5 resolves a linked path to its real name by name (H5F__build_actual_name), as Debian's
  // h5py shows on the same pinned link after the file is removed.
  const held = await open(labels, 'r');
  t.after(() => held.close());
  await mkdir(path.join(root, 'pinned'));
  await symlink(`/proc/${process.pid}/fd/${held.fd}`, path.join(root, 'pinned', 'labels.slp'));
  await rm(labels);
  const r = await runFake(['predict', '-i', path.join(root, 'pinned', 'labels.slp'), '-m', model, '-o', `${root}/p.slp`]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^OSError: Unable to synchronously open file \(can't retrieve real path for file\)$/m);
  assert.doesNotMatch(r.stderr, /HDF5-DIAG/, 'h5py prints no HDF5 error stack');
});
