import { existsSync } from 'node:fs';
import path from 'node:path';
import type { PciAddress } from '../core/address.js';
import type { DeviceKey } from '../core/device-key.js';
import type { DeviceEntry } from '../core/device-entry.js';
import { checkHostIdentity } from '../core/host-identity.js';
import { TableIndex, type Owner, type Tables } from '../core/tables.js';
import { readHostIdentity } from '../host/host-identity.js';
import { DB_FILE } from '../state/files.js';

/** Where a device stands in hostdev's tables: owned by a domain, detached for nobody, or neither (null). */
export type TableMembership =
  /** `sharedBy`: the other domains that hold a shareable SCSI device. */
  | { readonly table: 'active'; readonly owner: Owner; readonly sharedBy?: readonly Owner[] }
  | { readonly table: 'inactive'; readonly claimed?: boolean };
/** By PCI address, or by the device key of any kind. */
export type TableLookup = (device: PciAddress | DeviceKey) => TableMembership | null;

/**
 * Both tables, read once and without the lock, for the inventory commands. A state directory
 * without a database means hostdev never took a device: nobody owns anything, nothing is created,
 * and SQLite is not even loaded (the common case on a host where `list` is all that runs).
 */
export async function tableLookupFor(stateDir: string, root: string): Promise<TableLookup> {
  if (!existsSync(path.join(stateDir, DB_FILE))) return () => null;
  const { StateStore } = await import('../state/store.js');
  // A snapshot: the inventory commands take no lock and write nothing, not even a lock file.
  const store = StateStore.openSnapshot(stateDir);
  try {
    // Another host's tables would name the wrong devices: HOSTDEV_STATE.
    const host = readHostIdentity(root);
    if (host !== null) checkHostIdentity(store.claimHost(host.id), host, { root, stateDir: store.stateDir });
    return tableLookupOf(store.readTables(), store.readDevices());
  } finally {
    store.close();
  }
}

/** Where each device stands in these tables; `devices`: the entries of other kinds (mdev, USB), all active. */
export function tableLookupOf(tables: Tables, devices: readonly DeviceEntry[] = []): TableLookup {
  const index = new TableIndex(tables);
  const others = new Map(devices.map((entry) => [entry.key, entry]));
  return (device) => {
    const other = others.get(device as DeviceKey);
    if (other !== undefined) return { table: 'active', owner: other.usedBy, ...(other.sharedBy === undefined ? {} : { sharedBy: other.sharedBy }) };
    // A PCI address starts with its four hex digits of PCI domain; a key with its kind.
    const found = /^[0-9a-f]{4}:/.test(device) ? index.find(device as PciAddress) : index.findKey(device as DeviceKey);
    if (found === undefined) return null;
    return found.table === 'active' ? { table: 'active', owner: found.entry.usedBy } : { table: 'inactive' };
  };
}

/** The same lookup, with the inactive entries of claimed devices marked (their OWNER is hostdev/claim). */
export function withClaims(tables: TableLookup, claimed: ReadonlySet<string>): TableLookup {
  if (claimed.size === 0) return tables;
  return (device) => {
    const found = tables(device);
    if (found?.table !== 'inactive') return found;
    const address = device.startsWith('pci:') ? device.slice(4) : device;
    return claimed.has(address) ? { table: 'inactive', claimed: true } : found;
  };
}
