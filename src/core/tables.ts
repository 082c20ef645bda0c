import type { PciAddress } from './address.js';

/*
 * Names used across the manager, declared once:
 *   address  - a PciAddress; says which device, nothing more.
 *   device   - what the host shows for an address right now (a PciDevice snapshot), or null if vanished.
 *   entry    - a row of one of the two tables: what hostdev remembers about a device it took.
 *   table    - "active" (entries owned by a domain) or "inactive" (taken from the host, owned by nobody).
 *   owner    - {driver, domain}: the hypervisor driver ("qemu") and the domain (VM) name.
 *   stub driver     - the driver a device is parked on while the host does not use it (vfio-pci or a variant).
 *   original driver - the driver the device was on before hostdev touched it (null: it had none).
 * The entry stored in a table wins over what a later caller says about the same device.
 */

export interface Owner {
  readonly driver: string;
  readonly domain: string;
}

export interface ActiveEntry {
  readonly address: PciAddress;
  readonly usedBy: Owner;
  readonly managed: boolean;
  readonly stubDriver: string;
  readonly originalDriver: string | null;
}

export interface InactiveEntry {
  readonly address: PciAddress;
  readonly managed: boolean;
  readonly stubDriver: string;
  readonly originalDriver: string | null;
}

export interface Tables {
  readonly active: readonly ActiveEntry[];
  readonly inactive: readonly InactiveEntry[];
}

export type TableChange =
  | { readonly kind: 'set-active'; readonly entry: ActiveEntry }
  | { readonly kind: 'set-inactive'; readonly entry: InactiveEntry }
  | { readonly kind: 'remove'; readonly address: PciAddress };

export const EMPTY_TABLES: Tables = { active: [], inactive: [] };

export type Located =
  | { readonly table: 'active'; readonly entry: ActiveEntry }
  | { readonly table: 'inactive'; readonly entry: InactiveEntry };

/** Address lookups over both tables in O(1); built once per operation. */
export class TableIndex {
  private readonly byAddress = new Map<string, Located>();

  constructor(readonly tables: Tables) {
    for (const entry of tables.inactive) this.byAddress.set(entry.address, { table: 'inactive', entry });
    for (const entry of tables.active) this.byAddress.set(entry.address, { table: 'active', entry });
  }

  find(address: PciAddress): Located | undefined {
    return this.byAddress.get(address);
  }

  active(address: PciAddress): ActiveEntry | undefined {
    const found = this.byAddress.get(address);
    return found?.table === 'active' ? found.entry : undefined;
  }

  inactive(address: PciAddress): InactiveEntry | undefined {
    const found = this.byAddress.get(address);
    return found?.table === 'inactive' ? found.entry : undefined;
  }

  ownedBy(owner: Owner): ActiveEntry[] {
    return this.tables.active.filter((entry) => sameOwner(entry.usedBy, owner));
  }
}

export function sameOwner(a: Owner, b: Owner): boolean {
  return a.driver === b.driver && a.domain === b.domain;
}

export function formatOwner(owner: Owner): string {
  return `driver ${owner.driver}, domain ${owner.domain}`;
}

export function toInactive(entry: ActiveEntry | InactiveEntry): InactiveEntry {
  return {
    address: entry.address,
    managed: entry.managed,
    stubDriver: entry.stubDriver,
    originalDriver: entry.originalDriver,
  };
}

export function toActive(entry: InactiveEntry, usedBy: Owner): ActiveEntry {
  return { ...toInactive(entry), usedBy };
}

function changeAddress(change: TableChange): PciAddress {
  return change.kind === 'remove' ? change.address : change.entry.address;
}

/** The tables after `changes`, applied in order (what the store's commit does, as a pure function). */
export function applyChanges(tables: Tables, changes: readonly TableChange[]): Tables {
  const active = new Map(tables.active.map((entry) => [entry.address as string, entry]));
  const inactive = new Map(tables.inactive.map((entry) => [entry.address as string, entry]));
  for (const change of changes) {
    const address = changeAddress(change);
    active.delete(address);
    inactive.delete(address);
    if (change.kind === 'set-active') active.set(address, change.entry);
    if (change.kind === 'set-inactive') inactive.set(address, change.entry);
  }
  const byAddress = <T extends { address: PciAddress }>(a: T, b: T): number =>
    a.address < b.address ? -1 : a.address > b.address ? 1 : 0;
  return { active: [...active.values()].sort(byAddress), inactive: [...inactive.values()].sort(byAddress) };
}

/** Who holds a device, for `list`/`show`/`status`: "qemu/vm1", "hostdev" (inactive) or null. */
export function ownerLabel(located: Located | undefined): string | null {
  if (located === undefined) return null;
  return located.table === 'active'
    ? `${located.entry.usedBy.driver}/${located.entry.usedBy.domain}`
    : 'hostdev';
}
