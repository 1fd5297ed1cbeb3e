/**
 * Loaded into every test process (scripts/run-tests.js passes it with --import). node-datachannel
 * keeps native threads that can hold a finished test file's process open; releasing it after the
 * file's last test lets the process exit on its own, so every result is reported before it does.
 */
import { after } from 'node:test';
import { releaseRtc } from '../src/transport/rtc.js';

after(() => releaseRtc());
