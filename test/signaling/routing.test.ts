/** The server-level routing suite (routing-suite.ts) on one server with the memory store. */
import { runRoutingSuite } from './routing-suite.js';
import { startHarness } from './harness.js';

runRoutingSuite('routing (memory store)', startHarness);
