/** The XDG base folders sleap-rtc keeps its own files in (https://specifications.freedesktop.org/basedir-spec/). */
import os from 'node:os';
import path from 'node:path';

function base(value: string | undefined, fallback: string): string {
  return path.join(value && path.isAbsolute(value) ? value : fallback, 'sleap-rtc');
}

/** `$XDG_CACHE_HOME/sleap-rtc`, else `~/.cache/sleap-rtc`: what can be rebuilt (the hash index, the worker's cache). */
export function xdgCacheDir(env: NodeJS.ProcessEnv = process.env, home: string = os.homedir()): string {
  return base(env.XDG_CACHE_HOME, path.join(home, '.cache'));
}

/** `$XDG_STATE_HOME/sleap-rtc`, else `~/.local/state/sleap-rtc`: what should survive (results still to fetch). */
export function xdgStateDir(env: NodeJS.ProcessEnv = process.env, home: string = os.homedir()): string {
  return base(env.XDG_STATE_HOME, path.join(home, '.local', 'state'));
}
