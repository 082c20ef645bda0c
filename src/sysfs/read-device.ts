import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import type { PciAddress } from '../core/address.js';
import type { InventoryWarning, PciDevice, SriovInfo } from '../core/device.js';
import {
  canonicalAddress,
  linkName,
  resolveLink,
  parseClass,
  parseDecimal,
  parseVfCount,
  parseDriverOverride,
  parseHexByte,
  parseHexId,
  parseNumaNode,
  parseResetMethods,
  parseUevent,
  type UeventIds,
} from './attributes.js';
import { OpExecutor, ResultList, type Results } from './batch-ops.js';
import { DEVICE_OP_LIST, OP_INDEX } from './device-ops.js';
import { configFromChunks, parseConfigSpace } from './config-space.js';
import { cachedPciIds, type PciNames } from './pci-ids.js';
import type { SysfsLayout } from './paths.js';

export interface ReadDeviceOptions {
  /** Where names come from; null for no names. Default: the system pci.ids (read once). */
  readonly names?: PciNames | null;
  /** Receives the problems met while reading; the device is still returned, with nulls. */
  readonly onWarning?: (warning: InventoryWarning) => void;
}

/** A driver link as the kernel makes it: "../../../bus/pci/drivers/igb". */
const KERNEL_DRIVER_LINK = /^(\.\.\/)+bus\/pci\/drivers\/[^/]+$/;

/** The state of one inventory read (a fresh one per call: nothing about the host outlives it). */
export class DeviceReadContext {
  readonly executor: OpExecutor;
  /** ROOT/sys/bus/pci/devices, joined once. */
  readonly devicesDir: string;
  private readonly driverDirs = new Map<string, boolean>();
  /** driverDirs by the link target itself, for the kernel's links: most functions share a few. */
  private readonly kernelDriverLinks = new Map<string, boolean>();

  /** Interfaces by the PCI function they sit under, from /sys/class/net (read once, on first need). */
  private classNet: Map<string, string[]> | null = null;

  constructor(
    readonly layout: SysfsLayout,
    readonly names: PciNames | null,
    readonly warn: (warning: InventoryWarning) => void,
    /** False when the host has no IOMMU groups: no device then has an iommu_group link to read. */
    readonly iommuGroups: boolean = true,
    executor: OpExecutor = new OpExecutor(),
  ) {
    this.devicesDir = layout.pciDevicesDir;
    this.executor = executor;
  }

  /**
   * The interfaces anywhere under a function's directory (a virtio NIC's are under virtioN/net/,
   * not net/): each /sys/class/net link names its device's path, whose last PCI address is the
   * function. Links only, no attribute: no device lock holds them.
   */
  netdevsUnder(address: PciAddress): readonly string[] {
    if (this.classNet === null) this.classNet = readClassNet(this.layout.resolve('/sys/class/net'));
    return this.classNet.get(address) ?? [];
  }

  /** A function's directory: its bus entry's link resolved, or the entry itself when it is not a link. */
  deviceDir(address: PciAddress, busLink: string | null): string {
    return busLink !== null ? resolveLink(this.devicesDir, busLink, path.resolve) : `${this.devicesDir}/${address}`;
  }

  /**
   * Whether a device's driver link points at an existing driver directory. The kernel's links end
   * in bus/pci/drivers/NAME: those are asked once per driver; anything else is resolved against
   * the device's directory.
   */
  driverExists(target: string, deviceDir: () => string): boolean {
    const known = this.kernelDriverLinks.get(target);
    if (known !== undefined) return known;
    const kernelLink = KERNEL_DRIVER_LINK.test(target);
    const key = kernelLink ? this.layout.driver(linkName(target)) : resolveLink(deviceDir(), target, path.resolve);
    let exists = this.driverDirs.get(key);
    if (exists === undefined) {
      exists = existsSync(key);
      this.driverDirs.set(key, exists);
    }
    if (kernelLink) this.kernelDriverLinks.set(target, exists);
    return exists;
  }
}

/** Reads one function; null when ROOT/sys/bus/pci/devices/ADDRESS does not exist. */
export function readDevice(layout: SysfsLayout, address: PciAddress, options: ReadDeviceOptions = {}): PciDevice | null {
  const names = options.names === undefined ? cachedPciIds() : options.names;
  const context = new DeviceReadContext(layout, names, options.onWarning ?? (() => {}));
  return readDeviceIn(context, address);
}

const NO_UEVENT: UeventIds = {};

/** Reads one function in-process (every op, then what it needs besides); null when it is gone. */
export function readDeviceIn(context: DeviceReadContext, address: PciAddress): PciDevice | null {
  return interpretDevice(context, address, new ResultList(context.executor.run(context.devicesDir, address, DEVICE_OP_LIST)), 0);
}

/** Warns about one function, and reads an attribute file of it in-process. */
class DeviceFiles {
  private dir: string | null = null;

  constructor(
    private readonly context: DeviceReadContext,
    private readonly address: PciAddress,
    /** The bus entry's link target, or null when the entry is not a link. */
    private readonly busLink: string | null,
  ) {}

  /** The device's directory (the bus link resolved), worked out only when something is read in-process. */
  get deviceDir(): string {
    this.dir ??= this.context.deviceDir(this.address, this.busLink);
    return this.dir;
  }

  warn(message: string): void {
    this.context.warn({ address: this.address, message });
  }

  /** undefined: the file does not exist; null: unreadable or malformed (with a warning). */
  parse<T>(file: string, results: Results, i: number, parse: (value: string) => T | undefined): T | null | undefined {
    const errno = results.errno(i);
    if (errno !== null) {
      if (errno === 'ENOENT') return undefined;
      this.warn(`cannot read ${file}: ${errno}`);
      return null;
    }
    const raw = results.text(i);
    const value = parse(raw);
    if (value === undefined) {
      this.warn(`unexpected content in ${file}: ${JSON.stringify(raw.slice(0, 40))}`);
      return null;
    }
    return value;
  }

  /** A file every function has, read here and now: null, with a warning, when it is absent or bad. */
  requiredHere<T>(file: string, parse: (value: string) => T | undefined): T | null {
    const value = this.attribute(file, parse);
    if (value === undefined) this.warn(`no ${file} file`);
    return value ?? null;
  }

  /** An attribute file read here and now (lock-free files only). */
  attribute<T>(file: string, parse: (value: string) => T | undefined): T | null | undefined {
    return this.parse(file, new ResultList([this.context.executor.one(`${this.deviceDir}/${file}`, 'read')]), 0, parse);
  }

  /** The target of a link, or null when it is absent (silently) or unreadable (with a warning). */
  link(file: string, results: Results, i: number): string | null {
    const errno = results.errno(i);
    if (errno === null) return results.link(i);
    if (errno !== 'ENOENT') this.warn(`cannot read the ${file} link: ${errno}`);
    return null;
  }
}

/**
 * Makes a PciDevice of the results of DEVICE_OP_LIST for one function (from either executor),
 * reading in-process only what a few functions need besides; null when the function is gone.
 */
export function interpretDevice(context: DeviceReadContext, address: PciAddress, all: Results, base: number): PciDevice | null {
  const entryErrno = all.errno(base + OP_INDEX.entry);
  if (entryErrno === 'ENOENT') return null;
  const busLink = entryErrno === null ? all.link(base + OP_INDEX.entry) : null;
  const files = new DeviceFiles(context, address, busLink);

  const uevent = all.errno(base + OP_INDEX.uevent) === null ? parseUevent(all.text(base + OP_INDEX.uevent)) : NO_UEVENT;
  const vendor = uevent.vendor ?? files.requiredHere('vendor', parseHexId);
  const device = uevent.device ?? files.requiredHere('device', parseHexId);
  const pciClass = uevent.pciClass ?? files.requiredHere('class', parseClass);

  let driver: string | null = null;
  const driverTarget = files.link('driver', all, base + OP_INDEX.driver);
  if (driverTarget !== null) {
    if (context.driverExists(driverTarget, () => files.deviceDir)) driver = linkName(driverTarget);
    else files.warn(`the driver link points at a missing driver (${driverTarget})`);
  }

  let iommuGroup: number | null = null;
  const groupTarget = context.iommuGroups ? files.link('iommu_group', all, base + OP_INDEX.iommuGroup) : null;
  if (groupTarget !== null) {
    const group = parseDecimal(linkName(groupTarget));
    if (group !== undefined && group >= 0) iommuGroup = group;
    else files.warn(`the iommu_group link does not name a group (${groupTarget})`);
  }

  const physfnTarget = files.link('physfn', all, base + OP_INDEX.physfn);
  const physfn = physfnTarget !== null ? physfnAddress(physfnTarget, (message) => files.warn(message)) : null;

  const pf = all.errno(base + OP_INDEX.totalVfs) !== 'ENOENT';
  let totalVfs: number | null = null;
  let virtfns: PciAddress[] = [];
  if (pf) {
    totalVfs = files.parse('sriov_totalvfs', all, base + OP_INDEX.totalVfs, parseVfCount) ?? null;
    virtfns = readVirtfns(context, files.deviceDir, (message) => files.warn(message));
  }

  let netdevs: string[] = [];
  const netErrno = all.errno(base + OP_INDEX.net);
  if (netErrno === null) netdevs = [...all.names(base + OP_INDEX.net)];
  else if (netErrno !== 'ENOENT') files.warn(`cannot list net/: ${netErrno}`);
  netdevs = [...new Set([...netdevs, ...context.netdevsUnder(address)])].sort();

  const configErrno = all.errno(base + OP_INDEX.config);
  if (configErrno !== null && configErrno !== 'ENOENT') files.warn(`cannot read config: ${configErrno}`);
  const config = configErrno === null ? parseConfigSpace(configFromChunks(all.data(base + OP_INDEX.config))) : null;
  // The subsystem ids come from the uevent file, else from a type-0 header (the registers the kernel
  // fills the files from), else from the files (bridges keep theirs in the SSVID capability).
  const subsystemVendor = uevent.subsystemVendor ?? config?.subsystemVendor ?? files.attribute('subsystem_vendor', parseHexId) ?? null;
  const subsystemDevice = uevent.subsystemDevice ?? config?.subsystemDevice ?? files.attribute('subsystem_device', parseHexId) ?? null;
  const revision = config?.revision ?? files.attribute('revision', parseHexByte) ?? null;
  const driverOverride = files.parse('driver_override', all, base + OP_INDEX.driverOverride, parseDriverOverride) ?? null;
  const numVfs = pf ? (files.parse('sriov_numvfs', all, base + OP_INDEX.numVfs, parseVfCount) ?? null) : null;
  const numaNode = files.parse('numa_node', all, base + OP_INDEX.numaNode, parseNumaNode) ?? null;
  const resetMethods = files.parse('reset_method', all, base + OP_INDEX.resetMethod, parseResetMethods) ?? [];

  const names = context.names;
  const sriov: SriovInfo | null = totalVfs !== null ? { totalVfs, numVfs: numVfs ?? 0 } : null;
  // The contract's field order (it is what `--json` prints).
  return {
    address,
    vendor,
    device,
    subsystemVendor,
    subsystemDevice,
    class: pciClass?.class ?? null,
    progIf: pciClass?.progIf ?? null,
    revision,
    vendorName: names && vendor ? names.vendorName(vendor) : null,
    deviceName: names && vendor && device ? names.deviceName(vendor, device) : null,
    driver,
    driverOverride,
    iommuGroup,
    numaNode,
    headerType: config?.headerType ?? null,
    parent: busLink !== null ? parentFromPath(busLink) : null,
    physfn,
    virtfns,
    sriov,
    netdevs,
    resetMethods,
    flr: config?.flr ?? null,
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
  return readVirtfnLinksIn(context, `${context.devicesDir}/${pf}`, () => {});
}

/** The VFs of a PF from its virtfnN links, in N order (a listing: PFs are few). */
function readVirtfns(context: DeviceReadContext, deviceDir: string, warn: (message: string) => void): PciAddress[] {
  return readVirtfnLinksIn(context, deviceDir, warn).map((link) => link.address);
}

/** readVirtfnLinks within a read (the device's directory given), warning about what cannot be read. */
export function readVirtfnLinksIn(context: DeviceReadContext, deviceDir: string, warn: (message: string) => void): VirtfnLink[] {
  const listing = new ResultList([context.executor.one(deviceDir, 'list')]);
  if (listing.errno(0) !== null) {
    warn(`cannot list the device directory: ${listing.errno(0)}`);
    return [];
  }
  const links = listing
    .names(0)
    .filter((name) => /^virtfn[0-9]+$/.test(name))
    .map((name) => ({ name, index: Number.parseInt(name.slice(6), 10) }))
    .sort((a, b) => a.index - b.index);
  const virtfns: VirtfnLink[] = [];
  for (const { name, index } of links) {
    const link = new ResultList([context.executor.one(`${deviceDir}/${name}`, 'link')]);
    const target = link.errno(0) === null ? link.link(0) : null;
    if (target === null) warn(`cannot read the ${name} link: ${link.errno(0)}`);
    const vf = target !== null ? addressOrWarn(linkName(target), name, warn) : null;
    if (vf !== null) virtfns.push({ index, address: vf });
  }
  return virtfns;
}

/** The PF a VF's physfn link points at; null, with a warning, when it does not name a function. */
export function physfnAddress(target: string, warn: (message: string) => void): PciAddress | null {
  return addressOrWarn(linkName(target), 'physfn', warn);
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

const PCI_FUNCTION = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

/** /sys/class/net: each interface under the PCI function its link's path passes through last (virtual ones under none). */
function readClassNet(dir: string): Map<string, string[]> {
  const byFunction = new Map<string, string[]>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return byFunction;
  }
  for (const name of names) {
    let target: string;
    try {
      target = readlinkSync(path.join(dir, name));
    } catch {
      continue;
    }
    const parts = target.split('/');
    const owner = parts.slice(0, parts.lastIndexOf('net')).reverse().find((part) => PCI_FUNCTION.test(part));
    if (owner === undefined) continue;
    byFunction.set(owner, [...(byFunction.get(owner) ?? []), name]);
  }
  return byFunction;
}
