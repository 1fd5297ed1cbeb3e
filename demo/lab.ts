/**
 * The demo's "machines" as folders of one temp dir, and a small lab project on shared storage.
 *
 *   cluster/mnt/vast/            the lab share as the GPU cluster mounts it (a real folder)
 *   laptop/Volumes/talmo  ->     the same share as the scientist's Mac mounts it (a symlink to it)
 *   <machine>/home/.config/sleap-rtc/config.toml   each machine's own configuration
 *
 * The project files are stand-ins: sleap-nn's stand-in (test/fixtures/sleap-nn) only reads their
 * bytes and the `max_epochs:` line of the config, but they look like what a lab would have.
 */
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FAKE_SLEAP_NN = fileURLToPath(new URL('../test/fixtures/sleap-nn', import.meta.url));

export interface Machine {
  /** Shown in prompts: `laptop$`. */
  name: string;
  home: string;
  /** `~/.config/sleap-rtc/config.toml` under `home`. */
  configFile: string;
}

export interface Lab {
  root: string;
  /** The share as the cluster sees it (worker `base_path`). */
  clusterMount: string;
  /** The share as the laptop sees it (client `base_path`, a symlink to clusterMount). */
  laptopMount: string;
  /** The project folder, as the laptop sees it. */
  project: string;
  server: Machine;
  laptop: Machine;
  cluster: Machine;
  workstation: Machine;
}

const USER = 'alice';
const PROJECT = 'mouse-study';

function machine(root: string, name: string): Machine {
  const home = path.join(root, name, 'home');
  return { name, home, configFile: path.join(home, '.config', 'sleap-rtc', 'config.toml') };
}

export async function buildLab(root: string): Promise<Lab> {
  const clusterMount = path.join(root, 'cluster', 'mnt', 'vast');
  const laptopMount = path.join(root, 'laptop', 'Volumes', 'talmo');
  const lab: Lab = {
    root,
    clusterMount,
    laptopMount,
    project: path.join(laptopMount, USER, PROJECT),
    server: machine(root, 'server'),
    laptop: machine(root, 'laptop'),
    cluster: machine(root, 'cluster'),
    workstation: machine(root, 'workstation'),
  };
  for (const m of [lab.server, lab.laptop, lab.cluster, lab.workstation]) await mkdir(m.home, { recursive: true });
  const projectOnShare = path.join(clusterMount, USER, PROJECT);
  await mkdir(projectOnShare, { recursive: true });
  await mkdir(path.dirname(laptopMount), { recursive: true });
  await symlink(clusterMount, laptopMount);

  await writeFile(path.join(projectOnShare, 'labels.slp'), labelsFile(path.join(laptopMount, USER, PROJECT, 'session1.mp4')));
  await writeFile(path.join(projectOnShare, 'centroid.yaml'), TRAINING_CONFIG);
  await writeFile(path.join(projectOnShare, 'session1.mp4'), videoBytes(256 * 1024));
  return lab;
}

/** A machine's config file (written where `sleap-rtc` looks by default); returns its text. */
export async function writeConfig(m: Machine, toml: string): Promise<string> {
  await mkdir(path.dirname(m.configFile), { recursive: true });
  await writeFile(m.configFile, toml);
  return toml;
}

const TRAINING_CONFIG = `# sleap-nn training config: a small centroid model for top-down tracking
data_config:
  validation_fraction: 0.1
  preprocessing:
    scale: 0.5
model_config:
  backbone_config:
    unet:
      filters: 16
      max_stride: 16
  head_configs:
    centroid:
      confmaps:
        anchor_part: neck
        sigma: 2.5
trainer_config:
  max_epochs: 5
  train_data_loader:
    batch_size: 4
  optimizer:
    lr: 0.0001
`;

const NODES = ['nose', 'left_ear', 'right_ear', 'neck', 'tail_base', 'tail_tip'];

/**
 * Real .slp files are HDF5; this text stand-in holds the same kind of content. Like a real one
 * it names its video by the absolute path on the machine where it was labelled (the laptop),
 * which is why sleap-nn on the worker gets a --prefix-map.
 */
function labelsFile(videoPath: string): string {
  const lines = [
    '# stand-in for a SLEAP labels file (real ones are HDF5)',
    'skeleton: mouse',
    `  nodes: ${NODES.join(', ')}`,
    '  edges: nose-neck, left_ear-neck, right_ear-neck, neck-tail_base, tail_base-tail_tip',
    'videos:',
    `  0: ${videoPath}  (1024x1024, 30 fps, 18000 frames)`,
    'labeled_frames:',
  ];
  for (let f = 0; f < 40; f++) {
    const frame = 120 + f * 450;
    const cx = 300 + ((f * 37) % 400);
    const cy = 280 + ((f * 53) % 450);
    const points = NODES.map((n, i) => `${n}=(${(cx + i * 11.5).toFixed(1)},${(cy + i * 7.25).toFixed(1)})`);
    lines.push(`  video 0 frame ${frame}: ${points.join(' ')}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Deterministic bytes standing for a short video clip. */
function videoBytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = 0x2545f491;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  b.write('demo video stand-in', 0, 'ascii');
  return b;
}
