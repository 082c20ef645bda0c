import { tick, type EventSource, type SourceHint } from './source.js';

/** Asks for a snapshot every `intervalMs`: works everywhere, costs one sysfs walk per tick. */
export class PollSource implements EventSource {
  readonly name = 'poll' as const;
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly intervalMs: number) {
    if (!Number.isFinite(intervalMs) || intervalMs < 10) throw new RangeError(`poll interval too small: ${intervalMs} ms`);
  }

  async start(onHint: (hint: SourceHint) => void): Promise<void> {
    this.timer = setInterval(() => onHint(tick('poll')), this.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
