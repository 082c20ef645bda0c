import type { PciAddress } from './address.js';
import { HostdevError } from './errors.js';
import { inUse, notFound } from './plan-errors.js';
import type { HostView, Plan } from './plan-types.js';
import { assignCommand } from './shell.js';
import { isStubDriver } from './stub-driver.js';
import { formatOwner, sameOwner, TableIndex, toActive, type Owner, type TableChange } from './tables.js';
import { pciKey } from './device-key.js';

export interface AdoptRequest {
  readonly owner: Owner;
  readonly addresses: readonly PciAddress[];
  /** For a device in no table: whether its release gives it back to the host (default true). */
  readonly managed: boolean;
}

/**
 * libvirt's virHostdevUpdateActivePCIDevices: a VM manager that restarts marks the devices its running
 * VMs hold as active without touching them. Each device must be on the host, on a stub driver, and
 * in no other domain; one in the inactive table keeps how it was readied, one in no table is taken
 * as found (its driver before the VM is not known: a managed release lets the kernel probe a host
 * driver for it). All or nothing: one refused device refuses the request before anything changes.
 */
export function planAdopt(view: HostView, request: AdoptRequest): Plan {
  const index = new TableIndex(view.tables);
  const changes: TableChange[] = [];
  const notes: string[] = [];
  for (const address of new Set(request.addresses)) {
    const device = view.devices.get(address) ?? null;
    if (device === null) throw notFound(address);
    const found = index.find(address);
    if (found?.table === 'active') {
      if (sameOwner(found.entry.usedBy, request.owner)) {
        notes.push(`${address} is held by ${formatOwner(request.owner)} already; nothing to do`);
        continue;
      }
      throw inUse(address, found.entry.usedBy);
    }
    if (!isStubDriver(device.driver)) {
      throw new HostdevError(
        'HOSTDEV_NOT_ON_STUB',
        `PCI device ${address} is on ${device.driver === null ? 'no driver' : `its host driver ${device.driver}`}, not on a stub driver: no running VM can hold it, so ${formatOwner(request.owner)} cannot be adopting it`,
        {
          hint: `Check the address; to give the device to the domain, assign it instead (${assignCommand(request.owner, address)}); nothing was changed.`,
          details: { address, driver: device.driver, owner: request.owner },
        },
      );
    }
    const entry =
      found?.table === 'inactive'
        ? toActive(found.entry, request.owner)
        : { key: pciKey(address), address, usedBy: request.owner, managed: request.managed, stubDriver: device.driver!, originalDriver: null };
    changes.push({ kind: 'set-active', entry });
  }
  return { operation: 'adopt', onFailure: 'rollback', fallbacks: [], groups: [], changes, pruned: [], resets: [], notes };
}
