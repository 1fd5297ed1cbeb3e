/**
 * Loaded into every test process (scripts/run-tests.js passes it with --import).
 * - node-datachannel keeps native threads that can hold a finished test file's process open;
 *   releasing it after the file's last test lets the process exit on its own, so every result is
 *   reported before it does.
 * - A file still running two minutes after its last test (a process it never stopped) has what it
 *   left killed and fails, instead of holding the whole run until its timeout.
 */
import { after } from 'node:test';
import { releaseRtc } from '../src/transport/rtc.js';
import { armLeftoverKiller } from './helpers/leftovers.js';

/** Overridable so the backstop's own test need not wait two minutes. */
const LEFTOVER_GRACE_MS = Number(process.env.SLEAP_RTC_TEST_LEFTOVER_GRACE_MS ?? 120_000);

after(() => {
  releaseRtc();
  armLeftoverKiller(LEFTOVER_GRACE_MS);
});
