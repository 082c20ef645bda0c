import fs from 'node:fs';
import path from 'node:path';
import type { PcieType } from './config-space.js';
import {
  idMatches,
  normHex,
  writeHostModel,
  makeHostModel,
  type DeviceIds,
  type DriverId,
  type KnownDriver,
  type VfTemplate,
} from './host-model.js';
import { SimState } from './state-db.js';
import { isBridge, parseHostSpec, SpecError, type DriverIdSpec, type EndpointSpec, type HostSpec, type MdevParentSpec, type NodeSpec, type VirtualMdevParentSpec } from './spec.js';
import { hex, linkVirtfn, writeDriverDir, writeFunction, writeSkeleton, type SimFunction } from './tree-writer.js';
import { vfAddress, vfFunction, vfNetdevName } from './vf.js';
import { writeBelow, writeMdevs, type BelowSpec } from './nonpci-tree.js';

/** A function of the spec, placed: its address, its parent and what decides its IOMMU group. */
interface Placed {
  readonly address: string;
  readonly devPath: string;
  readonly node: NodeSpec;
  readonly bus: number;
  readonly slot: number;
  /** Bridges from the nearest to the root bus. */
  readonly ancestors: readonly Placed[];
  readonly numaNode: number;
  /** Where the spec declares it: "roots.0.devices.2.children.0". */
  readonly field: string;
  subordinate: number;
}

/** Functions a spec may make in all (its own and the VFs it creates): bounds the tree it writes. */
export const MAX_SPEC_FUNCTIONS = 65_536;

const num = (value: string): number => Number.parseInt(value.replace(/^0x/i, ''), 16);

function normId(id: DriverIdSpec): DriverId {
  const out: { -readonly [K in keyof DriverId]: DriverId[K] } = {};
  if (id.vendor !== undefined) out.vendor = normHex(id.vendor, 4);
  if (id.device !== undefined) out.device = normHex(id.device, 4);
  if (id.subsystemVendor !== undefined) out.subsystemVendor = normHex(id.subsystemVendor, 4);
  if (id.subsystemDevice !== undefined) out.subsystemDevice = normHex(id.subsystemDevice, 4);
  if (id.class !== undefined) out.class = normHex(id.class, 6);
  if (id.classMask !== undefined) out.classMask = normHex(id.classMask, 6);
  return out;
}

function pcieTypeOf(node: NodeSpec): PcieType | null {
  if (isBridge(node)) return node.port ?? 'root-port';
  return node.pcie === false ? null : 'endpoint';
}

function classOf(node: NodeSpec): number {
  return isBridge(node) ? 0x060400 : num(node.class);
}

function idsOf(node: NodeSpec): DeviceIds {
  return {
    vendor: normHex(node.vendor, 4),
    device: normHex(node.device, 4),
    subsystemVendor: normHex(node.subsystemVendor ?? (isBridge(node) ? '0000' : node.vendor), 4),
    subsystemDevice: normHex(node.subsystemDevice ?? '0000', 4),
    class: hex(classOf(node), 6),
  };
}

function place(spec: HostSpec): Placed[] {
  const placed: Placed[] = [];
  const seen = new Set<string>();
  const secondaries = new Map<string, string>();
  const walk = (nodes: readonly NodeSpec[], domain: number, bus: number, dirPath: string, ancestors: Placed[], numa: number, at: string): number => {
    let maxBus = bus;
    for (const [index, node] of nodes.entries()) {
      const field = `${at}.${index}`;
      const [slotText, fnText] = node.at.split('.') as [string, string];
      const slot = Number.parseInt(slotText, 16);
      if (slot > 0x1f) throw new SpecError(`${field}.at`, `slot ${slotText} is above 1f`);
      const address = `${hex(domain, 4)}:${hex(bus, 2)}:${hex(slot, 2)}.${fnText}`;
      if (seen.has(address)) throw new SpecError(`${field}.at`, `two functions at ${address}`);
      seen.add(address);
      const here: Placed = {
        address,
        devPath: `${dirPath}/${address}`,
        node,
        bus,
        slot,
        ancestors,
        numaNode: node.numaNode ?? numa,
        field,
        subordinate: 0,
      };
      placed.push(here);
      if (isBridge(node)) {
        if (node.secondaryBus <= bus) throw new SpecError(`${field}.secondaryBus`, `bridge ${address}: the secondary bus must be above ${hex(bus, 2)}`);
        const busKey = `${hex(domain, 4)}:${hex(node.secondaryBus, 2)}`;
        const other = secondaries.get(busKey);
        if (other !== undefined) throw new SpecError(`${field}.secondaryBus`, `bridge ${address}: bus ${busKey} is already the secondary bus of ${other}`);
        secondaries.set(busKey, address);
        here.subordinate = walk(node.children, domain, node.secondaryBus, here.devPath, [here, ...ancestors], here.numaNode, `${field}.children`);
        maxBus = Math.max(maxBus, here.subordinate);
      }
    }
    return maxBus;
  };
  for (const [index, root] of spec.roots.entries()) {
    const domain = root.domain ?? 0;
    const bus = root.bus ?? 0;
    const busKey = `${hex(domain, 4)}:${hex(bus, 2)}`;
    if (secondaries.has(busKey)) throw new SpecError(`roots.${index}.bus`, `bus ${busKey} is already ${secondaries.get(busKey)}`);
    secondaries.set(busKey, `root bus ${busKey}`);
    walk(root.devices, domain, bus, `sys/devices/pci${busKey}`, [], root.numaNode ?? -1, `roots.${index}.devices`);
  }
  return placed;
}

/**
 * What only the whole spec shows, checked before anything is written: addresses and buses used
 * twice (place), SR-IOV counts, VFs whose routing IDs pass bus ff or land on another function,
 * and the size of the tree. Throws a SpecError naming the field.
 */
function checkSpec(spec: HostSpec): Placed[] {
  const placed = place(spec);
  const taken = new Set(placed.map((p) => p.address));
  let functions = placed.length;
  for (const p of placed) {
    const node = p.node;
    if (isBridge(node) || node.sriov === undefined) continue;
    const s = node.sriov;
    const numVfs = s.numVfs ?? 0;
    if (numVfs > s.totalVfs) throw new SpecError(`${p.field}.sriov.numVfs`, `${numVfs} is above totalVfs (${s.totalVfs})`);
    const fn = Number(p.address.slice(-1));
    const routing = (p.bus << 8) | (p.slot << 3) | fn;
    const last = routing + s.offset + s.stride * (s.totalVfs - 1);
    if (last > 0xffff) throw new SpecError(`${p.field}.sriov.totalVfs`, `VF ${s.totalVfs - 1} of ${p.address} would be beyond bus ff (offset ${s.offset}, stride ${s.stride})`);
    for (let i = 0; i < numVfs; i++) {
      const address = vfAddress(p.address, s.offset, s.stride, i);
      if (taken.has(address)) throw new SpecError(`${p.field}.sriov.numVfs`, `VF ${i} of ${p.address} would be at ${address}, where there is already a function`);
      taken.add(address);
    }
    functions += numVfs;
    if (functions > MAX_SPEC_FUNCTIONS) throw new SpecError(`${p.field}.sriov.numVfs`, `the host would have more than ${MAX_SPEC_FUNCTIONS} functions`);
  }
  if (functions > MAX_SPEC_FUNCTIONS) throw new SpecError('roots', `the host would have more than ${MAX_SPEC_FUNCTIONS} functions`);
  checkNonPci(placed, spec.virtualMdevParents ?? []);
  return placed;
}

/**
 * An mdev parent's types and build-time mdevs: each of a type it offers with an instance left (of the type,
 * or of the shared pool, whose types must offer capacity / cost at first), each UUID once on the host.
 */
function checkMdevParent(field: string, name: string, parent: MdevParentSpec, uuids: Set<string>): void {
  const pool = parent.capacity;
  if (pool !== undefined) {
    for (const [t, type] of parent.types.entries()) {
      const offered = Math.floor(pool / (type.cost ?? 1));
      if (type.availableInstances !== offered) throw new SpecError(`${field}.types.${t}.availableInstances`, `${type.id} offers ${offered} of the parent's capacity ${pool} at cost ${type.cost ?? 1}`);
    }
  }
  const types = new Map(parent.types.map((t) => [t.id, t]));
  const left = new Map(parent.types.map((t) => [t.id, t.availableInstances]));
  let pooled = pool ?? 0;
  for (const [d, device] of (parent.devices ?? []).entries()) {
    const at = `${field}.devices.${d}`;
    const type = types.get(device.type);
    if (type === undefined) throw new SpecError(`${at}.type`, `${name} offers no mdev type ${device.type}`);
    const cost = type.cost ?? 1;
    if (pool === undefined ? left.get(device.type)! < 1 : pooled < cost) throw new SpecError(`${at}.type`, `no instance of ${device.type} is left on ${name}`);
    left.set(device.type, left.get(device.type)! - 1);
    pooled -= cost;
    if (uuids.has(device.uuid)) throw new SpecError(`${at}.uuid`, `mdev ${device.uuid} is declared twice`);
    uuids.add(device.uuid);
  }
}

/** USB ports below a hub that is there, bus and sg numbers used once, mdevs of a type their parent offers. */
function checkNonPci(placed: readonly Placed[], virtualMdev: readonly VirtualMdevParentSpec[]): void {
  const buses = new Set<number>();
  const scsiHosts = new Set<number>();
  const sgs = new Set<number>();
  const nvmes = new Set<number>();
  const uuids = new Set<string>();
  for (const p of placed) {
    const node = p.node;
    if (isBridge(node)) continue;
    const shows = ['usbBuses', 'mdev', 'nvme', 'scsi'].filter((field) => node[field as keyof EndpointSpec] !== undefined);
    if (node.driver === null && shows.length > 0) throw new SpecError(`${p.field}.driver`, `${p.address} has ${shows.join(', ')}, which only its driver shows: give it one`);
    for (const [b, bus] of (node.usbBuses ?? []).entries()) {
      const field = `${p.field}.usbBuses.${b}`;
      if (buses.has(bus.bus)) throw new SpecError(`${field}.bus`, `USB bus ${bus.bus} is declared twice`);
      buses.add(bus.bus);
      const ports = new Set(bus.devices.map((d) => d.port));
      for (const [d, device] of bus.devices.entries()) {
        const parent = device.port.includes('.') ? device.port.slice(0, device.port.lastIndexOf('.')) : null;
        if (parent !== null && !ports.has(parent)) throw new SpecError(`${field}.devices.${d}.port`, `${bus.bus}-${device.port} needs a hub at ${bus.bus}-${parent}`);
        if (bus.devices.findIndex((other) => other.port === device.port) !== d) throw new SpecError(`${field}.devices.${d}.port`, `two devices at ${bus.bus}-${device.port}`);
      }
    }
    if (node.mdev !== undefined) checkMdevParent(`${p.field}.mdev`, p.address, node.mdev, uuids);
    if (node.nvme !== undefined) {
      if (nvmes.has(node.nvme.instance)) throw new SpecError(`${p.field}.nvme.instance`, `nvme${node.nvme.instance} is declared twice`);
      nvmes.add(node.nvme.instance);
      const nsids = node.nvme.namespaces.map((ns) => ns.nsid);
      if (new Set(nsids).size !== nsids.length) throw new SpecError(`${p.field}.nvme.namespaces`, 'a namespace ID is used twice');
    }
    if (node.scsi !== undefined) {
      if (scsiHosts.has(node.scsi.host)) throw new SpecError(`${p.field}.scsi.host`, `SCSI host ${node.scsi.host} is declared twice`);
      scsiHosts.add(node.scsi.host);
      const addresses = new Set<string>();
      for (const [d, device] of node.scsi.devices.entries()) {
        const at = `${device.channel}:${device.target}:${device.lun}`;
        if (addresses.has(at)) throw new SpecError(`${p.field}.scsi.devices.${d}`, `two devices at ${node.scsi.host}:${at}`);
        addresses.add(at);
        if (sgs.has(device.sg)) throw new SpecError(`${p.field}.scsi.devices.${d}.sg`, `/dev/sg${device.sg} is declared twice`);
        sgs.add(device.sg);
      }
    }
  }
  const names = new Set<string>();
  for (const [v, parent] of virtualMdev.entries()) {
    if (names.has(parent.name)) throw new SpecError(`virtualMdevParents.${v}.name`, `mdev parent ${parent.name} is declared twice`);
    names.add(parent.name);
    checkMdevParent(`virtualMdevParents.${v}`, parent.name, parent, uuids);
  }
}

/**
 * IOMMU groups as Linux's pci_device_group derives them, simplified: a function behind a bridge
 * without ACS is not isolated from anything else below that bridge, so everything below the
 * highest such bridge (and the bridge) shares one group; otherwise functions of one slot share a
 * group unless they declare ACS; otherwise each function has its own. Explicit numbers win.
 */
function assignGroups(placed: readonly Placed[]): Map<string, number> {
  const slotFunctions = new Map<string, Placed[]>();
  for (const p of placed) {
    const key = `${p.address.slice(0, 10)}`;
    const list = slotFunctions.get(key);
    if (list) list.push(p);
    else slotFunctions.set(key, [p]);
  }
  const anchorOf = (p: Placed): string => {
    const open = [...p.ancestors].reverse().find((a) => a.node.acs === false);
    if (open) return `bridge:${open.address}`;
    const siblings = slotFunctions.get(p.address.slice(0, 10)) ?? [];
    if (!isBridge(p.node) && siblings.length > 1 && siblings.some((s) => s.node.acs !== true)) {
      return `slot:${p.address.slice(0, 10)}`;
    }
    if (isBridge(p.node) && p.node.acs === false) return `bridge:${p.address}`;
    return `fn:${p.address}`;
  };
  const explicit = new Set(placed.flatMap((p) => (p.node.iommuGroup === undefined ? [] : [p.node.iommuGroup])));
  const byAnchor = new Map<string, number>();
  const groups = new Map<string, number>();
  let next = 0;
  for (const p of placed) {
    if (p.node.iommuGroup !== undefined) {
      groups.set(p.address, p.node.iommuGroup);
      continue;
    }
    const anchor = anchorOf(p);
    let group = byAnchor.get(anchor);
    if (group === undefined) {
      while (explicit.has(next)) next++;
      group = next++;
      byAnchor.set(anchor, group);
    }
    groups.set(p.address, group);
  }
  return groups;
}

function defaultResetMethods(node: EndpointSpec, behindBridge: boolean): string[] {
  if (node.resetMethods) return [...node.resetMethods];
  return [...(node.flr ? ['flr'] : []), ...(node.pcie === false ? [] : ['pm']), ...(behindBridge ? ['bus'] : [])];
}

const DEFAULT_KERNEL_RELEASE = '6.1.0-hostdev-sim';

/** A `vfio_pci:` alias as depmod writes it from an override-only ID table entry. */
function vfioAliasLine(id: DriverIdSpec, module: string): string {
  const wide = (value: string | undefined): string => (value === undefined ? '*' : normHex(value, 8).toUpperCase());
  const pciClass = id.class !== undefined ? normHex(id.class, 6).toUpperCase() : null;
  const mask = id.classMask !== undefined ? normHex(id.classMask, 6).toLowerCase() : 'ffffff';
  const classByte = (k: number): string => (pciClass !== null && mask.slice(2 * k, 2 * k + 2) === 'ff' ? pciClass.slice(2 * k, 2 * k + 2) : '*');
  return `alias vfio_pci:v${wide(id.vendor)}d${wide(id.device)}sv${wide(id.subsystemVendor)}sd${wide(id.subsystemDevice)}bc${classByte(0)}sc${classByte(1)}i${classByte(2)} ${module}`;
}

/** ROOT/proc/sys/kernel/osrelease and ROOT/lib/modules/RELEASE/modules.alias, when the spec has a kernel. */
function writeModulesAlias(root: string, spec: HostSpec): void {
  const variants = Object.entries(spec.drivers ?? {}).filter(([, d]) => (d.vfioAliases ?? []).length > 0);
  const release = spec.kernelRelease ?? (variants.length > 0 ? DEFAULT_KERNEL_RELEASE : null);
  if (release === null) return;
  fs.mkdirSync(path.join(root, 'proc/sys/kernel'), { recursive: true });
  fs.writeFileSync(path.join(root, 'proc/sys/kernel/osrelease'), `${release}\n`);
  // depmod sorts by module; the catch-all is vfio_pci's own line.
  const lines = variants.flatMap(([name, d]) => (d.vfioAliases ?? []).map((id) => vfioAliasLine(id, name.replace(/-/g, '_'))));
  lines.push('alias vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci');
  const dir = path.join(root, 'lib/modules', release);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'modules.alias'), `# Aliases extracted from modules themselves.\n${lines.join('\n')}\n`);
}

/** Drivers of the spec plus any driver a device names, each device's ID added to its driver's table. */
function resolveDrivers(spec: HostSpec, placed: readonly Placed[]): Map<string, { ids: DriverId[]; loaded: boolean }> {
  const drivers = new Map<string, { ids: DriverId[]; loaded: boolean }>();
  for (const [name, d] of Object.entries(spec.drivers ?? {})) {
    drivers.set(name, { ids: (d.ids ?? []).map(normId), loaded: d.loaded ?? true });
  }
  const ensure = (name: string) => {
    let d = drivers.get(name);
    if (!d) {
      d = { ids: [], loaded: true };
      drivers.set(name, d);
    }
    return d;
  };
  const claim = (name: string, ids: DeviceIds) => {
    const d = ensure(name);
    if (!d.ids.some((id) => idMatches(id, ids))) d.ids.push({ vendor: ids.vendor, device: ids.device });
  };
  for (const p of placed) {
    const node = p.node;
    if (isBridge(node) && node.driver === undefined && (node.port ?? 'root-port') !== 'pci-bridge') {
      const d = ensure('pcieport');
      if (d.ids.length === 0) d.ids.push({ class: '060400', classMask: 'ffffff' });
    }
    if (typeof node.driver === 'string') claim(node.driver, idsOf(node));
    if (!isBridge(node) && node.sriov?.vfDriver) {
      const ids = idsOf(node);
      claim(node.sriov.vfDriver, { ...ids, device: normHex(node.sriov.vfDevice, 4) });
    }
  }
  if (!drivers.has('vfio-pci')) drivers.set('vfio-pci', { ids: [], loaded: false });
  return drivers;
}

/** The first loaded driver whose table matches, in registration order (what probe picks). */
function probeDriver(drivers: ReadonlyMap<string, { ids: readonly DriverId[]; loaded: boolean }>, ids: DeviceIds): string | null {
  for (const [name, d] of drivers) {
    if (d.loaded && d.ids.some((id) => idMatches(id, ids))) return name;
  }
  return null;
}

function toFunction(p: Placed, slotCounts: ReadonlyMap<string, number>, group: number | null, driver: string | null): SimFunction {
  const node = p.node;
  const ids = idsOf(node);
  const multifunction = (slotCounts.get(p.address.slice(0, 10)) ?? 0) > 1;
  const base = {
    address: p.address,
    devPath: p.devPath,
    vendor: num(ids.vendor),
    device: num(ids.device),
    subsystemVendor: num(ids.subsystemVendor),
    subsystemDevice: num(ids.subsystemDevice),
    classCode: classOf(node),
    revision: num(node.revision ?? '00'),
    multifunction,
    pcie: pcieTypeOf(node),
    numaNode: p.numaNode,
    driver,
    iommuGroup: group,
  };
  if (isBridge(node)) {
    return {
      ...base,
      bridge: true,
      flr: false,
      acs: node.acs !== false && node.port !== 'upstream',
      buses: { primary: p.bus, secondary: node.secondaryBus, subordinate: p.subordinate },
      resetMethods: [],
      netdevs: [],
    };
  }
  const sriov = node.sriov;
  return {
    ...base,
    bridge: false,
    flr: node.flr ?? false,
    ...(node.serialNumber === undefined ? {} : { serialNumber: node.serialNumber }),
    ...(node.vpd === undefined ? {} : { vpd: node.vpd }),
    acs: multifunction && node.acs === true,
    resetMethods: defaultResetMethods(node, p.ancestors.length > 0),
    netdevs: node.netdevs ?? [],
    ...(sriov
      ? {
          sriov: {
            totalVfs: sriov.totalVfs,
            numVfs: sriov.numVfs ?? 0,
            offset: sriov.offset,
            stride: sriov.stride,
            vfDevice: num(sriov.vfDevice),
            autoprobe: sriov.autoprobe ?? true,
          },
        }
      : {}),
  };
}

/**
 * Writes a tree shaped like Linux sysfs for `spec` under `root` (which stands for "/"), plus
 * ROOT/.hostdev-sim/host.json for the simulated kernel. `root` must be empty or absent. The spec
 * is checked whole first (SpecError naming the field); the tree is written into a temporary
 * directory beside `root` and renamed into place, so a failure leaves no half-built host.
 */
export function buildHost(root: string, spec: HostSpec): void {
  const checked = parseHostSpec(spec);
  const placed = checkSpec(checked);
  const target = path.resolve(root);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  if (fs.existsSync(target) && fs.readdirSync(target).length > 0) throw new Error(`${root} is not empty`);
  const building = fs.mkdtempSync(path.join(path.dirname(target), `.${path.basename(target)}.building-`));
  fs.chmodSync(building, 0o755);
  try {
    writeHost(building, checked, placed);
    // rename(2) replaces an empty directory
    fs.renameSync(building, target);
  } catch (error) {
    fs.rmSync(building, { recursive: true, force: true });
    throw error;
  }
}

function writeHost(root: string, spec: HostSpec, placed: Placed[]): void {
  const iommu = spec.iommu ?? true;
  const groups = iommu ? assignGroups(placed) : new Map<string, number>();
  const drivers = resolveDrivers(spec, placed);
  writeSkeleton(root);
  for (const [name, d] of drivers) if (d.loaded) writeDriverDir(root, name);
  if (drivers.get('vfio-pci')?.loaded) {
    fs.mkdirSync(path.join(root, 'dev/vfio'), { recursive: true });
    fs.writeFileSync(path.join(root, 'dev/vfio/vfio'), '');
  }

  const slotCounts = new Map<string, number>();
  for (const p of placed) slotCounts.set(p.address.slice(0, 10), (slotCounts.get(p.address.slice(0, 10)) ?? 0) + 1);
  const netdevs: Record<string, { driver: string; names: string[] }> = {};
  const vfTemplates: Record<string, VfTemplate> = {};
  const usedGroups = new Set(groups.values());
  let nextGroup = 0;
  const allocGroup = (): number => {
    while (usedGroups.has(nextGroup)) nextGroup++;
    usedGroups.add(nextGroup);
    return nextGroup;
  };
  for (const p of placed) {
    const node = p.node;
    const driver = node.driver === undefined ? probeDriver(drivers, idsOf(node)) : node.driver;
    const fn = toFunction(p, slotCounts, groups.get(p.address) ?? null, driver);
    writeFunction(root, fn);
    for (const file of node.omitFiles ?? []) fs.rmSync(path.join(root, p.devPath, file), { force: true });
    if (driver !== null && fn.netdevs.length > 0) netdevs[p.address] = { driver, names: [...fn.netdevs] };
    if (isBridge(node) || !node.sriov || !fn.sriov) continue;
    const s = node.sriov;
    const template: VfTemplate = {
      numaNode: p.numaNode,
      flr: true,
      resetMethods: ['flr'],
      netdev: s.vfNetdev ?? null,
      pfNetdev: node.netdevs?.[0] ?? null,
    };
    vfTemplates[p.address] = template;
    const pfView = { ...fn, offset: fn.sriov.offset, stride: fn.sriov.stride, vfDevice: fn.sriov.vfDevice };
    for (let i = 0; i < fn.sriov.numVfs; i++) {
      const vfIds = { ...idsOf(node), device: normHex(s.vfDevice, 4) };
      const claimedBy = probeDriver(drivers, vfIds);
      const vfDriver = fn.sriov.autoprobe ? claimedBy : null;
      const names = vfNetdevName(template.netdev, template.pfNetdev, i);
      const vf = vfFunction(pfView, i, {
        numaNode: template.numaNode,
        flr: template.flr,
        resetMethods: template.resetMethods,
        driver: vfDriver,
        iommuGroup: iommu ? allocGroup() : null,
        netdevs: names,
      });
      writeFunction(root, vf);
      linkVirtfn(root, p.devPath, vf.devPath, i);
      if (claimedBy !== null && names.length > 0) netdevs[vf.address] = { driver: claimedBy, names };
    }
  }

  // What hangs below the functions; mdevs get IOMMU groups after every PCI function has its own.
  const below: Record<string, BelowSpec> = {};
  for (const p of placed) {
    const node = p.node;
    if (isBridge(node) || (node.usbBuses === undefined && node.nvme === undefined && node.scsi === undefined && node.mdev === undefined)) continue;
    // checkNonPci refused a function with things below it and no driver
    const driver = (node.driver === undefined ? probeDriver(drivers, idsOf(node)) : node.driver) as string;
    const { devices: mdevs, ...mdevTypes } = node.mdev ?? { devices: [] };
    below[p.address] = {
      driver,
      ...(node.usbBuses === undefined ? {} : { usbBuses: node.usbBuses }),
      ...(node.nvme === undefined ? {} : { nvme: node.nvme }),
      ...(node.scsi === undefined ? {} : { scsi: node.scsi }),
      ...(node.mdev === undefined ? {} : { mdev: mdevTypes as Omit<MdevParentSpec, 'devices'> }),
    };
    writeBelow(root, p.devPath, p.address, below[p.address]!);
    if (node.mdev !== undefined) writeMdevs(root, p.devPath, p.address, { ...node.mdev, devices: mdevs ?? [] }, iommu ? allocGroup : () => null);
  }
  // mdev parents of modules (mtty): a virtual device each, as their module's init registers it
  const virtualMdev: Record<string, Omit<MdevParentSpec, 'devices'>> = {};
  for (const { name, class: cls, devices, ...types } of spec.virtualMdevParents ?? []) {
    const rel = `sys/devices/virtual/${cls}/${name}`;
    writeBelow(root, rel, name, { driver: types.driver, mdev: types });
    writeMdevs(root, rel, name, { ...types, devices: devices ?? [] }, iommu ? allocGroup : () => null);
    virtualMdev[name] = types;
  }

  writeModulesAlias(root, spec);

  const known: Record<string, KnownDriver> = {};
  for (const [name, d] of drivers) known[name] = { ids: d.ids, loaded: d.loaded };
  writeHostModel(root, makeHostModel({ iommu, drivers: known, netdevs, vfTemplates, below, virtualMdev }));
  new SimState(root).close(); // the state database exists before any process races to create it
}
