import { watch, type FSWatcher } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { tryParseAddress } from '../core/address.js';
import type { EventSource, SourceHint } from './source.js';

/** The simulated kernel's uevent log: one JSON object a line, {seq, action, address, driver?, time}. */
function simEventsFile(root: string): string {
  return path.join(root, '.hostdev-sim', 'events.jsonl');
}

/**
 * Follows the simulator's event log from its current end, woken by inotify (fs.watch) on the
 * log's directory, with a slow re-check in case a notification is lost.
 */
export class SimSource implements EventSource {
  readonly name = 'sim' as const;
  private readonly file: string;
  private offset = 0;
  private partial = '';
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private reading: Promise<void> | null = null;
  private again = false;

  constructor(
    root: string,
    private readonly recheckMs = 1_000,
  ) {
    this.file = simEventsFile(root);
  }

  async start(onHint: (hint: SourceHint) => void, onError: (error: Error) => void): Promise<void> {
    this.offset = await this.size();
    const wake = (): void => {
      if (this.reading !== null) {
        this.again = true;
        return;
      }
      this.reading = this.drain(onHint)
        .catch((error: unknown) => onError(error as Error))
        .finally(() => {
          this.reading = null;
          if (this.again) {
            this.again = false;
            wake();
          }
        });
    };
    this.watcher = watch(path.dirname(this.file), (_type, name) => {
      if (name === null || name === path.basename(this.file)) wake();
    });
    this.watcher.on('error', (error) => onError(error));
    this.timer = setInterval(wake, this.recheckMs);
  }

  private async size(): Promise<number> {
    try {
      return (await stat(this.file)).size;
    } catch {
      return 0;
    }
  }

  private async drain(onHint: (hint: SourceHint) => void): Promise<void> {
    const size = await this.size();
    if (size < this.offset) {
      // The log was recreated (a new simulated host): start over.
      this.offset = 0;
      this.partial = '';
    }
    if (size === this.offset) return;
    const handle = await open(this.file, 'r');
    try {
      const buffer = Buffer.alloc(size - this.offset);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, this.offset);
      this.offset += bytesRead;
      const text = this.partial + buffer.toString('utf8', 0, bytesRead);
      const lines = text.split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) {
        const hint = hintOf(line);
        if (hint !== null) onHint(hint);
      }
    } finally {
      await handle.close();
    }
  }

  async stop(): Promise<void> {
    this.watcher?.close();
    this.watcher = null;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.reading;
  }
}

function hintOf(line: string): SourceHint | null {
  if (line.trim() === '') return null;
  try {
    const entry = JSON.parse(line) as { action?: unknown; address?: unknown; driver?: unknown };
    return {
      source: 'sim',
      action: typeof entry.action === 'string' ? entry.action : null,
      address: typeof entry.address === 'string' ? tryParseAddress(entry.address) : null,
      driver: typeof entry.driver === 'string' ? entry.driver : null,
    };
  } catch {
    return { source: 'sim', action: null, address: null, driver: null };
  }
}
