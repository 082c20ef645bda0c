import { existsSync } from 'node:fs';
import path from 'node:path';
import type { PciAddress } from '../core/address.js';
import type { InventoryWarning, PciDevice, SriovInfo } from '../core/device.js';
import {
  canonicalAddress,
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
 * The fields the CLI reads in its bounded child process (src/sysfs/bounded-inventory.ts). They
 * include every file the kernel can hold up: `driver_override` and `sriov_numvfs` are shown under
 * the device lock (held for as long as a VF removal waits for a VM to let go), and a `config` read
 * waits while config access is blocked (a reset; up to 60 s for a device that is not ready).
 * The rest is plain kernfs, read in-process; numa_node and reset_method (lock-free too) are read
 * by the child only to share the work between the two processes.
 */
export type ChildFacts = Pick<
  PciDevice,
  'driverOverride' | 'headerType' | 'flr' | 'revision' | 'subsystemVendor' | 'subsystemDevice' | 'numaNode' | 'resetMethods'
> & {
  /** sriov_numvfs; null when the function is not a PF or the file is unreadable. */
  readonly numVfs: number | null;
};

/** A device without its ChildFacts, and what reading them needs to know about it. */
export interface ParentPart {
  readonly device: Omit<PciDevice, keyof ChildFacts | 'sriov'>;
  readonly totalVfs: number | null;
  /** Whether the function has SR-IOV files (then sriov_numvfs is read). */
  readonly pf: boolean;
  readonly deviceDir: string;
}

/** Reads one function: the parent's part, then the child's; warnings in that order. */
export function readDeviceIn(context: DeviceReadContext, address: PciAddress): PciDevice | null {
  const part = readParentPart(context, address);
  if (part === null) return null;
  return withChildFacts(part, readChildPart(context, address, part.deviceDir, part.pf));
}

export function withChildFacts(part: ParentPart, facts: ChildFacts): PciDevice {
  const { numVfs } = facts;
  const sriov: SriovInfo | null = part.totalVfs !== null ? { totalVfs: part.totalVfs, numVfs: numVfs ?? 0 } : null;
  const { device } = part;
  // The contract's field order (it is what `--json` prints).
  return {
    address: device.address,
    vendor: device.vendor,
    device: device.device,
    subsystemVendor: facts.subsystemVendor,
    subsystemDevice: facts.subsystemDevice,
    class: device.class,
    progIf: device.progIf,
    revision: facts.revision,
    vendorName: device.vendorName,
    deviceName: device.deviceName,
    driver: device.driver,
    driverOverride: facts.driverOverride,
    iommuGroup: device.iommuGroup,
    numaNode: facts.numaNode,
    headerType: facts.headerType,
    parent: device.parent,
    physfn: device.physfn,
    virtfns: device.virtfns,
    sriov,
    netdevs: device.netdevs,
    resetMethods: facts.resetMethods,
    flr: facts.flr,
  };
}

/** Reads one attribute file of a device: the shared helpers of the two halves. */
class DeviceFiles {
  constructor(
    private readonly context: DeviceReadContext,
    private readonly address: PciAddress,
    readonly prefix: string,
  ) {}

  warn(message: string): void {
    this.context.warn({ address: this.address, message });
  }

  /** undefined: the file does not exist; null: unreadable or malformed (with a warning). */
  attribute<T>(file: string, parse: (value: string) => T | undefined): T | null | undefined {
    const { reader } = this.context;
    const raw = reader.text(this.prefix + file);
    if (raw === null) {
      if (reader.errno === 'ENOENT') return undefined;
      this.warn(`cannot read ${file}: ${reader.errno}`);
      return null;
    }
    const value = parse(raw);
    if (value === undefined) {
      this.warn(`unexpected content in ${file}: ${JSON.stringify(raw.slice(0, 40))}`);
      return null;
    }
    return value;
  }

  required<T>(file: string, parse: (value: string) => T | undefined): T | null {
    const value = this.attribute(file, parse);
    if (value === undefined) this.warn(`no ${file} file`);
    return value ?? null;
  }

  /** The target of a link, or null when it is absent (silently) or unreadable (with a warning). */
  link(file: string): string | null {
    const { reader } = this.context;
    const target = reader.link(this.prefix + file);
    if (target === null && reader.errno !== 'ENOENT') this.warn(`cannot read the ${file} link: ${reader.errno}`);
    return target;
  }
}

/** bus/pci/devices/ADDR is a link into the device hierarchy: its target, or null when the device is gone. */
function locate(context: DeviceReadContext, address: PciAddress): { deviceDir: string; busLink: string | null } | null {
  const busEntry = `${context.devicesDir}/${address}`;
  const busLink = context.reader.link(busEntry);
  if (busLink === null && context.reader.errno === 'ENOENT') return null;
  return { deviceDir: busLink !== null ? resolveLink(context.devicesDir, busLink, path.resolve) : busEntry, busLink };
}

/**
 * Reads the parent's part (no file a kernel lock can hold up), by opening the files it needs by name. A directory listing
 * would cost as much as two attribute reads per device; the few entries only some devices have
 * (physfn, sriov_*, net) are probed with lstat, which costs a tenth of a listing.
 */
export function readParentPart(context: DeviceReadContext, address: PciAddress): ParentPart | null {
  const located = locate(context, address);
  if (located === null) return null;
  const { deviceDir, busLink } = located;
  const { reader } = context;
  const files = new DeviceFiles(context, address, `${deviceDir}/`);
  const { prefix } = files;
  const warn = (message: string): void => files.warn(message);

  const vendor = files.required('vendor', parseHexId);
  const device = files.required('device', parseHexId);
  const pciClass = files.required('class', parseClass);

  let driver: string | null = null;
  const driverTarget = files.link('driver');
  if (driverTarget !== null) {
    if (context.driverExists(resolveLink(deviceDir, driverTarget, path.resolve))) driver = linkName(driverTarget);
    else warn(`the driver link points at a missing driver (${driverTarget})`);
  }

  let iommuGroup: number | null = null;
  const groupTarget = context.iommuGroups ? files.link('iommu_group') : null;
  if (groupTarget !== null) {
    const group = parseDecimal(linkName(groupTarget));
    if (group !== undefined && group >= 0) iommuGroup = group;
    else warn(`the iommu_group link does not name a group (${groupTarget})`);
  }

  let physfn: PciAddress | null = null;
  if (reader.exists(prefix + 'physfn')) {
    const target = files.link('physfn');
    if (target !== null) physfn = addressOrWarn(linkName(target), 'physfn', warn);
  }

  let totalVfs: number | null = null;
  let virtfns: PciAddress[] = [];
  const pf = reader.exists(prefix + 'sriov_totalvfs');
  if (pf) {
    totalVfs = files.attribute('sriov_totalvfs', parseDecimal) ?? null;
    virtfns = readVirtfns(context, deviceDir, warn);
  }

  let netdevs: string[] = [];
  if (reader.exists(prefix + 'net')) {
    const names = reader.names(prefix + 'net');
    if (names !== null) netdevs = names.sort();
    else warn(`cannot list net/: ${reader.errno}`);
  }

  const names = context.names;
  return {
    device: {
      address,
      vendor,
      device,
      class: pciClass?.class ?? null,
      progIf: pciClass?.progIf ?? null,
      vendorName: names && vendor ? names.vendorName(vendor) : null,
      deviceName: names && vendor && device ? names.deviceName(vendor, device) : null,
      driver,
      iommuGroup,
      parent: busLink !== null ? parentFromPath(busLink) : null,
      physfn,
      virtfns,
      netdevs,
    },
    totalVfs,
    pf,
    deviceDir,
  };
}

/** The device's directory (the bus link resolved), or null when the function is gone. */
export function locateDevice(context: DeviceReadContext, address: PciAddress): string | null {
  return locate(context, address)?.deviceDir ?? null;
}

/**
 * Reads the ChildFacts of one function in `deviceDir`. `pf` comes from readParentPart in-process;
 * the bounded child, which has not read that part, probes for the SR-IOV files itself.
 */
export function readChildPart(context: DeviceReadContext, address: PciAddress, deviceDir: string, pf?: boolean): ChildFacts {
  const files = new DeviceFiles(context, address, `${deviceDir}/`);
  const { reader } = context;
  const config = reader.binary(files.prefix + 'config', parseConfigSpace);
  if (config === null && reader.errno !== 'ENOENT') files.warn(`cannot read config: ${reader.errno}`);
  const hasSriov = pf ?? reader.exists(files.prefix + 'sriov_totalvfs');
  // A type-0 header holds the very registers the kernel fills these three files from: taking them
  // from the config bytes already read saves three file reads a device. Bridges keep their
  // subsystem ids elsewhere (SSVID capability), so they, and unreadable headers, use the files.
  return {
    subsystemVendor: config?.subsystemVendor ?? files.attribute('subsystem_vendor', parseHexId) ?? null,
    subsystemDevice: config?.subsystemDevice ?? files.attribute('subsystem_device', parseHexId) ?? null,
    revision: config?.revision ?? files.attribute('revision', parseHexByte) ?? null,
    driverOverride: files.attribute('driver_override', parseDriverOverride) ?? null,
    headerType: config?.headerType ?? null,
    flr: config?.flr ?? null,
    numVfs: hasSriov ? (files.attribute('sriov_numvfs', parseDecimal) ?? null) : null,
    numaNode: files.attribute('numa_node', parseNumaNode) ?? null,
    resetMethods: files.attribute('reset_method', parseResetMethods) ?? [],
  };
}

/** One virtfnN link of a PF: N (the VF index the PF's driver and `ip link ... vf N` use) and its VF. */
export interface VirtfnLink {
  readonly index: number;
  readonly address: PciAddress;
}

/**
 * A PF's VFs with their indexes, from its virtfnN links in N order. The index is N itself, never a
 * position: while SR-IOV is being disabled Linux removes virtfn0 first, so VF 1 can be the first
 * link left. [] when the device is not a PF or is gone.
 */
export function readVirtfnLinks(layout: SysfsLayout, pf: PciAddress): VirtfnLink[] {
  const context = new DeviceReadContext(layout, null, () => {});
  return readVirtfnsIn(context, `${context.devicesDir}/${pf}`, () => {});
}

/** The VFs of a PF from its virtfnN links, in N order (a listing: PFs are few). */
function readVirtfns(context: DeviceReadContext, deviceDir: string, warn: (message: string) => void): PciAddress[] {
  return readVirtfnsIn(context, deviceDir, warn).map((link) => link.address);
}

function readVirtfnsIn(context: DeviceReadContext, deviceDir: string, warn: (message: string) => void): VirtfnLink[] {
  const listing = context.reader.names(deviceDir);
  if (listing === null) {
    warn(`cannot list the device directory: ${context.reader.errno}`);
    return [];
  }
  const links = listing
    .filter((name) => /^virtfn[0-9]+$/.test(name))
    .map((name) => ({ name, index: Number.parseInt(name.slice(6), 10) }))
    .sort((a, b) => a.index - b.index);
  const virtfns: VirtfnLink[] = [];
  for (const { name, index } of links) {
    const target = context.reader.link(`${deviceDir}/${name}`);
    if (target === null) warn(`cannot read the ${name} link: ${context.reader.errno}`);
    const vf = target !== null ? addressOrWarn(linkName(target), name, warn) : null;
    if (vf !== null) virtfns.push({ index, address: vf });
  }
  return virtfns;
}

function addressOrWarn(name: string, file: string, warn: (message: string) => void): PciAddress | null {
  const address = canonicalAddress(name);
  if (address === null) {
    warn(`the ${file} link does not name a PCI function (${name})`);
    return null;
  }
  return address;
}

/** "../../../devices/pci0000:00/0000:00:1c.0/0000:01:00.0" -> "0000:00:1c.0" (null on a root bus). */
export function parentFromPath(target: string): PciAddress | null {
  let end = target.length;
  while (end > 0 && target.charCodeAt(end - 1) === 0x2f) end--;
  end = target.lastIndexOf('/', end - 1);
  while (end > 0 && target.charCodeAt(end - 1) === 0x2f) end--;
  if (end <= 0) return null;
  return canonicalAddress(target.slice(target.lastIndexOf('/', end - 1) + 1, end));
}
