import type { PciAddress } from '../core/address.js';
import { diffSnapshots, EMPTY_SNAPSHOT, type PciEvent, type Snapshot } from '../core/events.js';
import type { SnapshotReader } from './snapshot-reader.js';
import type { EventSource, SourceHint } from './source.js';

export interface EventBatch {
  readonly events: readonly PciEvent[];
  readonly hints: readonly SourceHint[];
  readonly before: Snapshot;
  readonly after: Snapshot;
}

interface WatcherOptions {
  readonly sources: readonly EventSource[];
  readonly reader: SnapshotReader;
  /** Called once per snapshot that changed something; awaited before the next snapshot. */
  readonly onBatch: (batch: EventBatch) => Promise<void>;
  /** A source or a snapshot failed; the watcher goes on (the next hint tries again). */
  readonly onError: (error: Error) => void;
  /** Wait before trying a failed first snapshot again (default 1,000 ms). */
  readonly retryMs?: number;
}

/**
 * Turns hints from event sources into PCI events: on each hint (coalesced while a snapshot is
 * running) it takes a snapshot in the child process and diffs it against the previous one.
 * Batches are handled one at a time, in order.
 */
export class Watcher {
  private previous: Snapshot = EMPTY_SNAPSHOT;
  private hints: SourceHint[] = [];
  private running: Promise<void> | null = null;
  private dirty = false;
  private stopped = false;
  private readonly started: EventSource[] = [];

  constructor(private readonly options: WatcherOptions) {}

  /** Takes the first snapshot, then starts the sources; returns the sources that started. */
  async start(): Promise<{ snapshot: Snapshot; sources: EventSource[]; failed: Array<{ source: EventSource; error: Error }> }> {
    this.previous = await this.firstSnapshot();
    const failed: Array<{ source: EventSource; error: Error }> = [];
    if (this.stopped) return { snapshot: this.previous, sources: [], failed };
    for (const source of this.options.sources) {
      try {
        await source.start(
          (hint) => this.wake(hint),
          (error) => this.options.onError(error),
        );
        this.started.push(source);
      } catch (error) {
        failed.push({ source, error: error as Error });
      }
    }
    return { snapshot: this.previous, sources: [...this.started], failed };
  }

  /**
   * The first snapshot, tried until it succeeds or the watcher is stopped: on a real kernel a read
   * can block for as long as a VM holds a VF whose removal is pending, and a watch started then
   * must wait that out (reporting it), not give up.
   */
  private async firstSnapshot(): Promise<Snapshot> {
    for (;;) {
      try {
        return await this.options.reader.read();
      } catch (error) {
        if (this.stopped) return EMPTY_SNAPSHOT;
        this.options.onError(error as Error);
        await new Promise((resolve) => setTimeout(resolve, this.options.retryMs ?? 1_000));
        if (this.stopped) return EMPTY_SNAPSHOT;
      }
    }
  }

  get snapshot(): Snapshot {
    return this.previous;
  }

  /** Asks for a snapshot now (as a source would). */
  wake(hint: SourceHint): void {
    if (this.stopped) return;
    this.hints.push(hint);
    if (this.running !== null) {
      this.dirty = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = null;
    });
  }

  private async loop(): Promise<void> {
    do {
      this.dirty = false;
      const hints = this.hints;
      this.hints = [];
      let after: Snapshot;
      try {
        after = await this.options.reader.read();
      } catch (error) {
        this.options.onError(error as Error);
        return;
      }
      if (this.stopped) return;
      const removed = new Set<PciAddress>();
      for (const hint of hints) if (hint.action === 'remove' && hint.address !== null) removed.add(hint.address);
      const before = this.previous;
      const events = diffSnapshots(before, after, removed);
      this.previous = after;
      if (events.length > 0) {
        try {
          await this.options.onBatch({ events, hints, before, after });
        } catch (error) {
          this.options.onError(error as Error);
        }
      }
    } while (this.dirty && !this.stopped);
  }

  /** Stops the sources, lets a batch being handled finish, closes the reader. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.started.map((source) => source.stop().catch(() => undefined)));
    await this.running;
    await this.options.reader.close();
  }
}
