import { existsSync } from 'node:fs';
import path from 'node:path';
import { PollSource } from './poll-source.js';
import { SimSource } from './sim-source.js';
import type { EventSource } from './source.js';
import { UdevSource } from './udev-source.js';

export type WatchSourceChoice = 'auto' | 'udev' | 'poll' | 'sim';

/** A tree the simulated kernel plays (its host model, beside its event log, in ROOT/.hostdev-sim). */
function simulated(root: string): boolean {
  return existsSync(path.join(root, '.hostdev-sim', 'host.json'));
}

/**
 * Sources in the order to try. udev and the simulator's log are event-driven; each is paired with
 * a slow safety poll, because a container may never deliver kernel uevents.
 */
export function sourcesFor(choice: WatchSourceChoice, root: string, intervalMs: number): EventSource[][] {
  const safety = (): PollSource => new PollSource(Math.max(intervalMs * 10, 5_000));
  switch (choice) {
    case 'poll':
      return [[new PollSource(intervalMs)]];
    case 'sim':
      return [[new SimSource(root), safety()]];
    case 'udev':
      return [[new UdevSource(), safety()]];
    case 'auto':
      if (simulated(root)) return [[new SimSource(root), new PollSource(intervalMs)]];
      return [[new UdevSource(), safety()], [new PollSource(intervalMs)]];
  }
}

export function describeSources(sources: readonly EventSource[], intervalMs: number): string {
  return sources.map((source) => (source instanceof PollSource ? `poll every ${source.intervalMs} ms` : source.name)).join(' + ') || `poll every ${intervalMs} ms`;
}
