import type { HolderLife } from '../core/holders.js';
import { QMP_HOLDER_BOUND_MS, qmpProbeFailure } from '../manager/holders.js';
import { QmpClient, type QmpEvent, type QmpPort } from '../qmp/qmp-client.js';

/**
 * The daemon's QMP connection to each running VM registered with `--qmp` (one per socket: QEMU
 * serves one client per QMP socket, so the daemon's hot-plug operations use this same connection).
 * A connection that ends is the VM gone; the events it brings (DEVICE_DELETED) go to `onEvent`.
 */
export class VmMonitors {
  private readonly connections = new Map<string, QmpClient>();
  private readonly connecting = new Map<string, Promise<QmpClient>>();
  private stopped = false;

  constructor(
    private readonly onEvent: (socket: string, event: QmpEvent) => void,
    private readonly boundMs = QMP_HOLDER_BOUND_MS,
  ) {}

  /** The connection to a socket, made when there is none (bounded). */
  private connection(socket: string): Promise<QmpClient> {
    const open = this.connections.get(socket);
    if (open !== undefined && !open.closed) return Promise.resolve(open);
    const pending = this.connecting.get(socket);
    if (pending !== undefined) return pending;
    const made = QmpClient.connect(socket, { timeoutMs: this.boundMs }).then(
      (client) => {
        this.connecting.delete(socket);
        if (this.stopped) {
          client.close();
          return client;
        }
        this.connections.set(socket, client);
        client.subscribe((event) => this.onEvent(socket, event));
        client.onClose(() => {
          if (this.connections.get(socket) === client) this.connections.delete(socket);
        });
        return client;
      },
      (error: unknown) => {
        this.connecting.delete(socket);
        throw error;
      },
    );
    this.connecting.set(socket, made);
    return made;
  }

  /** Whether the VM on a socket lives: its connection is open, or one can be made and answers. */
  async probe(socket: string): Promise<HolderLife> {
    const open = this.connections.get(socket);
    if (open !== undefined && !open.closed) return { alive: true, reason: `the daemon's QMP connection to ${socket} is open` };
    try {
      const client = await this.connection(socket);
      await client.execute('query-status');
      return { alive: true, reason: `QEMU answers on ${socket}` };
    } catch (error) {
      return qmpProbeFailure(socket, error, this.boundMs);
    }
  }

  /** A QmpPort over the daemon's connection (what its hot-plug operations use); closing it keeps the connection. */
  async port(socket: string): Promise<QmpPort> {
    const client = await this.connection(socket);
    return {
      socketPath: client.socketPath,
      version: client.version,
      execute: (command, args) => client.execute(command, args),
      eventMark: () => client.eventMark(),
      waitForEvent: (match, options) => client.waitForEvent(match, options),
      close: () => undefined,
    };
  }

  close(): void {
    this.stopped = true;
    for (const client of this.connections.values()) client.close();
    this.connections.clear();
  }
}
