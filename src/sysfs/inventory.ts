import type { PciAddress } from '../core/address.js';
import type { Inventory, InventoryWarning, PciDevice } from '../core/device.js';
import { canonicalAddress } from './attributes.js';
import { FileReader } from './file-reader.js';
import { cachedPciIds, DEFAULT_PCI_IDS_PATH, type PciNames } from './pci-ids.js';
import { SysfsLayout } from './paths.js';
import { DeviceReadContext, locateDevice, readDeviceIn, readChildPart, readParentPart, withChildFacts, type ChildFacts, type ParentPart } from './read-device.js';

export interface ReadInventoryOptions {
  /** Names source; null for no names (and no warning). Default: pci.ids at `pciIdsPath`. */
  readonly names?: PciNames | null;
  /** Default /usr/share/misc/pci.ids; never under --root. */
  readonly pciIdsPath?: string;
}

/** What is known before the devices are read: their addresses, names source and the IOMMU state. */
export interface InventoryPlan {
  readonly addresses: readonly PciAddress[];
  readonly names: PciNames | null;
  readonly iommuEnabled: boolean;
  readonly warnings: InventoryWarning[];
}

export function planInventory(layout: SysfsLayout, options: ReadInventoryOptions = {}): InventoryPlan {
  const warnings: InventoryWarning[] = [];
  const reader = new FileReader();
  const listing = reader.names(layout.pciDevicesDir);
  if (listing === null) {
    warnings.push({ address: '', message: `cannot list ${layout.pciDevicesDir}: ${reader.errno}` });
    return { addresses: [], names: null, iommuEnabled: false, warnings };
  }
  const addresses: PciAddress[] = [];
  for (const name of listing) {
    const address = canonicalAddress(name);
    if (address !== null) addresses.push(address);
    else warnings.push({ address: name, message: 'not a PCI address; skipped' });
  }
  addresses.sort();

  let names: PciNames | null = null;
  if (options.names !== undefined) {
    names = options.names;
  } else if (addresses.length > 0) {
    const idsPath = options.pciIdsPath ?? DEFAULT_PCI_IDS_PATH;
    names = cachedPciIds(idsPath);
    if (names === null) {
      warnings.push({ address: '', message: `no PCI ID database at ${idsPath}: vendor and device names are null` });
    }
  }
  const groups = reader.names(layout.iommuGroupsDir);
  return { addresses, names, iommuEnabled: groups !== null && groups.length > 0, warnings };
}

/** Reads the given functions in order; a function that vanished meanwhile is left out. */
export function readFunctions(
  layout: SysfsLayout,
  addresses: readonly PciAddress[],
  names: PciNames | null,
  iommuEnabled: boolean,
  warnings: InventoryWarning[],
): PciDevice[] {
  const context = new DeviceReadContext(layout, names, (warning) => warnings.push(warning), iommuEnabled);
  const devices: PciDevice[] = [];
  for (const address of addresses) {
    const device = readDeviceIn(context, address);
    if (device !== null) devices.push(device);
  }
  return devices;
}

/**
 * Every PCI function under ROOT/sys/bus/pci/devices, in address order. A device whose files are
 * missing or malformed is listed with nulls and a warning; nothing here throws for a bad tree.
 */
export function readInventory(layout: SysfsLayout, options: ReadInventoryOptions = {}): Inventory {
  const plan = planInventory(layout, options);
  const devices = readFunctions(layout, plan.addresses, plan.names, plan.iommuEnabled, plan.warnings);
  return { devices, warnings: plan.warnings, iommuEnabled: plan.iommuEnabled };
}

/** The in-process half of a bounded read: every function without its ChildFacts. */
export interface ParentInventory {
  readonly plan: InventoryPlan;
  /** How many of plan.warnings are about the listing and the names source, before any function. */
  readonly planWarnings: number;
  /** In address order; `warningsEnd`: plan.warnings.length once this function was read. */
  readonly parts: ReadonlyArray<{ readonly part: ParentPart; readonly warningsEnd: number }>;
}

export function readParentInventory(layout: SysfsLayout, options: ReadInventoryOptions = {}): ParentInventory {
  const plan = planInventory(layout, options);
  const context = new DeviceReadContext(layout, plan.names, (warning) => plan.warnings.push(warning), plan.iommuEnabled);
  const planWarnings = plan.warnings.length;
  const parts: Array<{ part: ParentPart; warningsEnd: number }> = [];
  for (const address of plan.addresses) {
    const part = readParentPart(context, address);
    if (part !== null) parts.push({ part, warningsEnd: plan.warnings.length });
  }
  return { plan, planWarnings, parts };
}

/** The ChildFacts of one function and the problems met reading them. */
export interface ChildRead {
  readonly address: PciAddress;
  readonly facts: ChildFacts;
  readonly warnings: readonly string[];
}

/** The bounded child's half: the ChildFacts of every function listed now (vanished ones left out). */
export function readChildInventory(layout: SysfsLayout): ChildRead[] {
  const { addresses } = planInventory(layout, { names: null });
  let warnings: string[] = [];
  const context = new DeviceReadContext(layout, null, (warning) => warnings.push(warning.message));
  const reads: ChildRead[] = [];
  for (const address of addresses) {
    const deviceDir = locateDevice(context, address);
    if (deviceDir === null) continue;
    warnings = [];
    reads.push({ address, facts: readChildPart(context, address, deviceDir), warnings });
  }
  return reads;
}

/**
 * Joins the two halves into what readInventory gives: each function's warnings in the same
 * order. A function one half saw and the other did not (it came or went between the two
 * listings) is left out, like a function that vanishes while it is read.
 */
export function joinInventory(parent: ParentInventory, child: readonly ChildRead[]): Inventory {
  const byAddress = new Map<string, ChildRead>();
  for (const read of child) byAddress.set(read.address, read);
  const { plan } = parent;
  const devices: PciDevice[] = [];
  const warnings = plan.warnings.slice(0, parent.planWarnings);
  let from = parent.planWarnings;
  for (const { part, warningsEnd } of parent.parts) {
    const read = byAddress.get(part.device.address);
    if (read !== undefined) {
      for (let i = from; i < warningsEnd; i++) warnings.push(plan.warnings[i]!);
      for (const message of read.warnings) warnings.push({ address: part.device.address, message });
      devices.push(withChildFacts(part, read.facts));
    }
    from = warningsEnd;
  }
  for (let i = from; i < plan.warnings.length; i++) warnings.push(plan.warnings[i]!);
  return { devices, warnings, iommuEnabled: plan.iommuEnabled };
}
