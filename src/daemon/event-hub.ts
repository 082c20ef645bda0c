import type { EventJson } from './schemas.js';

export type NewEvent = Omit<EventJson, 'seq' | 'time'> & { readonly time?: string };

/** What `?since=` asks for: the events after it, or gone (the ring buffer no longer holds them). */
export type Replay = { readonly events: readonly EventJson[] } | { readonly gone: true; readonly oldest: number };

/**
 * The daemon's events in order: a ring buffer for replay (`?since=SEQ`, `Last-Event-ID`) and the
 * live subscribers of /v1/events. Sequence numbers go on growing across restarts (a daemon starts
 * at its start time in microseconds), so a client that followed the daemon before a restart
 * resumes with its last seq: it gets everything this daemon announced, recovery at open first.
 * Only events this daemon has dropped from its buffer are gone (410).
 */
export class EventHub {
  private readonly ring: EventJson[] = [];
  private seq: number;
  private readonly firstSeq: number;
  private readonly subscribers = new Set<(event: EventJson) => void>();

  constructor(
    private readonly capacity = 4_096,
    firstSeq = Date.now() * 1_000,
  ) {
    this.firstSeq = firstSeq;
    this.seq = firstSeq - 1;
  }

  get lastSeq(): number {
    return this.seq;
  }

  get clients(): number {
    return this.subscribers.size;
  }

  publish(event: NewEvent): EventJson {
    this.seq += 1;
    const full: EventJson = {
      seq: this.seq,
      time: event.time ?? new Date().toISOString(),
      type: event.type,
      action: event.action,
      key: event.key,
      owner: event.owner,
      details: event.details,
    };
    this.ring.push(full);
    if (this.ring.length > this.capacity) this.ring.shift();
    for (const subscriber of this.subscribers) subscriber(full);
    return full;
  }

  /** The events after `since`; gone when some of them have left the buffer. */
  replay(since: number): Replay {
    const oldest = this.ring[0]?.seq ?? this.seq + 1;
    if (oldest > this.firstSeq && since < oldest - 1) return { gone: true, oldest };
    return { events: this.ring.filter((event) => event.seq > since) };
  }

  subscribe(listener: (event: EventJson) => void): () => void {
    this.subscribers.add(listener);
    return () => this.subscribers.delete(listener);
  }
}
