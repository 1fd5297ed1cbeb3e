/**
 * The demo's "machines" as folders of one temp dir, and a small lab project on shared storage.
 *
 *   cluster/mnt/vast/            the lab share as the GPU cluster mounts it (a real folder)
 *   laptop/Volumes/talmo  ->     the same share as the scientist's Mac mounts it (a symlink to it)
 *   <machine>/home/.config/sleap-rtc/config.toml   each machine's own configuration
 *
 * The project files are real SLEAP files copied from ../shared/sleap-data (a labels package file,
 * sleap-nn's sample config, a video); sleap-nn's stand-in (test/fixtures/sleap-nn) reads them as sleap-nn would.
 */
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { copySleapFile, copyTrainingConfig } from '../test/helpers/sleap-data.js';

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

  // Real SLEAP files (../shared/sleap-data): a labels package file (its frames embedded),
  // sleap-nn's sample centroid config, and a clip to run the trained model on.
  await copySleapFile('pkg', path.join(projectOnShare, 'labels.slp'));
  await copyTrainingConfig(path.join(projectOnShare, 'centroid.yaml'), 'centroidConfig');
  await copySleapFile('video', path.join(projectOnShare, 'session1.mp4'));
  return lab;
}

/** A machine's config file (written where `sleap-rtc` looks by default); returns its text. */
export async function writeConfig(m: Machine, toml: string): Promise<string> {
  await mkdir(path.dirname(m.configFile), { recursive: true });
  await writeFile(m.configFile, toml);
  return toml;
}
