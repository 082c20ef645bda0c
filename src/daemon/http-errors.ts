import { ERROR_CATALOG, HostdevError, isHostdevError, type ExitCodeName } from '../core/errors.js';
import type { ErrorJson } from './schemas.js';

/** The HTTP status of each exit class (README: the daemon's error table). */
const STATUS_BY_EXIT: Readonly<Record<ExitCodeName, number>> = {
  ok: 200,
  failure: 500,
  usage: 400,
  notFound: 404,
  conflict: 409,
  unsupported: 422,
  kernel: 502,
  state: 503,
  partial: 207,
  busy: 503,
  hypervisor: 502,
};

/** Seconds a client waits before it retries a busy answer. */
export const RETRY_AFTER_S = 2;

export function httpStatusOf(error: Pick<HostdevError, 'code'>): number {
  if (error.code === 'HOSTDEV_READ_ONLY') return 403;
  return STATUS_BY_EXIT[ERROR_CATALOG[error.code].exit];
}

/** Anything thrown, as a catalog error (a non-hostdev error is a bug: HOSTDEV_INTERNAL). */
export function asHostdevError(error: unknown): HostdevError {
  if (isHostdevError(error)) return error;
  return new HostdevError('HOSTDEV_INTERNAL', `internal error in the hostdev daemon: ${(error as Error)?.message ?? String(error)}`, {
    hint: 'This is a bug in hostdev; the daemon log has the stack. Please report it with this message.',
    cause: error,
  });
}

export function errorJson(error: HostdevError): ErrorJson {
  return error.toJSON() as unknown as ErrorJson;
}

export function readOnlyError(method: string, url: string): HostdevError {
  return new HostdevError('HOSTDEV_READ_ONLY', `${method} ${url} changes the host, and this is the read-only socket`, {
    hint: 'Send changes to hostdev.sock (group hostdev); hostdev-ro.sock answers GET and HEAD only.',
    details: { method, url },
  });
}

export function stoppingError(method: string, url: string): HostdevError {
  return new HostdevError('HOSTDEV_BUSY', `${method} ${url} refused: the hostdev daemon is stopping (draining the operations under way)`, {
    hint: 'Retry after Retry-After seconds: the restarted daemon (or systemd socket activation) answers then.',
    details: { method, url },
  });
}
