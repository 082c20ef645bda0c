import { NO_SERIALS, type DeviceSerials, type VpdFields } from '../core/hardware-identity.js';
import type { HostUse } from '../core/plan-types.js';
import type { PciAddress } from '../core/address.js';
import type { Inventory, PciDevice } from '../core/device.js';
import { pciKey, type DeviceKey } from '../core/device-key.js';
import { assignmentVerdict, findDevice, groupMembers, listGroups, type AssignmentVerdict, type OwnerLookup } from '../core/iommu.js';
import { notFound } from '../core/plan-errors.js';
import type { Owner } from '../core/tables.js';
import { modaliasFields, modaliasText, vfioStubFor } from '../core/vfio-variant.js';
import type { VfioAliasTable } from '../host/modules-alias.js';
import type { TableLookup, TableMembership } from './table-lookup.js';

/**
 * The inventory reports (list, show, groups) as `--json` prints them and the service returns
 * them: one shape for every front end, built from what was read (the inventory, the tables, the
 * host's vfio-pci aliases) without reading anything itself.
 */

/**
 * The same two fields wherever a device is printed with its tables (list, show, groups):
 * `owner` {driver, domain} or null, and `table` "active" | "inactive" | null; a claimed device
 * (inactive, a claim defined for it) has `claimed: true` besides.
 */
export function ownershipJson(membership: TableMembership | null): {
  owner: Owner | null;
  table: 'active' | 'inactive' | null;
  claimed?: true;
  sharedBy?: readonly Owner[];
} {
  if (membership === null) return { owner: null, table: null };
  if (membership.table === 'active') return { owner: membership.owner, table: 'active', ...(membership.sharedBy === undefined ? {} : { sharedBy: membership.sharedBy }) };
  return membership.claimed === true ? { owner: null, table: 'inactive', claimed: true } : { owner: null, table: 'inactive' };
}

/** A device as `--json` prints it: its key, then PciDevice's fields in their order. */
export type DeviceJson = { readonly key: DeviceKey } & PciDevice;

/** A device with its two table fields, as `--json` prints it: key, PciDevice's fields in their order, then owner and table. */
export type DeviceWithOwnership = DeviceJson & ReturnType<typeof ownershipJson>;

/**
 * Every field copied by name, not spread: list makes thousands of these, and a spread of 22 fields
 * into a fresh object costs four times as much in code that has not warmed up yet (its output also
 * stringifies slower). The return type makes a field PciDevice gains a compile error here.
 */
function withKey(d: PciDevice): DeviceJson {
  return {
    key: pciKey(d.address),
    address: d.address,
    vendor: d.vendor,
    device: d.device,
    subsystemVendor: d.subsystemVendor,
    subsystemDevice: d.subsystemDevice,
    class: d.class,
    progIf: d.progIf,
    revision: d.revision,
    vendorName: d.vendorName,
    deviceName: d.deviceName,
    driver: d.driver,
    driverOverride: d.driverOverride,
    iommuGroup: d.iommuGroup,
    numaNode: d.numaNode,
    headerType: d.headerType,
    parent: d.parent,
    physfn: d.physfn,
    virtfns: d.virtfns,
    sriov: d.sriov,
    netdevs: d.netdevs,
    resetMethods: d.resetMethods,
    flr: d.flr,
  };
}

/** The device as `--json` prints it: its key and the PciDevice fields, plus owner and table when the tables are known. */
export function deviceJson(device: PciDevice, tables: TableLookup | null): DeviceJson {
  const json = withKey(device);
  if (tables === null) return json;
  return Object.assign(json, ownershipJson(tables(device.address)));
}

/** From the root complex ("pci0000:00") down through the bridges to the device. */
export function pciPath(inventory: Inventory, device: PciDevice): string[] {
  const byAddress = new Map(inventory.devices.map((d) => [d.address, d]));
  const chain: PciAddress[] = [device.address];
  let current: PciDevice | undefined = device;
  while (current?.parent && !chain.includes(current.parent)) {
    chain.unshift(current.parent);
    current = byAddress.get(current.parent);
  }
  const top = chain[0]!;
  return [`pci${top.slice(0, 7)}`, ...chain];
}

function memberJson(member: PciDevice): Record<string, unknown> {
  const { address, driver, class: pciClass, headerType, vendorName, deviceName } = member;
  return { key: pciKey(address), address, driver, class: pciClass, headerType, vendorName, deviceName };
}

/** The active table's owners, as the IOMMU-group rules want them. */
export function ownersOf(tables: TableLookup): OwnerLookup {
  return (address) => {
    const found = tables(address);
    return found?.table === 'active' ? found.owner : null;
  };
}

/** The stub driver `assign`/`detach` would pick for the device when --driver is not given. */
export interface VfioStubJson {
  readonly driver: string;
  /** The modules.alias it was looked up in; null when the host has none (then vfio-pci). */
  readonly modulesAlias: string | null;
}

export interface ShowReport extends DeviceJson {
  readonly owner?: Owner | null;
  readonly table?: 'active' | 'inactive' | null;
  readonly pciPath: readonly string[];
  readonly groupMembers: ReadonlyArray<ReturnType<typeof memberJson>>;
  readonly verdict: AssignmentVerdict;
  readonly modalias: string | null;
  readonly vfioStub: VfioStubJson | null;
  /** How the host uses it (an address or route on its netdevs, a mounted filesystem, the console): why detach would refuse. */
  readonly hostUse: readonly HostUse[];
  /** The PCIe Device Serial Number, and the VPD fields (part number, serial, ...), where the device has them. */
  readonly serialNumber: string | null;
  readonly vpd: VpdFields | null;
}

/** `show ADDRESS`: the device, its PCI path, its IOMMU group's members and whether it can go to a VM alone. */
export function showReport(
  inventory: Inventory,
  address: PciAddress,
  tables: TableLookup | null,
  aliases: VfioAliasTable | null,
  hostUse: readonly HostUse[] = [],
  serials: DeviceSerials = NO_SERIALS,
): ShowReport {
  const device = findDevice(inventory, address);
  if (device === null) throw notFound(address);
  const fields = modaliasFields(device);
  const endpoint = device.headerType === 'endpoint' || device.headerType === null;
  return {
    ...deviceJson(device, tables),
    pciPath: pciPath(inventory, device),
    groupMembers: groupMembers(inventory, address).map(memberJson),
    verdict: assignmentVerdict(inventory, address, tables ? { owners: ownersOf(tables) } : {}),
    modalias: fields !== null ? modaliasText(fields) : null,
    vfioStub: endpoint ? { driver: vfioStubFor(device, aliases?.aliases ?? []), modulesAlias: aliases?.file ?? null } : null,
    hostUse,
    serialNumber: serials.serialNumber,
    vpd: serials.vpd,
  };
}

/** `groups`: every IOMMU group with its members (and their table fields when the tables are known). */
export function groupsReport(inventory: Inventory, tables: TableLookup | null): GroupReport[] {
  const membership = (address: PciAddress): TableMembership | null => (tables ? tables(address) : null);
  return listGroups(inventory).map((group) => ({
    group: group.id,
    members: group.members.map((m) => ({
      key: pciKey(m.address),
      address: m.address,
      driver: m.driver,
      class: m.class,
      headerType: m.headerType,
      vendor: m.vendor,
      device: m.device,
      vendorName: m.vendorName,
      deviceName: m.deviceName,
      ...(tables ? ownershipJson(membership(m.address)) : {}),
    })),
  }));
}

export interface GroupReport {
  readonly group: number;
  readonly members: ReadonlyArray<Record<string, unknown>>;
}
