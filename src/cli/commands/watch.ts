import { ownerName } from '../../core/tables.js';
import type { Command } from 'commander';
import { HostdevError } from '../../core/errors.js';
import type { WatchSourceChoice } from '../../events/sources.js';
import { describeLiveEvent } from '../../manager/watch-live.js';
import { globalOptions, type GlobalOptions } from '../context.js';
import { openService } from '../open-manager.js';
import { stopSignal } from '../stop-signals.js';

type SourceChoice = WatchSourceChoice;

interface WatchOptions {
  interval: string;
  source: string;
  readTimeout: string;
  reclaim?: boolean;
  dryRun?: boolean;
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
    .option('--dry-run', 'change nothing: say what each prune and (with --reclaim) each reclaim would do')
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
        dryRun: options.dryRun ?? false,
        intervalMs,
        readTimeoutMs,
        choice: options.source as SourceChoice,
      });
    });
}

interface RunWatchOptions {
  readonly globals: GlobalOptions;
  readonly reclaim: boolean;
  /** Opens the state for dry runs: nothing in the tables or under the root changes. */
  readonly dryRun: boolean;
  readonly intervalMs: number;
  readonly readTimeoutMs: number;
  readonly choice: SourceChoice;
  /** Resolves when the watch should stop; default: SIGINT or SIGTERM (caught from the CLI's start on). */
  readonly until?: Promise<unknown>;
  readonly write?: (line: string) => void;
  readonly warn?: (line: string) => void;
}

/**
 * Runs until stopped; returns the exit code: 0 for a stop by Ctrl-C or SIGTERM, whatever the
 * source and however early (as `udevadm monitor` ends). Stopping waits for a prune in progress to
 * commit; a stop before the watch started starts nothing.
 */
async function runWatch(options: RunWatchOptions): Promise<number> {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const warn = options.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
  const stop = new AbortController();
  void (options.until ?? stopSignal()).then(() => stop.abort());
  // The signal's handler runs from the event loop: let one that already came be heard.
  await new Promise((resolve) => setImmediate(resolve));
  if (stop.signal.aborted) return 0;
  const { json } = options.globals;
  // Recovery runs on open, so the watch starts from consistent tables.
  const service = await openService(options.globals, { dryRun: options.dryRun });
  for (const warning of service.recovery.warnings) warn(`warning: ${warning}`);
  // What the first open after a reboot released or re-applied, as events of the stream (with their former owner).
  const time = new Date().toISOString();
  for (const entry of service.recovery.rebooted ?? []) {
    const { steps: _steps, ...event } = entry;
    const owner = entry.formerOwner === null ? 'detached' : `was ${ownerName(entry.formerOwner)}`;
    write(json ? JSON.stringify({ kind: 'reboot', time, ...event }) : `${time} reboot ${entry.address}: ${entry.action} (${owner}), on ${entry.driver ?? 'no driver'}${entry.outcome === 'failed' ? `, FAILED: ${entry.error ?? ''}` : ''}`);
  }
  try {
    const events = service.watch({
      source: options.choice,
      intervalMs: options.intervalMs,
      readTimeoutMs: options.readTimeoutMs,
      reclaim: options.reclaim,
      signal: stop.signal,
      onNotice: (notice) => warn(notice.level === 'info' ? notice.message : `${notice.level}: ${notice.message}`),
    });
    for await (const event of events) write(json ? JSON.stringify(event) : `${event.time} ${describeLiveEvent(event)}`);
    return 0;
  } finally {
    service.close();
  }
}
