import type { PciAddress } from './address.js';
import { HostdevError } from './errors.js';
import { driftedDevice } from './plan-errors.js';
import type { HostView, Plan } from './plan-types.js';
import { formatOwner, sameOwner, TableIndex, type Owner, type TableChange } from './tables.js';

export interface HandOverRequest {
  readonly from: Owner;
  readonly to: Owner;
  readonly addresses: readonly PciAddress[];
}

/**
 * Moves assigned devices from one owner to another without touching them: each stays on its stub,
 * its entry keeps how it was readied (managed, stub, original driver) and only its owner changes,
 * all in one commit. This is how a device waiting in a pool is given to the workload that was
 * allocated it, and given back to the pool when that workload ends. A device that left the host is
 * passed over with a note (the reconcile of every open and of the watch prunes it); one held by
 * anyone but `from`, or off its stub, refuses the whole request before anything changes.
 */
export function planHandOver(view: HostView, request: HandOverRequest): Plan {
  const index = new TableIndex(view.tables);
  const changes: TableChange[] = [];
  const notes: string[] = [];
  for (const address of new Set(request.addresses)) {
    const entry = index.active(address);
    const device = view.devices.get(address) ?? null;
    if (entry !== undefined && sameOwner(entry.usedBy, request.to)) {
      notes.push(`${address} is held by ${formatOwner(request.to)} already; nothing to do`);
      continue;
    }
    if (entry === undefined || !sameOwner(entry.usedBy, request.from)) {
      const holder = entry?.usedBy ?? null;
      throw new HostdevError('HOSTDEV_NOT_OWNED', `PCI device ${address} is not held by ${formatOwner(request.from)}: it is ${holder === null ? 'in no domain' : `in use by ${formatOwner(holder)}`}`, {
        hint: 'hostdev status lists who holds each device; nothing was changed.',
        details: { address, owner: holder },
      });
    }
    if (device === null) {
      notes.push(`${address} is no longer on this host; not handed over`);
      continue;
    }
    if (device.driver !== entry.stubDriver) {
      throw driftedDevice({ address, usedBy: entry.usedBy, expectedDriver: entry.stubDriver, actualDriver: device.driver });
    }
    changes.push({ kind: 'set-active', entry: { ...entry, usedBy: request.to } });
  }
  return { operation: 'hand-over', onFailure: 'rollback', fallbacks: [], groups: [], changes, pruned: [], resets: [], notes };
}
