/** Process entry: bin/sleap-rtc.js runs the compiled copy of this file. */
import { main } from './main.js';

const code = await main(process.argv);
process.exitCode = code;
// A command has finished once main() returns, but native WebRTC threads (node-datachannel) can
// keep the event loop alive after every connection is closed. Give pending output a moment to
// drain, then leave; the unref'd timer never delays an exit that happens on its own.
setTimeout(() => process.exit(code), 500).unref();
