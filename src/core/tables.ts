import type { PciAddress } from './address.js';
import { pciKey, type DeviceKey } from './device-key.js';
import type { HardwareIdentity } from './hardware-identity.js';

/*
 * The words below are docs/glossary.md's; the short form, for readers of this file:
 *   key      - a DeviceKey (pci:0000:01:10.0): what the tables key an entry by.
 *   address  - the PciAddress a pci: key names; says which PCI function, nothing more.
 *   device   - what the host shows for an address right now (a PciDevice snapshot), or null if vanished.
 *   entry    - a row of one of the two tables: what hostdev remembers about a device it took.
 *   table    - "active" (entries owned by a VM) or "inactive" (taken from the host, owned by nobody).
 *   owner    - {hypervisor, vm}: the hypervisor driver ("qemu") and the VM (libvirt's domain); `driver`
 *              and `domain` carry the same values under the names --json has always printed.
 *   stub driver     - the driver a device is parked on while the host does not use it (vfio-pci or a variant).
 *   original driver - the driver the device was on before hostdev touched it (null: it had none).
 * The entry stored in a table wins over what a later caller says about the same device.
 */

/**
 * Who holds a device: the hypervisor driver that runs the VM, and the VM (libvirt's domain).
 * `driver` and `domain` carry the same values under the names `--json` has always printed.
 */
export interface Owner {
  readonly driver: string;
  readonly domain: string;
  readonly hypervisor: string;
  readonly vm: string;
}

export function makeOwner(hypervisor: string, vm: string): Owner {
  return { driver: hypervisor, domain: vm, hypervisor, vm };
}

export interface ActiveEntry {
  /** What the tables key the entry by (pci:ADDRESS). */
  readonly key: DeviceKey;
  /** The PCI address the key names: every entry is a PCI function today. */
  readonly address: PciAddress;
  readonly usedBy: Owner;
  readonly managed: boolean;
  readonly stubDriver: string;
  readonly originalDriver: string | null;
  /** The boot the entry was made in (core/boot.ts); null or absent: unknown, taken as this boot. The store stamps it at commit. */
  readonly bootId?: string | null;
  /** What the device at the address was when the entry was made (core/hardware-identity.ts); null or absent: not known. */
  readonly hardware?: HardwareIdentity | null;
}

export interface InactiveEntry {
  readonly key: DeviceKey;
  readonly address: PciAddress;
  readonly managed: boolean;
  readonly stubDriver: string;
  readonly originalDriver: string | null;
  /** The boot the entry was made in (core/boot.ts); null or absent: unknown, taken as this boot. The store stamps it at commit. */
  readonly bootId?: string | null;
  /** What the device at the address was when the entry was made (core/hardware-identity.ts); null or absent: not known. */
  readonly hardware?: HardwareIdentity | null;
}

export interface Tables {
  readonly active: readonly ActiveEntry[];
  readonly inactive: readonly InactiveEntry[];
}

export type TableChange =
  | { readonly kind: 'set-active'; readonly entry: ActiveEntry }
  | { readonly kind: 'set-inactive'; readonly entry: InactiveEntry }
  | { readonly kind: 'remove'; readonly key: DeviceKey; readonly address: PciAddress };

/** Drops the device's entry from whichever table holds it. */
export function removeChange(address: PciAddress): TableChange {
  return { kind: 'remove', key: pciKey(address), address };
}

export const EMPTY_TABLES: Tables = { active: [], inactive: [] };

export type TableName = 'active' | 'inactive';

export type Located =
  | { readonly table: 'active'; readonly entry: ActiveEntry }
  | { readonly table: 'inactive'; readonly entry: InactiveEntry };

/** Lookups by device key over both tables in O(1); built once per operation. PCI code asks by address. */
export class TableIndex {
  private readonly byKey = new Map<DeviceKey, Located>();

  constructor(readonly tables: Tables) {
    for (const entry of tables.inactive) this.byKey.set(entry.key, { table: 'inactive', entry });
    for (const entry of tables.active) this.byKey.set(entry.key, { table: 'active', entry });
  }

  findKey(key: DeviceKey): Located | undefined {
    return this.byKey.get(key);
  }

  find(address: PciAddress): Located | undefined {
    return this.byKey.get(pciKey(address));
  }

  active(address: PciAddress): ActiveEntry | undefined {
    const found = this.find(address);
    return found?.table === 'active' ? found.entry : undefined;
  }

  inactive(address: PciAddress): InactiveEntry | undefined {
    const found = this.find(address);
    return found?.table === 'inactive' ? found.entry : undefined;
  }

  ownedBy(owner: Owner): ActiveEntry[] {
    return this.tables.active.filter((entry) => sameOwner(entry.usedBy, owner));
  }
}

export function sameOwner(a: Owner, b: Owner): boolean {
  return a.hypervisor === b.hypervisor && a.vm === b.vm;
}

/** How every message names who holds a device: libvirt's "driver qemu, domain vm1", or "detached, no owner". */
export function formatOwner(owner: Owner | null): string {
  return owner === null ? 'detached, no owner' : `driver ${owner.hypervisor}, domain ${owner.vm}`;
}

/** Who holds a device claimed from boot (inactive table, a claim defined for it): `hostdev/claim`. */
export const CLAIM_OWNER: Owner = makeOwner('hostdev', 'claim');

/**
 * The OWNER column (list, show, groups, vf list, status): "qemu/vm1", "hostdev (detached)",
 * "hostdev/claim" (detached by a claim), or "-" when in no table.
 */
export function ownerCell(
  place: { readonly table: TableName; readonly owner?: Owner | null; readonly claimed?: boolean; readonly sharedBy?: readonly Owner[] } | null,
): string {
  if (place === null) return '-';
  // A shared SCSI device: every domain that holds it.
  if (place.table === 'active' && place.owner) return [place.owner, ...(place.sharedBy ?? [])].map(ownerName).join(',');
  return place.claimed === true ? ownerName(CLAIM_OWNER) : 'hostdev (detached)';
}

/** The short name of an owner, as columns and `held by` print it: "qemu/vm1". */
export function ownerName(owner: Owner): string {
  return `${owner.hypervisor}/${owner.vm}`;
}

export function toInactive(entry: ActiveEntry | InactiveEntry): InactiveEntry {
  return {
    key: entry.key,
    address: entry.address,
    managed: entry.managed,
    stubDriver: entry.stubDriver,
    originalDriver: entry.originalDriver,
    ...(entry.bootId === undefined ? {} : { bootId: entry.bootId }),
    ...(entry.hardware === undefined ? {} : { hardware: entry.hardware }),
  };
}

export function toActive(entry: InactiveEntry, usedBy: Owner): ActiveEntry {
  return { ...toInactive(entry), usedBy };
}

function changeKey(change: TableChange): DeviceKey {
  return change.kind === 'remove' ? change.key : change.entry.key;
}

/** The tables after `changes`, applied in order (what the store's commit does, as a pure function). */
export function applyChanges(tables: Tables, changes: readonly TableChange[]): Tables {
  const active = new Map(tables.active.map((entry) => [entry.key, entry]));
  const inactive = new Map(tables.inactive.map((entry) => [entry.key, entry]));
  for (const change of changes) {
    const key = changeKey(change);
    active.delete(key);
    inactive.delete(key);
    if (change.kind === 'set-active') active.set(key, change.entry);
    if (change.kind === 'set-inactive') inactive.set(key, change.entry);
  }
  const byKey = <T extends { key: DeviceKey }>(a: T, b: T): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  return { active: [...active.values()].sort(byKey), inactive: [...inactive.values()].sort(byKey) };
}
