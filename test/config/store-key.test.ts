/**
 * The signaling store's key: `[signaling] store` (issue 12's name) and the older, documented
 * `[server] store`. Either works alone; both agreeing is fine; both disagreeing is a
 * configuration error naming both keys and the fix. `server.store` carries the store in effect.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/config/errors.js';
import { parseConfig } from '../../src/config/load.js';

const REDIS = 'redis://10.0.0.5:6379/0';
const OTHER = 'redis://10.0.0.6:6379/1';

test('[signaling] store and the older [server] store: which store is in effect', () => {
  const cases: { file: string; store: string }[] = [
    { file: '', store: 'memory' },
    { file: `[signaling]\nstore = "${REDIS}"\n`, store: REDIS },
    { file: `[server]\nstore = "${REDIS}"\n`, store: REDIS },
    { file: `[signaling]\nstore = "${REDIS}"\n[server]\nstore = "${REDIS}"\n`, store: REDIS },
    { file: `[signaling]\nstore = "memory"\n`, store: 'memory' },
    { file: `[signaling]\nserver_url = "https://signal.lab"\n[server]\nport = 9000\n`, store: 'memory' },
  ];
  for (const c of cases) assert.equal(parseConfig(c.file, 'lab.toml', {}).server.store, c.store, c.file);
});

test('the two keys naming different stores is a configuration error naming both and the fix', () => {
  const err = (() => {
    try {
      parseConfig(`[signaling]\nstore = "${REDIS}"\n[server]\nstore = "${OTHER}"\n`, 'lab.toml', {});
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  assert.ok(err instanceof ConfigError);
  assert.equal(err.code, 'CONFIG_INVALID');
  assert.equal(err.problems.length, 1);
  const [p] = err.problems;
  assert.equal(p?.file, 'lab.toml');
  assert.equal(p?.path, 'server.store');
  assert.ok(p?.message.includes(OTHER) && p.message.includes(REDIS) && p.message.includes('signaling.store'), p?.message);
  assert.match(p?.message ?? '', /remove store from \[server\]/);
});

test('a bad [signaling] store is refused like a bad [server] store, with the key named', () => {
  for (const [section, value] of [
    ['signaling', 'mongodb://x'],
    ['signaling', 'redis://'],
    ['server', 'redis://host:6379/db'],
    ['signaling', ''],
  ] as const) {
    assert.throws(
      () => parseConfig(`[${section}]\nstore = "${value}"\n`, 'lab.toml', {}),
      (e: unknown) => e instanceof ConfigError && e.problems.some((p) => p.path === `${section}.store` && /memory.*Redis URL/.test(p.message)),
      `${section} store = ${value}`,
    );
  }
});
