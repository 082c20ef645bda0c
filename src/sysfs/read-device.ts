import { existsSync } from 'node:fs';
import path from 'node:path';
import { tryParseAddress, type PciAddress } from '../core/address.js';
import type { InventoryWarning, PciDevice, SriovInfo } from '../core/device.js';
import {
  linkName,
  resolveLink,
  parseClass,
  parseDecimal,
  parseDriverOverride,
  parseHexByte,
  parseHexId,
  parseNumaNode,
  parseResetMethods,
} from './attributes.js';
import { parseConfigSpace } from './config-space.js';
import { FileReader } from './file-reader.js';
import { cachedPciIds, type PciNames } from './pci-ids.js';
import type { SysfsLayout } from './paths.js';

export interface ReadDeviceOptions {
  /** Where names come from; null for no names. Default: the system pci.ids (read once). */
  readonly names?: PciNames | null;
  /** Receives the problems met while reading; the device is still returned, with nulls. */
  readonly onWarning?: (warning: InventoryWarning) => void;
}

/** The state of one inventory read (a fresh one per call: nothing about the host outlives it). */
export class DeviceReadContext {
  readonly reader = new FileReader();
  /** ROOT/sys/bus/pci/devices, joined once. */
  readonly devicesDir: string;
  private readonly driverDirs = new Map<string, boolean>();

  constructor(
    readonly layout: SysfsLayout,
    readonly names: PciNames | null,
    readonly warn: (warning: InventoryWarning) => void,
    /** False when the host has no IOMMU groups: no device then has an iommu_group link to read. */
    readonly iommuGroups: boolean = true,
  ) {
    this.devicesDir = layout.pciDevicesDir;
  }

  /** Whether a driver link points at an existing driver directory (asked once per driver). */
  driverExists(target: string): boolean {
    let exists = this.driverDirs.get(target);
    if (exists === undefined) {
      exists = existsSync(target);
      this.driverDirs.set(target, exists);
    }
    return exists;
  }
}

/** Reads one function; null when ROOT/sys/bus/pci/devices/ADDRESS does not exist. */
export function readDevice(layout: SysfsLayout, address: PciAddress, options: ReadDeviceOptions = {}): PciDevice | null {
  const names = options.names === undefined ? cachedPciIds() : options.names;
  const context = new DeviceReadContext(layout, names, options.onWarning ?? (() => {}));
  return readDeviceIn(context, address);
}

/**
 * Reads one function by opening the files it needs by name. A directory listing would cost as
 * much as two attribute reads per device; the few entries only some devices have (physfn,
 * sriov_*, net) are probed with lstat, which costs a tenth of a listing.
 */
export function readDeviceIn(context: DeviceReadContext, address: PciAddress): PciDevice | null {
  const { reader } = context;
  const busEntry = `${context.devicesDir}/${address}`;
  const warn = (message: string): void => context.warn({ address, message });

  // bus/pci/devices/ADDR is a link into the device hierarchy; its target gives the parent bridge.
  const busLink = reader.link(busEntry);
  if (busLink === null && reader.errno === 'ENOENT') return null;
  const deviceDir = busLink !== null ? resolveLink(context.devicesDir, busLink, path.resolve) : busEntry;
  const parent = busLink !== null ? parentFromPath(busLink) : null;
  const prefix = `${deviceDir}/`;

  /** undefined: the file does not exist; null: unreadable or malformed (with a warning). */
  const attribute = <T>(file: string, parse: (value: string) => T | undefined): T | null | undefined => {
    const raw = reader.text(prefix + file);
    if (raw === null) {
      if (reader.errno === 'ENOENT') return undefined;
      warn(`cannot read ${file}: ${reader.errno}`);
      return null;
    }
    const value = parse(raw);
    if (value === undefined) {
      warn(`unexpected content in ${file}: ${JSON.stringify(raw.slice(0, 40))}`);
      return null;
    }
    return value;
  };
  const required = <T>(file: string, parse: (value: string) => T | undefined): T | null => {
    const value = attribute(file, parse);
    if (value === undefined) warn(`no ${file} file`);
    return value ?? null;
  };
  /** The target of a link, or null when it is absent (silently) or unreadable (with a warning). */
  const link = (file: string): string | null => {
    const target = reader.link(prefix + file);
    if (target === null && reader.errno !== 'ENOENT') warn(`cannot read the ${file} link: ${reader.errno}`);
    return target;
  };

  const vendor = required('vendor', parseHexId);
  const device = required('device', parseHexId);
  const pciClass = required('class', parseClass);

  const config = reader.binary(prefix + 'config', parseConfigSpace);
  if (config === null && reader.errno !== 'ENOENT') warn(`cannot read config: ${reader.errno}`);

  let driver: string | null = null;
  const driverTarget = link('driver');
  if (driverTarget !== null) {
    if (context.driverExists(resolveLink(deviceDir, driverTarget, path.resolve))) driver = linkName(driverTarget);
    else warn(`the driver link points at a missing driver (${driverTarget})`);
  }

  let iommuGroup: number | null = null;
  const groupTarget = context.iommuGroups ? link('iommu_group') : null;
  if (groupTarget !== null) {
    const group = parseDecimal(linkName(groupTarget));
    if (group !== undefined && group >= 0) iommuGroup = group;
    else warn(`the iommu_group link does not name a group (${groupTarget})`);
  }

  let physfn: PciAddress | null = null;
  if (reader.exists(prefix + 'physfn')) {
    const target = link('physfn');
    if (target !== null) physfn = addressOrWarn(linkName(target), 'physfn', warn);
  }

  let sriov: SriovInfo | null = null;
  let virtfns: PciAddress[] = [];
  if (reader.exists(prefix + 'sriov_totalvfs')) {
    const totalVfs = attribute('sriov_totalvfs', parseDecimal) ?? null;
    const numVfs = attribute('sriov_numvfs', parseDecimal) ?? null;
    if (totalVfs !== null) sriov = { totalVfs, numVfs: numVfs ?? 0 };
    virtfns = readVirtfns(context, deviceDir, warn);
  }

  let netdevs: string[] = [];
  if (reader.exists(prefix + 'net')) {
    const names = reader.names(prefix + 'net');
    if (names !== null) netdevs = names.sort();
    else warn(`cannot list net/: ${reader.errno}`);
  }

  // A type-0 header holds the very registers the kernel fills these three files from: taking them
  // from the config bytes already read saves three file reads a device. Bridges keep their
  // subsystem ids elsewhere (SSVID capability), so they, and unreadable headers, use the files.
  const names = context.names;
  return {
    address,
    vendor,
    device,
    subsystemVendor: config?.subsystemVendor ?? attribute('subsystem_vendor', parseHexId) ?? null,
    subsystemDevice: config?.subsystemDevice ?? attribute('subsystem_device', parseHexId) ?? null,
    class: pciClass?.class ?? null,
    progIf: pciClass?.progIf ?? null,
    revision: config?.revision ?? attribute('revision', parseHexByte) ?? null,
    vendorName: names && vendor ? names.vendorName(vendor) : null,
    deviceName: names && vendor && device ? names.deviceName(vendor, device) : null,
    driver,
    driverOverride: attribute('driver_override', parseDriverOverride) ?? null,
    iommuGroup,
    numaNode: attribute('numa_node', parseNumaNode) ?? null,
    headerType: config?.headerType ?? null,
    parent,
    physfn,
    virtfns,
    sriov,
    netdevs,
    resetMethods: attribute('reset_method', parseResetMethods) ?? [],
    flr: config?.flr ?? null,
  };
}

/** The VFs of a PF from its virtfnN links, in N order (a listing: PFs are few). */
function readVirtfns(context: DeviceReadContext, deviceDir: string, warn: (message: string) => void): PciAddress[] {
  const listing = context.reader.names(deviceDir);
  if (listing === null) {
    warn(`cannot list the device directory: ${context.reader.errno}`);
    return [];
  }
  const links = listing
    .filter((name) => /^virtfn[0-9]+$/.test(name))
    .map((name) => ({ name, index: Number.parseInt(name.slice(6), 10) }))
    .sort((a, b) => a.index - b.index);
  const virtfns: PciAddress[] = [];
  for (const { name } of links) {
    const target = context.reader.link(`${deviceDir}/${name}`);
    if (target === null) warn(`cannot read the ${name} link: ${context.reader.errno}`);
    const vf = target !== null ? addressOrWarn(linkName(target), name, warn) : null;
    if (vf !== null) virtfns.push(vf);
  }
  return virtfns;
}

function addressOrWarn(name: string, file: string, warn: (message: string) => void): PciAddress | null {
  const address = tryParseAddress(name);
  if (address === null || address !== name) {
    warn(`the ${file} link does not name a PCI function (${name})`);
    return null;
  }
  return address;
}

/** "../../../devices/pci0000:00/0000:00:1c.0/0000:01:00.0" -> "0000:00:1c.0" (null on a root bus). */
export function parentFromPath(target: string): PciAddress | null {
  const parts = target.split('/').filter((part) => part.length > 0);
  const candidate = parts[parts.length - 2];
  if (candidate === undefined) return null;
  const address = tryParseAddress(candidate);
  return address !== null && address === candidate ? address : null;
}
