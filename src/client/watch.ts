/**
 * Everything that watches or steers a running job from the client, attached once the job is
 * planned: the terminal's training line, the live page (`--ui`), and SLEAP's LossViewer
 * (`--zmq-publish` / `--zmq-control`). `close()` takes them all down, in reverse order.
 */
import type { LiveJob } from './live-job.js';
import { LossViewerBridge } from './lossviewer.js';
import type { JobReporter } from './reporter.js';
import { startLivePage } from './ui/server.js';

export interface WatchOptions {
  reporter: JobReporter;
  /** `--ui`: serve the live page on this host and port. */
  ui?: { host?: string; port?: number };
  /** `--zmq-publish` / `--zmq-control`. */
  lossViewer?: { publish?: string; control?: string };
}

export interface Watchers {
  /** Resolves once the live page listens (rejects when it cannot). */
  ready: Promise<void>;
  close(): Promise<void>;
}

export function watchJob(live: LiveJob, opts: WatchOptions): Watchers {
  const r = opts.reporter;
  const cleanups: (() => Promise<void> | void)[] = [];
  const onChange = (): void => {
    if (live.training.source === 'zmq') r.training(live.training.snapshot());
  };
  live.on('change', onChange);
  cleanups.push(() => void live.off('change', onChange));
  const onStop = (source: string): void => r.info(`stop requested (${source === 'ctrl-c' ? 'Ctrl-C' : source === 'page' ? 'live page' : 'LossViewer'}): sleap-nn ends the epoch and saves the model`);
  live.on('stop', onStop);
  cleanups.push(() => void live.off('stop', onStop));

  if (opts.lossViewer && (opts.lossViewer.publish !== undefined || opts.lossViewer.control !== undefined)) {
    const bridge = LossViewerBridge.open({ ...opts.lossViewer, live, note: (m) => r.info(m) });
    cleanups.push(() => bridge.close());
    r.info(`LossViewer: ${[opts.lossViewer.publish && `publishing to ${opts.lossViewer.publish}`, opts.lossViewer.control && `taking commands from ${opts.lossViewer.control}`].filter(Boolean).join(', ')}`);
  }

  let ready: Promise<void> = Promise.resolve();
  if (opts.ui) {
    const started = startLivePage({ live, ...opts.ui });
    ready = started.then((page) => {
      r.info(`live page: ${page.url}`);
      cleanups.push(() => page.close());
    });
    // A page that failed to start is reported by `ready`; close() must not throw it again.
    cleanups.push(() => started.then(() => undefined, () => undefined));
  }
  let closing: Promise<void> | null = null;
  return {
    ready,
    close: () =>
      (closing ??= (async () => {
        await ready.catch(() => undefined);
        for (const c of cleanups.reverse()) await c();
      })()),
  };
}
