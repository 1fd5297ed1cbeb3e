/** The start-up probe of sleap-nn, against the stand-in and against programs that are not sleap-nn. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SleapRtcError } from '../../src/errors.js';
import { probeSleapNn } from '../../src/worker/sleap-nn-probe.js';
import { FAKE_SLEAP_NN, tempDir } from '../fixtures/fake-sleap-nn.js';

const env = (extra: Record<string, string>): NodeJS.ProcessEnv => ({ ...process.env, ...extra });

test('finds the version and predict; an old sleap-nn without predict gets track', async () => {
  assert.deepEqual(await probeSleapNn(FAKE_SLEAP_NN), { executable: FAKE_SLEAP_NN, version: '0.3.3', inferenceCommand: 'predict' });
  assert.deepEqual(await probeSleapNn(FAKE_SLEAP_NN, { env: env({ FAKE_SLEAP_NN_NO_PREDICT: '1', FAKE_SLEAP_NN_VERSION: '0.0.4' }) }), {
    executable: FAKE_SLEAP_NN,
    version: '0.0.4',
    inferenceCommand: 'track',
  });
});

test('a sleap-nn that cannot run is a start-up error with a code, an exit status and the fix', async (t) => {
  const dir = await tempDir(t);
  const script = async (name: string, body: string, mode = 0o755): Promise<string> => {
    const p = path.join(dir, name);
    await writeFile(p, `#!/bin/sh\n${body}\n`);
    await chmod(p, mode);
    return p;
  };
  const cases: [string, string, NodeJS.ProcessEnv | undefined, string, 1 | 2, RegExp][] = [
    ['missing', path.join(dir, 'nope'), undefined, 'SLEAP_NN_NOT_FOUND', 2, /was not found.*\[worker\] sleap_nn/],
    ['not executable', await script('plain', 'exit 0', 0o644), undefined, 'SLEAP_NN_NOT_FOUND', 2, /not executable/],
    ['not sleap-nn', await script('other', 'echo "Python 3.11.4"'), undefined, 'SLEAP_NN_NOT_FOUND', 2, /is not sleap-nn.*Python 3\.11\.4/],
    ['broken install', FAKE_SLEAP_NN, env({ FAKE_SLEAP_NN_BROKEN: '1' }), 'SLEAP_NN_UNUSABLE', 1, /--version` exited with code 1: ImportError/],
    ['no inference command', await script('old', 'if [ "$1" = --version ]; then echo "sleap-nn 0.0.1"; exit 0; fi; echo "No such command" >&2; exit 2'), undefined, 'SLEAP_NN_UNUSABLE', 1, /neither a `predict` nor a `track`/],
  ];
  for (const [name, executable, e, code, exit, message] of cases) {
    await assert.rejects(
      probeSleapNn(executable, e ? { env: e } : {}),
      (err: unknown) => {
        assert.ok(err instanceof SleapRtcError, name);
        assert.equal(err.code, code, name);
        assert.equal(err.exitCode, exit, name);
        assert.match(err.message, message, name);
        return true;
      },
      name,
    );
  }
});

test('a probe that hangs is cut off by its timeout', async (t) => {
  const dir = await tempDir(t);
  const p = path.join(dir, 'hang');
  await writeFile(p, '#!/bin/sh\nexec sleep 30\n');
  await chmod(p, 0o755);
  await assert.rejects(probeSleapNn(p, { timeoutMs: 300 }), (e: unknown) => e instanceof SleapRtcError && e.code === 'SLEAP_NN_UNUSABLE' && /did not answer/.test(e.message));
});
