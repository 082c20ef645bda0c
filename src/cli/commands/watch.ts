import type { Command } from 'commander';
import { HostdevError } from '../../core/errors.js';
import { PollSource } from '../../events/poll-source.js';
import { SimSource } from '../../events/sim-source.js';
import { ChildSnapshotReader } from '../../events/snapshot-reader.js';
import type { EventSource } from '../../events/source.js';
import { UdevSource } from '../../events/udev-source.js';
import { Watcher } from '../../events/watcher.js';
import { vfConfigCapturer, vfReclaimer } from '../../manager/watch-reclaim.js';
import { describeLiveEvent, LiveWatch, type LiveEvent } from '../../manager/watch-live.js';
import { isSimulatedTree } from '../../sim/host-model.js';
import { globalOptions, type GlobalOptions } from '../context.js';
import { openManager } from '../open-manager.js';

type SourceChoice = 'auto' | 'udev' | 'poll' | 'sim';

interface WatchOptions {
  interval: string;
  source: string;
  readTimeout: string;
  reclaim?: boolean;
}

function positiveMs(value: string, option: string): number {
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms < 10) {
    throw new HostdevError('HOSTDEV_USAGE', `${option} takes a number of milliseconds (10 or more), not "${value}"`, {
      hint: `Give ${option} a whole number of milliseconds, e.g. ${option} 1000, or leave it out for the default.`,
    });
  }
  return ms;
}

/**
 * Sources in the order to try. udev and the simulator's log are event-driven; each is paired with
 * a slow safety poll, because a container may never deliver kernel uevents.
 */
function sourcesFor(choice: SourceChoice, root: string, intervalMs: number): EventSource[][] {
  const safety = (): PollSource => new PollSource(Math.max(intervalMs * 10, 5_000));
  switch (choice) {
    case 'poll':
      return [[new PollSource(intervalMs)]];
    case 'sim':
      return [[new SimSource(root), safety()]];
    case 'udev':
      return [[new UdevSource(), safety()]];
    case 'auto':
      if (isSimulatedTree(root)) return [[new SimSource(root), new PollSource(intervalMs)]];
      return [[new UdevSource(), safety()], [new PollSource(intervalMs)]];
  }
}

function describeSources(sources: readonly EventSource[], intervalMs: number): string {
  return sources.map((source) => (source instanceof PollSource ? `poll every ${source.intervalMs} ms` : source.name)).join(' + ') || `poll every ${intervalMs} ms`;
}

export function registerWatch(program: Command): void {
  program
    .command('watch')
    .description(
      'print one line (or one JSON object with --json) per PCI event: add, remove, bind, unbind, driver-change, ' +
        'vf-count-change, returned; a removed device that is in a table is pruned at once',
    )
    .option('--interval <ms>', 'sysfs poll interval', '1000')
    .option('--source <name>', 'auto | udev | poll | sim (auto: the simulator log on a simulated tree, else udev, else poll)', 'auto')
    .option('--read-timeout <ms>', 'longest wait for one sysfs snapshot (reads run in a child process)', '5000')
    .option(
      '--reclaim',
      'policy: a returned VF whose former domain still claims it is made ready for that domain again ' +
        '(stub driver, its VF network config); never when someone else holds it meanwhile',
    )
    .action(async (options: WatchOptions, command: Command) => {
      const globals = globalOptions(command);
      const intervalMs = positiveMs(options.interval, '--interval');
      const readTimeoutMs = positiveMs(options.readTimeout, '--read-timeout');
      if (!['auto', 'udev', 'poll', 'sim'].includes(options.source)) {
        throw new HostdevError('HOSTDEV_USAGE', `--source takes auto, udev, poll or sim, not "${options.source}"`, {
          hint: "Leave --source out for auto: the simulator's log on a simulated tree, else udev, else polling sysfs.",
        });
      }
      process.exitCode = await runWatch({
        globals,
        reclaim: options.reclaim ?? false,
        intervalMs,
        readTimeoutMs,
        choice: options.source as SourceChoice,
      });
    });
}

export interface RunWatchOptions {
  readonly globals: GlobalOptions;
  readonly reclaim: boolean;
  readonly intervalMs: number;
  readonly readTimeoutMs: number;
  readonly choice: SourceChoice;
  /** Resolves when the watch should stop; default: SIGINT or SIGTERM. */
  readonly until?: Promise<unknown>;
  readonly write?: (line: string) => void;
  readonly warn?: (line: string) => void;
}

function signalled(): Promise<string> {
  return new Promise((resolve) => {
    const stop = (signal: string): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** Runs until stopped; returns the exit code. Stopping waits for a prune in progress to commit. */
export async function runWatch(options: RunWatchOptions): Promise<number> {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const warn = options.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
  const stop = options.until ?? signalled();
  const { root, json } = options.globals;
  // The manager: recovery runs on open, so the watch starts from consistent tables.
  const manager = await openManager(options.globals);
  const net = manager.net;
  const emit = (event: LiveEvent): void => write(json ? JSON.stringify(event) : `${event.time} ${describeLiveEvent(event)}`);
  const live = new LiveWatch({
    store: manager.store,
    emit,
    ...(options.reclaim
      ? { reclaim: vfReclaimer(manager, net, (line) => warn(`warning: ${line}`)), captureVfConfig: vfConfigCapturer(manager, net) }
      : {}),
  });
  let watcher: Watcher | null = null;
  try {
    await live.capture();
    const attempts = sourcesFor(options.choice, root, options.intervalMs);
    for (const [index, sources] of attempts.entries()) {
      const candidate = new Watcher({
        sources,
        reader: new ChildSnapshotReader(root, options.readTimeoutMs),
        onBatch: (batch) => live.handle(batch),
        onError: (error) => warn(`warning: ${error.message}`),
      });
      // A stop while the first snapshot is still being retried ends that wait too.
      void stop.then(() => candidate.stop());
      const started = await candidate.start();
      await live.start(started.snapshot);
      const primaryFailed = started.failed.find((failure) => failure.source === sources[0]);
      if (primaryFailed === undefined || index === attempts.length - 1) {
        for (const failure of started.failed) warn(`warning: event source ${failure.source.name} unavailable: ${failure.error.message}`);
        watcher = candidate;
        const policy = options.reclaim ? '; returned VFs are readied for their former domain' : '';
        warn(`watching PCI devices under ${root} (${describeSources(started.sources, options.intervalMs)}${policy}); Ctrl-C stops`);
        break;
      }
      warn(`note: ${sources[0]!.name} unavailable (${primaryFailed.error.message}); falling back`);
      await candidate.stop();
    }
    await stop;
    return 0;
  } finally {
    await watcher?.stop();
    manager.close();
  }
}
