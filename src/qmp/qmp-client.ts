import net from 'node:net';
import { HostdevError } from '../core/errors.js';

/**
 * A client of QEMU's machine protocol (QMP) over its unix socket: the greeting, capabilities
 * negotiation, commands matched to their answers by id, and events kept from the moment of
 * connection so a caller can wait for one that arrives before it starts waiting (DEVICE_DELETED can
 * follow `device_del` at once). Every wait is bounded. QEMU serves one client per QMP socket: a
 * second client gets no greeting, which this client reports as a timeout that says so.
 */

interface QmpVersion {
  readonly major: number;
  readonly minor: number;
  readonly micro: number;
  readonly package: string;
}

export interface QmpEvent {
  readonly event: string;
  readonly data: Readonly<Record<string, unknown>>;
  /** Seconds since the epoch, as QEMU stamped it. */
  readonly time: number;
}

/** What hostdev needs of a running VM's monitor; the real client implements it. */
export interface QmpPort {
  readonly socketPath: string;
  readonly version: QmpVersion;
  execute<T = unknown>(command: string, args?: Readonly<Record<string, unknown>>): Promise<T>;
  /** A position in the event stream: events after it can be waited for. */
  eventMark(): number;
  /** Hears every event from now on until the returned function is called (or the connection ends). */
  subscribe?(listener: (event: QmpEvent) => void): () => void;
  /** The first event after `since` that `match` accepts, or null when none came within `timeoutMs`. */
  waitForEvent(match: (event: QmpEvent) => boolean, options: { readonly since: number; readonly timeoutMs: number }): Promise<QmpEvent | null>;
  close(): void;
}

interface QmpConnectOptions {
  /** Bound on reaching the socket and getting QEMU's greeting (default 5000 ms). */
  readonly timeoutMs?: number;
  /** Bound on each command's answer (default 10000 ms). */
  readonly commandTimeoutMs?: number;
}

const KEPT_EVENTS = 1024;

interface Pending {
  readonly command: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface EventWaiter {
  readonly match: (event: QmpEvent) => boolean;
  readonly resolve: (event: QmpEvent | null) => void;
}

interface QmpMessage {
  readonly QMP?: { readonly version?: { readonly qemu?: Partial<QmpVersion>; readonly package?: string } };
  readonly id?: string;
  readonly return?: unknown;
  readonly error?: { readonly class?: string; readonly desc?: string };
  readonly event?: string;
  readonly data?: Record<string, unknown>;
  readonly timestamp?: { readonly seconds?: number; readonly microseconds?: number };
}

function qmpError(message: string, hint: string, details: Record<string, unknown>, cause?: unknown): HostdevError {
  return new HostdevError('HOSTDEV_QMP', message, { hint, details, ...(cause === undefined ? {} : { cause }) });
}

export class QmpClient implements QmpPort {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly events: { readonly seq: number; readonly event: QmpEvent }[] = [];
  private eventSeq = 0;
  private readonly waiters = new Set<EventWaiter>();
  private readonly listeners = new Set<(event: QmpEvent) => void>();
  private readonly closeListeners = new Set<() => void>();
  private closedBy: Error | null = null;
  private greeting: QmpVersion | null = null;
  private onGreeting: ((outcome: QmpVersion | Error) => void) | null = null;

  private constructor(
    readonly socketPath: string,
    private readonly socket: net.Socket,
    private readonly commandTimeoutMs: number,
  ) {}

  get version(): QmpVersion {
    return this.greeting ?? { major: 0, minor: 0, micro: 0, package: '' };
  }

  /** Connects, reads the greeting and leaves capabilities negotiation mode. */
  static async connect(socketPath: string, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = options.timeoutMs ?? 5_000;
    const socket = net.connect(socketPath);
    socket.setEncoding('utf8');
    const client = new QmpClient(socketPath, socket, options.commandTimeoutMs ?? 10_000);
    const greeted = new Promise<QmpVersion | Error>((resolve) => (client.onGreeting = resolve));
    const timer = setTimeout(
      () =>
        client.settleGreeting(
          qmpError(
            `QEMU's monitor at ${socketPath} did not greet within ${timeoutMs} ms`,
            'QEMU serves one client per QMP socket: if another program (a VM manager) is connected to it, start QEMU with a second -qmp unix:PATH,server=on,wait=off socket for hostdev.',
            { socket: socketPath, timeoutMs },
          ),
        ),
      timeoutMs,
    );
    socket.once('error', (error: NodeJS.ErrnoException) =>
      client.settleGreeting(
        qmpError(
          `cannot reach QEMU's monitor at ${socketPath}: ${error.code ?? error.message}`,
          'Give the path of a QMP socket of the running VM (QEMU started with -qmp unix:PATH,server=on,wait=off).',
          { socket: socketPath, errno: error.code ?? null },
          error,
        ),
      ),
    );
    client.listen();
    const outcome = await greeted;
    clearTimeout(timer);
    if (outcome instanceof Error) {
      client.close();
      throw outcome;
    }
    await client.execute('qmp_capabilities');
    return client;
  }

  execute<T = unknown>(command: string, args?: Readonly<Record<string, unknown>>): Promise<T> {
    if (this.closedBy !== null) return Promise.reject(this.closedBy);
    const id = `hostdev-${this.nextId++}`;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          qmpError(
            `QEMU did not answer ${command} within ${this.commandTimeoutMs} ms (${this.socketPath})`,
            'QEMU may be stopped in a debugger or overloaded; check the VM process and try again.',
            { socket: this.socketPath, command },
          ),
        );
      }, this.commandTimeoutMs);
      this.pending.set(id, { command, resolve: resolve as (value: unknown) => void, reject, timer });
      this.socket.write(`${JSON.stringify({ execute: command, ...(args === undefined ? {} : { arguments: args }), id })}\n`);
    });
  }

  eventMark(): number {
    return this.eventSeq;
  }

  subscribe(listener: (event: QmpEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called once when the connection ends (QEMU quit or closed it, or close() was called). */
  onClose(listener: () => void): void {
    if (this.closedBy !== null) listener();
    else this.closeListeners.add(listener);
  }

  /** Whether the connection has ended. */
  get closed(): boolean {
    return this.closedBy !== null;
  }

  waitForEvent(match: (event: QmpEvent) => boolean, options: { readonly since: number; readonly timeoutMs: number }): Promise<QmpEvent | null> {
    const seen = this.events.find((kept) => kept.seq > options.since && match(kept.event));
    if (seen !== undefined) return Promise.resolve(seen.event);
    if (this.closedBy !== null) return Promise.resolve(null);
    return new Promise((resolve) => {
      const waiter: EventWaiter = {
        match,
        resolve: (event) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(event);
        },
      };
      const timer = setTimeout(() => waiter.resolve(null), options.timeoutMs);
      this.waiters.add(waiter);
    });
  }

  close(): void {
    this.shutDown(qmpError(`the QMP connection to ${this.socketPath} was closed`, 'Connect again.', { socket: this.socketPath }));
    this.socket.destroy();
  }

  private listen(): void {
    this.socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      for (let end = this.buffer.indexOf('\n'); end >= 0; end = this.buffer.indexOf('\n')) {
        const line = this.buffer.slice(0, end).trim();
        this.buffer = this.buffer.slice(end + 1);
        if (line !== '') this.receive(line);
      }
    });
    const lost = (reason: string): void =>
      this.shutDown(
        qmpError(`QEMU closed its monitor at ${this.socketPath} (${reason})`, 'The VM may have quit; check whether it is still running.', {
          socket: this.socketPath,
        }),
      );
    this.socket.on('error', (error: NodeJS.ErrnoException) => lost(error.code ?? error.message));
    this.socket.on('close', () => {
      this.settleGreeting(this.notQmp());
      lost('connection closed');
    });
  }

  private receive(line: string): void {
    let message: QmpMessage;
    try {
      message = JSON.parse(line) as QmpMessage;
    } catch {
      if (this.greeting === null) this.settleGreeting(this.notQmp());
      return;
    }
    if (this.greeting === null) {
      const version = message.QMP?.version;
      const qemu = version?.qemu;
      if (qemu === undefined) {
        this.settleGreeting(this.notQmp());
        return;
      }
      this.greeting = { major: qemu.major ?? 0, minor: qemu.minor ?? 0, micro: qemu.micro ?? 0, package: version?.package ?? '' };
      this.settleGreeting(this.greeting);
      return;
    }
    if (message.event !== undefined) {
      this.keep({
        event: message.event,
        data: message.data ?? {},
        time: (message.timestamp?.seconds ?? 0) + (message.timestamp?.microseconds ?? 0) / 1e6,
      });
      return;
    }
    const pending = message.id === undefined ? undefined : this.pending.get(message.id);
    if (pending === undefined) return;
    this.pending.delete(message.id!);
    clearTimeout(pending.timer);
    if (message.error === undefined) {
      pending.resolve(message.return);
      return;
    }
    const qmpClass = message.error.class ?? 'GenericError';
    pending.reject(
      qmpError(`QEMU refused ${pending.command}: ${message.error.desc ?? qmpClass}`, "QEMU's reason is above; nothing else was sent for this command.", {
        socket: this.socketPath,
        command: pending.command,
        qmpClass,
      }),
    );
  }

  private keep(event: QmpEvent): void {
    this.events.push({ seq: ++this.eventSeq, event });
    if (this.events.length > KEPT_EVENTS) this.events.shift();
    for (const waiter of [...this.waiters]) if (waiter.match(event)) waiter.resolve(event);
    for (const listener of [...this.listeners]) listener(event);
  }

  private notQmp(): HostdevError {
    return qmpError(
      `${this.socketPath} does not speak QMP (no QMP greeting came)`,
      'Give the path of a QMP socket (-qmp unix:PATH,server=on,wait=off), not a serial or HMP monitor socket.',
      { socket: this.socketPath },
    );
  }

  private settleGreeting(outcome: QmpVersion | Error): void {
    const settle = this.onGreeting;
    this.onGreeting = null;
    settle?.(outcome);
  }

  private shutDown(error: Error): void {
    if (this.closedBy !== null) return;
    this.closedBy = error;
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.pending.clear();
    for (const waiter of [...this.waiters]) waiter.resolve(null);
    this.listeners.clear();
    for (const listener of [...this.closeListeners]) listener();
    this.closeListeners.clear();
  }
}
