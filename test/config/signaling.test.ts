import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { resolveSignaling } from '../../src/config/signaling.js';

const fromFile = parseConfig('[signaling]\nserver_url = "https://file.example.org"\nroom_id = "file-room"\n', 'x.toml', {});
const defaults = parseConfig('', 'x.toml', {});

test('flags beat environment, which beats the file, which beats the defaults', () => {
  const env = { SLEAP_RTC_SERVER: 'wss://env.example.org', SLEAP_RTC_ROOM: 'env-room', SLEAP_RTC_TOKEN: 'env-token' };
  assert.deepEqual(resolveSignaling(defaults, {}, {}), { server_url: 'http://127.0.0.1:8080', room_id: undefined, token: undefined });
  assert.deepEqual(resolveSignaling(fromFile, {}, {}), { server_url: 'https://file.example.org', room_id: 'file-room', token: undefined });
  assert.deepEqual(resolveSignaling(fromFile, {}, env), { server_url: 'wss://env.example.org', room_id: 'env-room', token: 'env-token' });
  assert.deepEqual(resolveSignaling(fromFile, { server_url: 'http://flag:1', room_id: 'flag-room', token: 'flag-token' }, env), {
    server_url: 'http://flag:1',
    room_id: 'flag-room',
    token: 'flag-token',
  });
});

test('empty flags and empty environment variables count as unset', () => {
  const env = { SLEAP_RTC_SERVER: '', SLEAP_RTC_ROOM: '' };
  assert.deepEqual(resolveSignaling(fromFile, { server_url: '', token: '' }, env), {
    server_url: 'https://file.example.org',
    room_id: 'file-room',
    token: undefined,
  });
});
