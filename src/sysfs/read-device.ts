import { existsSync } from 'node:fs';
import path from 'node:path';
import { tryParseAddress, type PciAddress } from '../core/address.js';
import type { InventoryWarning, PciDevice, SriovInfo } from '../core/device.js';
import {
  linkName,
  parseClass,
  parseDecimal,
  parseDriverOverride,
  parseHexByte,
  parseHexId,
  parseNumaNode,
  parseResetMethods,
} from './attributes.js';
import { parseConfigSpace, type ConfigFacts } from './config-space.js';
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
  private readonly driverDirs = new Map<string, boolean>();

  constructor(
    readonly layout: SysfsLayout,
    readonly names: PciNames | null,
    readonly warn: (warning: InventoryWarning) => void,
  ) {}

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

/** Per-file parse results collected from one directory listing. */
interface Draft {
  readonly deviceDir: string;
  vendor: string | null;
  device: string | null;
  subsystemVendor: string | null;
  subsystemDevice: string | null;
  class: string | null;
  progIf: string | null;
  revision: string | null;
  driver: string | null;
  driverOverride: string | null;
  iommuGroup: number | null;
  numaNode: number | null;
  physfn: PciAddress | null;
  totalVfs: number | null;
  numVfs: number | null;
  resetMethods: string[];
  netdevs: string[];
  config: ConfigFacts | null;
  virtfnLinks: Array<{ index: number; name: string }>;
}

export function readDeviceIn(context: DeviceReadContext, address: PciAddress): PciDevice | null {
  const { reader, layout } = context;
  const busEntry = layout.device(address);
  const warn = (message: string): void => context.warn({ address, message });

  // bus/pci/devices/ADDR is a link into the device hierarchy; its target gives the parent bridge.
  const busLink = reader.link(busEntry);
  if (!busLink.ok && busLink.errno === 'ENOENT') return null;
  const deviceDir = busLink.ok ? path.resolve(path.dirname(busEntry), busLink.value) : busEntry;
  const parent = busLink.ok ? parentFromPath(busLink.value) : null;
  const draft = emptyDraft(deviceDir);

  const listing = reader.names(deviceDir);
  if (!listing.ok) {
    warn(`cannot read the device directory: ${listing.errno}`);
    return finish(context, address, parent, draft);
  }

  const prefix = `${deviceDir}/`;
  const parsed = <T>(file: string, parse: (value: string) => T | undefined): T | null => {
    const raw = reader.text(prefix + file);
    if (!raw.ok) {
      warn(`cannot read ${file}: ${raw.errno}`);
      return null;
    }
    const value = parse(raw.value);
    if (value === undefined) {
      warn(`unexpected content in ${file}: ${JSON.stringify(raw.value.slice(0, 40))}`);
      return null;
    }
    return value;
  };
  const link = (file: string): string | null => {
    const result = reader.link(prefix + file);
    if (result.ok) return result.value;
    warn(`cannot read the ${file} link: ${result.errno}`);
    return null;
  };

  let seen = 0;
  for (const name of listing.value) {
    switch (name) {
      case 'vendor':
        draft.vendor = parsed(name, parseHexId);
        seen |= SEEN_VENDOR;
        break;
      case 'device':
        draft.device = parsed(name, parseHexId);
        seen |= SEEN_DEVICE;
        break;
      case 'class': {
        const value = parsed(name, parseClass);
        draft.class = value?.class ?? null;
        draft.progIf = value?.progIf ?? null;
        seen |= SEEN_CLASS;
        break;
      }
      case 'subsystem_vendor':
        seen |= SEEN_SUBSYSTEM_VENDOR;
        break;
      case 'subsystem_device':
        seen |= SEEN_SUBSYSTEM_DEVICE;
        break;
      case 'revision':
        seen |= SEEN_REVISION;
        break;
      case 'driver_override':
        draft.driverOverride = parsed(name, parseDriverOverride);
        break;
      case 'numa_node':
        draft.numaNode = parsed(name, parseNumaNode);
        break;
      case 'reset_method':
        draft.resetMethods = parsed(name, parseResetMethods) ?? [];
        break;
      case 'sriov_totalvfs':
        draft.totalVfs = parsed(name, parseDecimal);
        break;
      case 'sriov_numvfs':
        draft.numVfs = parsed(name, parseDecimal);
        break;
      case 'config': {
        const result = reader.binary(prefix + name, parseConfigSpace);
        if (result.ok) draft.config = result.value;
        else warn(`cannot read config: ${result.errno}`);
        break;
      }
      case 'driver': {
        const target = link(name);
        if (target === null) break;
        if (context.driverExists(path.resolve(deviceDir, target))) draft.driver = linkName(target);
        else warn(`the driver link points at a missing driver (${target})`);
        break;
      }
      case 'iommu_group': {
        const target = link(name);
        const group = target === null ? undefined : parseDecimal(linkName(target));
        if (group !== undefined && group >= 0) draft.iommuGroup = group;
        else if (target !== null) warn(`the iommu_group link does not name a group (${target})`);
        break;
      }
      case 'physfn': {
        const target = link(name);
        if (target !== null) draft.physfn = addressOrWarn(linkName(target), name, warn);
        break;
      }
      case 'net': {
        const names = reader.names(prefix + name);
        if (names.ok) draft.netdevs = names.value.sort();
        else warn(`cannot list net/: ${names.errno}`);
        break;
      }
      default:
        if (name.startsWith('virtfn')) {
          const index = parseDecimal(name.slice(6));
          if (index !== undefined) draft.virtfnLinks.push({ index, name });
        }
    }
  }
  if ((seen & SEEN_VENDOR) === 0) warn('no vendor file');
  if ((seen & SEEN_DEVICE) === 0) warn('no device file');
  if ((seen & SEEN_CLASS) === 0) warn('no class file');
  // A type-0 header holds the very registers the kernel fills these three files from: taking them
  // from the config bytes already read saves three file reads a device. Bridges keep their
  // subsystem ids elsewhere (SSVID capability), so they, and unreadable headers, use the files.
  const config = draft.config;
  draft.revision = config?.revision ?? ((seen & SEEN_REVISION) !== 0 ? parsed('revision', parseHexByte) : null);
  draft.subsystemVendor =
    config?.subsystemVendor ?? ((seen & SEEN_SUBSYSTEM_VENDOR) !== 0 ? parsed('subsystem_vendor', parseHexId) : null);
  draft.subsystemDevice =
    config?.subsystemDevice ?? ((seen & SEEN_SUBSYSTEM_DEVICE) !== 0 ? parsed('subsystem_device', parseHexId) : null);
  return finish(context, address, parent, draft);
}

const SEEN_VENDOR = 1;
const SEEN_DEVICE = 2;
const SEEN_CLASS = 4;
const SEEN_REVISION = 8;
const SEEN_SUBSYSTEM_VENDOR = 16;
const SEEN_SUBSYSTEM_DEVICE = 32;

function emptyDraft(deviceDir: string): Draft {
  return {
    deviceDir,
    vendor: null,
    device: null,
    subsystemVendor: null,
    subsystemDevice: null,
    class: null,
    progIf: null,
    revision: null,
    driver: null,
    driverOverride: null,
    iommuGroup: null,
    numaNode: null,
    physfn: null,
    totalVfs: null,
    numVfs: null,
    resetMethods: [],
    netdevs: [],
    config: null,
    virtfnLinks: [],
  };
}

function finish(context: DeviceReadContext, address: PciAddress, parent: PciAddress | null, draft: Draft): PciDevice {
  const warn = (message: string): void => context.warn({ address, message });
  const virtfns: PciAddress[] = [];
  for (const { name } of draft.virtfnLinks.sort((a, b) => a.index - b.index)) {
    const result = context.reader.link(`${draft.deviceDir}/${name}`);
    const vf = result.ok ? addressOrWarn(linkName(result.value), name, warn) : null;
    if (!result.ok) warn(`cannot read the ${name} link: ${result.errno}`);
    if (vf !== null) virtfns.push(vf);
  }
  const sriov: SriovInfo | null =
    draft.totalVfs !== null ? { totalVfs: draft.totalVfs, numVfs: draft.numVfs ?? 0 } : null;
  const facts = draft.config;
  const names = context.names;
  return {
    address,
    vendor: draft.vendor,
    device: draft.device,
    subsystemVendor: draft.subsystemVendor,
    subsystemDevice: draft.subsystemDevice,
    class: draft.class,
    progIf: draft.progIf,
    revision: draft.revision,
    vendorName: names && draft.vendor ? names.vendorName(draft.vendor) : null,
    deviceName: names && draft.vendor && draft.device ? names.deviceName(draft.vendor, draft.device) : null,
    driver: draft.driver,
    driverOverride: draft.driverOverride,
    iommuGroup: draft.iommuGroup,
    numaNode: draft.numaNode,
    headerType: facts?.headerType ?? null,
    parent,
    physfn: draft.physfn,
    virtfns,
    sriov,
    netdevs: draft.netdevs,
    resetMethods: draft.resetMethods,
    flr: facts?.flr ?? null,
  };
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
