import type { PciAddress } from '../core/address.js';

/**
 * Event sources tell the watcher WHEN the host may have changed; the watcher then takes a
 * snapshot (in a child process) and diffs it. A hint may carry what the source saw
 * (udev's ACTION and device, the simulator's log line) for the record.
 */
type SourceName = 'udev' | 'poll' | 'sim';

export interface SourceHint {
  readonly source: SourceName;
  readonly action: string | null;
  readonly address: PciAddress | null;
  readonly driver: string | null;
}

export interface EventSource {
  readonly name: SourceName;
  /** Resolves once the source listens; rejects when it cannot (the caller falls back). */
  start(onHint: (hint: SourceHint) => void, onError: (error: Error) => void): Promise<void>;
  stop(): Promise<void>;
}

export function tick(source: SourceName): SourceHint {
  return { source, action: null, address: null, driver: null };
}
