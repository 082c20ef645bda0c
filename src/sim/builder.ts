import fs from 'node:fs';
import path from 'node:path';
import type { PcieType } from './config-space.js';
import {
  idMatches,
  normHex,
  writeHostModel,
  type DeviceIds,
  type DriverId,
  type HostModel,
  type KnownDriver,
  type VfTemplate,
} from './host-model.js';
import { SimState } from './state-db.js';
import { isBridge, type DriverIdSpec, type EndpointSpec, type HostSpec, type NodeSpec } from './spec.js';
import { hex, linkVirtfn, writeDriverDir, writeFunction, writeSkeleton, type SimFunction } from './tree-writer.js';
import { vfFunction, vfNetdevName } from './vf.js';

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
  subordinate: number;
}

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
  const walk = (nodes: readonly NodeSpec[], domain: number, bus: number, dirPath: string, ancestors: Placed[], numa: number): number => {
    let maxBus = bus;
    for (const node of nodes) {
      const [slotText, fnText] = node.at.split('.') as [string, string];
      const slot = Number.parseInt(slotText, 16);
      if (slot > 0x1f) throw new Error(`slot ${slotText} out of range at ${node.at}`);
      const address = `${hex(domain, 4)}:${hex(bus, 2)}:${hex(slot, 2)}.${fnText}`;
      if (seen.has(address)) throw new Error(`two functions at ${address}`);
      seen.add(address);
      const here: Placed = {
        address,
        devPath: `${dirPath}/${address}`,
        node,
        bus,
        slot,
        ancestors,
        numaNode: node.numaNode ?? numa,
        subordinate: 0,
      };
      placed.push(here);
      if (isBridge(node)) {
        if (node.secondaryBus <= bus) throw new Error(`bridge ${address}: secondary bus must be above ${hex(bus, 2)}`);
        here.subordinate = walk(node.children, domain, node.secondaryBus, here.devPath, [here, ...ancestors], here.numaNode);
        maxBus = Math.max(maxBus, here.subordinate);
      }
    }
    return maxBus;
  };
  for (const root of spec.roots) {
    const domain = root.domain ?? 0;
    const bus = root.bus ?? 0;
    walk(root.devices, domain, bus, `sys/devices/pci${hex(domain, 4)}:${hex(bus, 2)}`, [], root.numaNode ?? -1);
  }
  return placed;
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
 * ROOT/.hostdev-sim/host.json for the simulated kernel. `root` must be empty or absent.
 */
export function buildHost(root: string, spec: HostSpec): void {
  fs.mkdirSync(root, { recursive: true });
  if (fs.readdirSync(root).length > 0) throw new Error(`${root} is not empty`);
  const iommu = spec.iommu ?? true;
  const placed = place(spec);
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
    if (fn.sriov.numVfs > fn.sriov.totalVfs) throw new Error(`${p.address}: numVfs above totalVfs`);
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

  writeModulesAlias(root, spec);

  const known: Record<string, KnownDriver> = {};
  for (const [name, d] of drivers) known[name] = { ids: d.ids, loaded: d.loaded };
  const model: HostModel = { version: 1, iommu, drivers: known, netdevs, vfTemplates };
  writeHostModel(root, model);
  new SimState(root).close(); // the state database exists before any process races to create it
}
