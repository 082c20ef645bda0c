import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { HostdevClient, OperationJson } from '../client/hostdev-client.js';
import { HostdevError, isHostdevError } from '../core/errors.js';
import type { HostdevService } from '../service/hostdev-service.js';
import type { GlobalOptions } from './context.js';
import { withService } from './open-manager.js';

/**
 * The longest wait for a daemon to answer GET /v1 before the command works directly: 2 s, or
 * $HOSTDEV_DAEMON_PROBE_MS (a slow machine, an emulated guest, where a daemon that holds a VM's QMP
 * socket must not be missed).
 */
function probeMs(): number {
  const set = Number(process.env['HOSTDEV_DAEMON_PROBE_MS']);
  return Number.isInteger(set) && set > 0 ? set : 2_000;
}

/** The read-write socket of the daemon the global options point at. */
export function daemonSocket(globals: GlobalOptions): string {
  return path.join(globals.socketDir, 'hostdev.sock');
}

/**
 * A client of the daemon when one answers on DIR/hostdev.sock and serves the same root, state
 * directory and simulate mode as this command; else null and the command works directly (it takes
 * the same state lock the daemon's operations take). `--no-daemon` or HOSTDEV_NO_DAEMON=1: null.
 */
export async function daemonFor(globals: GlobalOptions): Promise<HostdevClient | null> {
  if (!globals.useDaemon) return null;
  const socketPath = daemonSocket(globals);
  const found = await stat(socketPath).catch(() => null);
  if (found === null || !found.isSocket()) return null;
  const { HostdevClient } = await import('../client/hostdev-client.js');
  const client = new HostdevClient({ socketPath });
  let timer: NodeJS.Timeout | undefined;
  try {
    const index = await Promise.race([
      client.api(),
      new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), probeMs()))),
    ]);
    const serves = index?.serves;
    if (
      index !== null &&
      !index.readOnly &&
      serves !== undefined &&
      serves.root === path.resolve(globals.root) &&
      serves.stateDir === path.resolve(globals.stateDir) &&
      serves.simulate === globals.simulate
    ) {
      return client;
    }
  } catch {
    // No daemon answers (a stale socket, no permission): work directly.
  } finally {
    clearTimeout(timer);
  }
  client.close();
  return null;
}

/** The daemon's error as the command line reports it: without the operation id the daemon adds. */
function asDirect(error: unknown): unknown {
  if (!isHostdevError(error) || !('operation' in error.details)) return error;
  const { operation: _operation, ...details } = error.details;
  return HostdevError.fromJSON({ code: error.code, message: error.message, hint: error.hint ?? null, details });
}

/** A read through the daemon when it answers, else directly (a reader: it never waits for the state lock). */
export async function read<T>(globals: GlobalOptions, direct: (service: HostdevService) => Promise<T>, remote: (client: HostdevClient) => Promise<T>): Promise<T> {
  const client = await daemonFor(globals);
  if (client === null) return withService(globals, direct, { reader: true });
  try {
    return await remote(client);
  } catch (error) {
    throw asDirect(error);
  } finally {
    client.close();
  }
}

/**
 * A change through the daemon when it answers (its answer's result is the same JSON `toJson`
 * makes of the direct report), else directly. Through the daemon a repeated assign is the error
 * the command line reports, not the API's no-op.
 */
export async function change<R, J>(
  globals: GlobalOptions,
  dryRun: boolean,
  direct: (service: HostdevService) => Promise<R>,
  toJson: (report: R) => J,
  remote: (client: HostdevClient, options: { readonly dryRun: boolean; readonly noop: false }) => Promise<OperationJson>,
): Promise<J> {
  const client = await daemonFor(globals);
  if (client === null) return toJson(await withService(globals, direct, { dryRun }));
  try {
    const operation = await remote(client, { dryRun, noop: false });
    return operation.result as J;
  } catch (error) {
    throw asDirect(error);
  } finally {
    client.close();
  }
}
