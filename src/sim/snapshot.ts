import fs from 'node:fs';
import path from 'node:path';
import { makeHostModel, writeHostModel, type DriverId, type KnownDriver, type VfTemplate } from './host-model.js';
import { ADDRESS_RE, SimTree } from './sim-tree.js';
import { SimState } from './state-db.js';
import { nextFreeGroup, type BelowSpec } from './nonpci-tree.js';
import { copyBelowFunction } from './snapshot-nonpci.js';
import { busDeviceRel, linkDriver, linkGroup, relLink, writeDriverDir, writeNetdevs, writeSkeleton } from './tree-writer.js';

/** Attributes copied as they read on the source; anything else of a device is left out. */
const COPIED = [
  'uevent',
  'vendor',
  'device',
  'subsystem_vendor',
  'subsystem_device',
  'class',
  'revision',
  'config',
  'driver_override',
  'numa_node',
  'irq',
  'resource',
  'reset_method',
  'sriov_totalvfs',
  'sriov_numvfs',
  'sriov_offset',
  'sriov_stride',
  'sriov_vf_device',
  'sriov_drivers_autoprobe',
];

function readMaybe(file: string): Buffer | null {
  try {
    return fs.readFileSync(file);
  } catch {
    return null;
  }
}

interface SnapshotResult {
  readonly devices: number;
  readonly drivers: number;
  readonly iommu: boolean;
}

/**
 * Copies the PCI topology under `sourceRoot` (a real host: "/") into a new simulated tree at
 * `destRoot`, reading only. Driver ID tables are inferred from what is bound now; vfio-pci is
 * always a known module (loaded if it is loaded on the source).
 */
export function snapshotHost(sourceRoot: string, destRoot: string): SnapshotResult {
  const source = new SimTree(sourceRoot);
  fs.mkdirSync(destRoot, { recursive: true });
  if (fs.readdirSync(destRoot).length > 0) throw new Error(`${destRoot} is not empty`);
  writeSkeleton(destRoot);
  const drivers = new Map<string, DriverId[]>();
  const driversDir = path.join(source.root, 'sys/bus/pci/drivers');
  for (const name of fs.existsSync(driversDir) ? fs.readdirSync(driversDir).sort() : []) {
    drivers.set(name, []);
    writeDriverDir(destRoot, name);
  }
  const netdevs: Record<string, { driver: string; names: string[] }> = {};
  const vfTemplates: Record<string, VfTemplate> = {};
  const sysDevices = path.join(source.root, 'sys/devices');
  const addresses = source.addresses();
  const relOf = new Map<string, string>();
  for (const address of addresses) {
    const dir = source.deviceDir(address);
    if (dir === null || !dir.startsWith(`${sysDevices}/`)) continue;
    const devPath = `sys/devices/${path.relative(sysDevices, dir)}`;
    relOf.set(address, devPath);
    const out = path.join(destRoot, devPath);
    fs.mkdirSync(out, { recursive: true });
    for (const attr of COPIED) {
      const content = readMaybe(path.join(dir, attr));
      if (content !== null) fs.writeFileSync(path.join(out, attr), content);
    }
    fs.writeFileSync(path.join(out, 'remove'), '', { mode: 0o200 });
    if (fs.existsSync(path.join(dir, 'reset'))) fs.writeFileSync(path.join(out, 'reset'), '', { mode: 0o200 });
    relLink(destRoot, `${devPath}/subsystem`, 'sys/bus/pci');
    relLink(destRoot, busDeviceRel(address), devPath);
    const group = source.groupOf(dir);
    if (group !== null) linkGroup(destRoot, devPath, address, group);
    const driver = source.driverOf(dir);
    if (driver !== null) {
      if (!drivers.has(driver)) {
        drivers.set(driver, []);
        writeDriverDir(destRoot, driver);
      }
      const ids = source.ids(dir);
      const table = drivers.get(driver)!;
      if (!table.some((id) => id.vendor === ids.vendor && id.device === ids.device)) table.push({ vendor: ids.vendor, device: ids.device });
      linkDriver(destRoot, devPath, address, driver);
      const names = source.netdevNames(dir);
      if (names.length > 0) {
        writeNetdevs(destRoot, devPath, names);
        netdevs[address] = { driver, names };
      }
    }
    if (fs.existsSync(path.join(dir, 'sriov_totalvfs'))) {
      vfTemplates[address] = {
        numaNode: Number(source.attr(dir, 'numa_node') ?? '-1'),
        flr: true,
        resetMethods: ['flr'],
        netdev: null,
        pfNetdev: source.netdevNames(dir)[0] ?? null,
      };
    }
  }
  for (const address of addresses) {
    const dir = source.deviceDir(address);
    const devPath = relOf.get(address);
    if (dir === null || devPath === undefined) continue;
    for (const { index, dir: vfDir } of source.virtfns(dir)) {
      const vfAddress = path.basename(vfDir);
      const vfPath = relOf.get(vfAddress);
      if (!ADDRESS_RE.test(vfAddress) || vfPath === undefined) continue;
      relLink(destRoot, `${devPath}/virtfn${index}`, vfPath);
      relLink(destRoot, `${vfPath}/physfn`, devPath);
    }
  }
  const iommu = source.groups().length > 0;
  // USB buses, NVMe namespaces, SCSI hosts and mdevs below the functions, once every function has its group.
  const below: Record<string, BelowSpec> = {};
  for (const address of addresses) {
    const dir = source.deviceDir(address);
    const devPath = relOf.get(address);
    if (dir === null || devPath === undefined) continue;
    const shown = copyBelowFunction(dir, destRoot, devPath, address, source.driverOf(dir), () => (iommu ? nextFreeGroup(destRoot) : null));
    if (shown !== null) below[address] = shown;
  }
  const known: Record<string, KnownDriver> = {};
  for (const [name, ids] of drivers) known[name] = { ids, loaded: true };
  if (!drivers.has('vfio-pci')) known['vfio-pci'] = { ids: [], loaded: false };
  else fs.mkdirSync(path.join(destRoot, 'dev/vfio'), { recursive: true });
  writeHostModel(destRoot, makeHostModel({ iommu, drivers: known, netdevs, vfTemplates, below }));
  new SimState(destRoot).close();
  return { devices: relOf.size, drivers: drivers.size, iommu };
}
