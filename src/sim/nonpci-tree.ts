import fs from 'node:fs';
import path from 'node:path';
import type { MdevParentSpec, NvmeSpec, ScsiHostSpec, UsbBusSpec, UsbDeviceSpec } from './spec.js';

/**
 * What a PCI function's driver shows below it while bound (its probe makes it, its remove takes it
 * away): an xHCI driver's USB buses, nvme's namespaces, an HBA driver's SCSI host, an mdev parent
 * driver's types. The simulator keeps it per function in host.json.
 */
export interface BelowSpec {
  readonly driver: string;
  readonly usbBuses?: readonly UsbBusSpec[];
  readonly nvme?: NvmeSpec;
  readonly scsi?: ScsiHostSpec;
  /** The types; the mdevs made at build are not part of what a probe shows. */
  readonly mdev?: Omit<MdevParentSpec, 'devices'>;
}

/** The probe's part: what `below.driver` shows under the function at `devRel`. */
export function writeBelow(root: string, devRel: string, address: string, below: BelowSpec): void {
  for (const bus of below.usbBuses ?? []) writeUsbBus(root, devRel, address, bus);
  if (below.nvme !== undefined) writeNvme(root, devRel, address, below.nvme);
  if (below.scsi !== undefined) writeScsiHost(root, devRel, below.driver, below.scsi);
  if (below.mdev !== undefined) writeMdevParent(root, devRel, address, below.mdev);
}

/** The USB devices (and root hubs) at or below `dir`: their /dev/bus/usb nodes. */
function usbNodes(dir: string): string[] {
  const out: string[] = [];
  const walk = (here: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(here, { withFileTypes: true });
    } catch {
      return;
    }
    const names = new Set(entries.map((e) => e.name));
    if (names.has('busnum') && names.has('devnum')) {
      const bus = Number(fs.readFileSync(path.join(here, 'busnum'), 'utf8'));
      const devnum = Number(fs.readFileSync(path.join(here, 'devnum'), 'utf8'));
      out.push(`dev/bus/usb/${pad3(bus)}/${pad3(devnum)}`);
    }
    for (const entry of entries) if (entry.isDirectory()) walk(path.join(here, entry.name));
  };
  walk(dir);
  return out;
}

/** The sg and block device names of the SCSI devices below a host: their /dev nodes. */
function scsiNodes(hostDir: string): string[] {
  const out: string[] = [];
  const walk = (here: string): void => {
    for (const entry of fs.readdirSync(here, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      if (entry.name === 'scsi_generic' || entry.name === 'block') out.push(...fs.readdirSync(path.join(here, entry.name)));
      else walk(path.join(here, entry.name));
    }
  };
  walk(hostDir);
  return out;
}

/**
 * The remove's part: everything the driver showed below the function at `dir` goes, with its bus
 * and class entries and device nodes; mdevs of a parent go with it (mdev_unregister_parent).
 */
export function removeBelow(root: string, dir: string): void {
  const files = within(root);
  for (const name of fs.readdirSync(dir)) {
    const here = path.join(dir, name);
    if (fs.lstatSync(here).isSymbolicLink() || !fs.statSync(here).isDirectory()) continue;
    if (fs.existsSync(path.join(here, 'mdev_type'))) removeMdev(root, here);
    else if (/^usb[0-9]+$/.test(name)) {
      for (const node of usbNodes(here)) files.rm(path.join(root, node));
      files.rm(here, { recursive: true });
    } else if (/^host[0-9]+$/.test(name)) {
      for (const node of scsiNodes(here)) files.rm(path.join(root, 'dev', node));
      files.rm(here, { recursive: true });
    } else if (name === 'mdev_supported_types') {
      files.rm(here, { recursive: true });
      files.rm(path.join(root, 'sys/class/mdev_bus', path.basename(dir)));
    }
  }
  removeNvme(root, dir);
  dropDanglingLinks(root);
}

/** A USB device unplugged (usb_remove_device, what writing its `remove` does): it, its interfaces and what hangs below it go. */
export function unplugUsb(root: string, dir: string): void {
  const files = within(root);
  for (const node of usbNodes(dir)) files.rm(path.join(root, node));
  files.rm(dir, { recursive: true });
  dropDanglingLinks(root);
}

/** Plugs a device into a port of a hub that is there, with the next address on its bus (as enumeration gives it). */
export function plugUsb(root: string, bus: number, device: UsbDeviceSpec): string {
  const parentPort = device.port.includes('.') ? device.port.slice(0, device.port.lastIndexOf('.')) : null;
  const parentName = parentPort === null ? `usb${bus}` : `${bus}-${parentPort}`;
  const parent = path.join(root, 'sys/bus/usb/devices', parentName);
  if (!fs.existsSync(parent)) throw new Error(`no hub ${parentName} to plug ${bus}-${device.port} into`);
  const name = `${bus}-${device.port}`;
  if (fs.existsSync(path.join(root, 'sys/bus/usb/devices', name))) throw new Error(`a device is plugged in at ${name} already`);
  const parentReal = fs.realpathSync(parent);
  const speed = Number(fs.readFileSync(path.join(parentReal, 'speed'), 'utf8'));
  const used = usbNodes(fs.realpathSync(path.join(root, 'sys/bus/usb/devices', `usb${bus}`))).map((node) => Number(path.basename(node)));
  const devnum = device.devnum ?? Math.max(1, ...used) + 1;
  usbDevice(root, `${path.relative(root, parentReal)}/${name}`, name, name, bus, devnum, device.port, speed, device);
  return name;
}
import { linkGroup, relLink, within } from './tree-writer.js';

/*
 * The kinds of host device that hang below PCI functions, written as Linux lays them out:
 *   USB   PCI/usbB/B-P/B-P.Q (+ interfaces B-P.Q:1.0), /sys/bus/usb/devices/*, /dev/bus/usb/BBB/DDD
 *   mdev  PCI/mdev_supported_types/TYPE/{name,description,available_instances,device_api,create,devices/},
 *         PCI/UUID (mdev_type, remove, iommu_group), /sys/bus/mdev/devices/UUID, /sys/class/mdev_bus/PARENT
 *   NVMe  PCI/nvme/nvmeN/nvmeNnM (nsid, size), /sys/class/nvme/nvmeN, /sys/class/block/nvmeNnM
 *   SCSI  PCI/hostH/targetH:C:T/H:C:T:L (vendor, model, type, scsi_generic/sgN, block/sdX),
 *         /sys/bus/scsi/devices/*, /sys/class/scsi_generic/sgN
 * Every path is written through the containment of tree-writer (nothing outside the root).
 */

function put(root: string, file: string, content: string, mode = 0o444): void {
  const files = within(root);
  files.mkdir(path.dirname(file));
  files.writeFile(file, content, { mode });
}

function attrs(root: string, dir: string, values: Readonly<Record<string, string | null | undefined>>): void {
  for (const [name, value] of Object.entries(values)) if (value !== null && value !== undefined) put(root, path.join(dir, name), `${value}\n`);
}

function driverDir(root: string, bus: string, name: string): string {
  const dir = `sys/bus/${bus}/drivers/${name}`;
  const files = within(root);
  if (!fs.existsSync(path.join(root, dir))) {
    files.mkdir(path.join(root, dir));
    for (const file of ['bind', 'unbind', 'uevent']) files.writeFile(path.join(root, dir, file), '', { mode: 0o200 });
  }
  return dir;
}

/** The device's driver link and the driver's link back to it, on a bus other than PCI. */
function bindOn(root: string, bus: string, devRel: string, name: string, driver: string | null): void {
  if (driver === null) return;
  const dir = driverDir(root, bus, driver);
  relLink(root, `${devRel}/driver`, dir);
  relLink(root, `${dir}/${name}`, devRel);
}

function onBus(root: string, bus: string, devRel: string, name: string): void {
  within(root).mkdir(path.join(root, `sys/bus/${bus}/devices`));
  within(root).mkdir(path.join(root, devRel));
  relLink(root, `${devRel}/subsystem`, `sys/bus/${bus}`);
  relLink(root, `sys/bus/${bus}/devices/${name}`, devRel);
}

const pad3 = (n: number): string => String(n).padStart(3, '0');

// ---- USB ----

function usbDevice(
  root: string,
  devRel: string,
  name: string,
  /** What its interfaces' names begin with: the device's name, "B-0" for a root hub. */
  ifBase: string,
  bus: number,
  devnum: number,
  devpath: string,
  speed: number,
  device: Omit<UsbDeviceSpec, 'port'>,
): void {
  const vendor = device.vendor.toLowerCase();
  const product = device.product.toLowerCase();
  const deviceClass = (device.deviceClass ?? '00').toLowerCase();
  const interfaces = device.interfaces ?? [];
  attrs(root, path.join(root, devRel), {
    idVendor: vendor,
    idProduct: product,
    busnum: String(bus),
    devnum: String(devnum),
    devpath,
    speed: String(speed),
    bDeviceClass: deviceClass,
    bNumInterfaces: String(interfaces.length).padStart(2, ' '),
    bcdDevice: '0100',
    version: speed >= 5000 ? ' 3.00' : ' 2.00',
    authorized: '1',
    removable: devpath === '0' ? 'unknown' : 'removable',
    manufacturer: device.manufacturer,
    product: device.productName,
    serial: device.serial,
  });
  put(
    root,
    path.join(root, devRel, 'uevent'),
    `MAJOR=189\nMINOR=${(bus - 1) * 128 + devnum - 1}\nDEVNAME=bus/usb/${pad3(bus)}/${pad3(devnum)}\nDEVTYPE=usb_device\nDRIVER=usb\n` +
      `PRODUCT=${Number.parseInt(vendor, 16).toString(16)}/${Number.parseInt(product, 16).toString(16)}/100\nTYPE=${Number.parseInt(deviceClass, 16)}/0/0\n` +
      `BUSNUM=${pad3(bus)}\nDEVNUM=${pad3(devnum)}\n`,
    0o644,
  );
  put(root, path.join(root, devRel, 'remove'), '', 0o200);
  onBus(root, 'usb', devRel, name);
  bindOn(root, 'usb', devRel, name, 'usb');
  put(root, path.join(root, `dev/bus/usb/${pad3(bus)}/${pad3(devnum)}`), '', 0o664);
  for (const [index, iface] of interfaces.entries()) {
    const ifName = `${ifBase}:1.${index}`;
    const ifRel = `${devRel}/${ifName}`;
    attrs(root, path.join(root, ifRel), { bInterfaceNumber: index.toString(16).padStart(2, '0'), bInterfaceClass: iface.class.toLowerCase(), bAlternateSetting: ' 0' });
    put(root, path.join(root, ifRel, 'uevent'), `DEVTYPE=usb_interface\n${iface.driver === null ? '' : `DRIVER=${iface.driver}\n`}`, 0o644);
    onBus(root, 'usb', ifRel, ifName);
    bindOn(root, 'usb', ifRel, ifName, iface.driver);
  }
}

/** A controller's root hub and the devices on its ports; devnums go in spec order from 2, as enumeration would give them. */
export function writeUsbBus(root: string, controllerRel: string, controller: string, spec: UsbBusSpec): void {
  const speed = spec.speed ?? 480;
  const hubName = `usb${spec.bus}`;
  const hubRel = `${controllerRel}/${hubName}`;
  usbDevice(root, hubRel, hubName, `${spec.bus}-0`, spec.bus, 1, '0', speed, {
    vendor: '1d6b',
    product: speed >= 5000 ? '0003' : '0002',
    manufacturer: 'Linux 6.1.0 xhci-hcd',
    productName: 'xHCI Host Controller',
    serial: controller,
    deviceClass: '09',
    interfaces: [{ class: '09', driver: 'hub' }],
  });
  const sorted = [...spec.devices].sort((a, b) => a.port.split('.').length - b.port.split('.').length);
  const dirOf = new Map<string, string>([['', hubRel]]);
  const taken = new Set(spec.devices.flatMap((d) => (d.devnum === undefined ? [] : [d.devnum])));
  let next = 2;
  const nextDevnum = (): number => {
    while (taken.has(next)) next++;
    return next++;
  };
  for (const device of sorted) {
    const parentPort = device.port.includes('.') ? device.port.slice(0, device.port.lastIndexOf('.')) : '';
    const parentRel = dirOf.get(parentPort);
    if (parentRel === undefined) throw new Error(`usb ${spec.bus}-${device.port}: no hub at ${parentPort}`);
    const name = `${spec.bus}-${device.port}`;
    const devRel = `${parentRel}/${name}`;
    dirOf.set(device.port, devRel);
    usbDevice(root, devRel, name, name, spec.bus, device.devnum ?? nextDevnum(), device.port, speed, device);
  }
}

// ---- mediated devices ----

/** A parent's types and its mdev_bus class link (mdev_register_parent). */
function writeMdevParent(root: string, parentRel: string, parentName: string, spec: Omit<MdevParentSpec, 'devices'>): void {
  for (const type of spec.types) {
    const dir = path.join(root, parentRel, 'mdev_supported_types', type.id);
    attrs(root, dir, { name: type.name, available_instances: String(type.availableInstances), device_api: type.deviceApi ?? 'vfio-pci' });
    put(root, path.join(dir, 'description'), type.description === undefined ? '' : `${type.description.replace(/\n$/, '')}\n`);
    put(root, path.join(dir, 'create'), '', 0o200);
    within(root).mkdir(path.join(dir, 'devices'));
  }
  within(root).mkdir(path.join(root, 'sys/class/mdev_bus'));
  relLink(root, `sys/class/mdev_bus/${parentName}`, parentRel);
}

/** A parent whose types share one pool (MdevParentSpec.capacity): its size and what an instance of each type takes. */
export interface MdevPool {
  readonly capacity: number;
  readonly costs: Readonly<Record<string, number>>;
}

export function mdevPoolOf(parent: Omit<MdevParentSpec, 'devices'> | undefined): MdevPool | undefined {
  if (parent?.capacity === undefined) return undefined;
  return { capacity: parent.capacity, costs: Object.fromEntries(parent.types.map((type) => [type.id, type.cost ?? 1])) };
}

/**
 * A type's available_instances after one of its mdevs came (+1 made) or went (-1): its own count, or
 * with a shared pool every type's, from what the parent's mdevs take of it (mtty's available ports).
 */
function recountInstances(root: string, typeDir: string, made: 1 | -1, pool: MdevPool | undefined): void {
  const files = within(root);
  if (pool === undefined) {
    const available = Number(fs.readFileSync(path.join(typeDir, 'available_instances'), 'utf8'));
    files.writeFile(path.join(typeDir, 'available_instances'), `${available - made}\n`, { mode: 0o444 });
    return;
  }
  const typesDir = path.dirname(typeDir);
  const ids = fs.readdirSync(typesDir);
  const used = ids.reduce((sum, id) => sum + fs.readdirSync(path.join(typesDir, id, 'devices')).length * (pool.costs[id] ?? 1), 0);
  for (const id of ids) {
    files.writeFile(path.join(typesDir, id, 'available_instances'), `${Math.floor(Math.max(0, pool.capacity - used) / (pool.costs[id] ?? 1))}\n`, { mode: 0o444 });
  }
}

/** mdevs made on a parent whose types are there (the builder's and the snapshot's, already checked). */
export function writeMdevs(root: string, parentRel: string, parentName: string, parent: MdevParentSpec, allocGroup: () => number | null): void {
  for (const device of parent.devices ?? []) {
    const typeDir = path.join(root, parentRel, 'mdev_supported_types', device.type);
    if (!fs.existsSync(typeDir)) throw new Error(`mdev ${device.uuid}: ${parentName} has no type ${device.type}`);
    writeMdev(root, parentRel, device.type, device.uuid, parent.driver, allocGroup(), mdevAttributes(parent, device.type), mdevPoolOf(parent));
  }
}

/** The attributes an mdev of `typeId` shows, as the parent's spec declares them. */
export function mdevAttributes(parent: Omit<MdevParentSpec, 'devices'> | undefined, typeId: string): readonly string[] {
  return parent?.types.find((type) => type.id === typeId)?.attributes ?? [];
}

/** One mdev as mdev_device_create leaves it: bound to the parent's mdev driver, in an IOMMU group of its own. */
export function writeMdev(root: string, parentRel: string, typeId: string, uuid: string, driver: string, group: number | null, attributes: readonly string[], pool?: MdevPool): void {
  const devRel = `${parentRel}/${uuid}`;
  const typeRel = `${parentRel}/mdev_supported_types/${typeId}`;
  const typeDir = path.join(root, typeRel);
  within(root).mkdir(path.join(root, devRel));
  relLink(root, `${devRel}/mdev_type`, typeRel);
  put(root, path.join(root, devRel, 'remove'), '', 0o200);
  put(root, path.join(root, devRel, 'uevent'), `MDEV_TYPE=${typeId}\nDRIVER=${driver}\n`, 0o644);
  for (const name of attributes) put(root, path.join(root, devRel, name), '', 0o644);
  onBus(root, 'mdev', devRel, uuid);
  bindOn(root, 'mdev', devRel, uuid, driver);
  if (group !== null) {
    linkGroup(root, devRel, uuid, group);
    put(root, path.join(root, `dev/vfio/${group}`), '', 0o600);
  }
  relLink(root, `${typeRel}/devices/${uuid}`, devRel);
  recountInstances(root, typeDir, 1, pool);
}

/** mdev_device_remove: the device, its links and its group go; the type gets its instance back. */
export function removeMdev(root: string, devDir: string, pool?: MdevPool): void {
  const files = within(root);
  const uuid = path.basename(devDir);
  const typeDir = fs.realpathSync(path.join(devDir, 'mdev_type'));
  let group: string | null = null;
  try {
    group = path.basename(fs.realpathSync(path.join(devDir, 'iommu_group')));
  } catch {
    group = null;
  }
  const driver = (() => {
    try {
      return path.basename(fs.readlinkSync(path.join(devDir, 'driver')));
    } catch {
      return null;
    }
  })();
  if (driver !== null) files.rm(path.join(root, `sys/bus/mdev/drivers/${driver}/${uuid}`));
  files.rm(path.join(root, `sys/bus/mdev/devices/${uuid}`));
  files.rm(path.join(typeDir, 'devices', uuid));
  if (group !== null) {
    files.rm(path.join(root, `sys/kernel/iommu_groups/${group}`), { recursive: true });
    files.rm(path.join(root, `dev/vfio/${group}`));
  }
  files.rm(devDir, { recursive: true });
  recountInstances(root, typeDir, -1, pool);
}

/** The next free IOMMU group number of a tree (for an mdev made after the build). */
export function nextFreeGroup(root: string): number {
  let names: string[] = [];
  try {
    names = fs.readdirSync(path.join(root, 'sys/kernel/iommu_groups'));
  } catch {
    names = [];
  }
  return names.reduce((max, name) => Math.max(max, Number(name) + 1), 0);
}

// ---- NVMe ----

/** nvme_probe's view: the controller and its namespaces (only while the controller is on nvme). */
export function writeNvme(root: string, controllerRel: string, address: string, spec: NvmeSpec): void {
  const name = `nvme${spec.instance}`;
  const ctrlRel = `${controllerRel}/nvme/${name}`;
  attrs(root, path.join(root, ctrlRel), {
    address,
    model: spec.model ?? 'hostdev simulated NVMe',
    serial: spec.serial ?? `SIM${address.replace(/[^0-9a-f]/g, '')}`,
    firmware_rev: '1.0',
    transport: 'pcie',
    state: 'live',
    cntlid: '1',
  });
  relLink(root, `${ctrlRel}/device`, controllerRel);
  within(root).mkdir(path.join(root, 'sys/class/nvme'));
  relLink(root, `sys/class/nvme/${name}`, ctrlRel);
  put(root, path.join(root, `dev/${name}`), '', 0o600);
  for (const ns of spec.namespaces) {
    const nsName = `${name}n${ns.nsid}`;
    const nsRel = `${ctrlRel}/${nsName}`;
    attrs(root, path.join(root, nsRel), { nsid: String(ns.nsid), size: String(ns.sectors), wwid: `nvme.sim-${address}-${ns.nsid}` });
    within(root).mkdir(path.join(root, 'sys/class/block'));
    relLink(root, `${nsRel}/subsystem`, 'sys/class/block');
    relLink(root, `sys/class/block/${nsName}`, nsRel);
    put(root, path.join(root, `dev/${nsName}`), '', 0o660);
  }
}

/** nvme_remove: the controller's and namespaces' class links and nodes go with the nvme/ directory. */
export function removeNvme(root: string, controllerDir: string): void {
  const files = within(root);
  const nvmeDir = path.join(controllerDir, 'nvme');
  if (!fs.existsSync(nvmeDir)) return;
  for (const name of fs.readdirSync(nvmeDir)) {
    for (const entry of fs.readdirSync(path.join(nvmeDir, name))) {
      if (!entry.startsWith(`${name}n`)) continue;
      files.rm(path.join(root, `sys/class/block/${entry}`));
      files.rm(path.join(root, `dev/${entry}`));
    }
    files.rm(path.join(root, `sys/class/nvme/${name}`));
    files.rm(path.join(root, `dev/${name}`));
  }
  files.rm(nvmeDir, { recursive: true });
}

// ---- SCSI ----

const SCSI_DRIVERS: Readonly<Record<number, string>> = { 0: 'sd', 1: 'st', 5: 'sr', 8: 'ch' };

export function writeScsiHost(root: string, adapterRel: string, procName: string, spec: ScsiHostSpec): void {
  const hostName = `host${spec.host}`;
  const hostRel = `${adapterRel}/${hostName}`;
  onBus(root, 'scsi', hostRel, hostName);
  attrs(root, path.join(root, hostRel, 'scsi_host', hostName), { proc_name: procName, unique_id: String(spec.host + 1) });
  within(root).mkdir(path.join(root, 'sys/class/scsi_host'));
  relLink(root, `sys/class/scsi_host/${hostName}`, `${hostRel}/scsi_host/${hostName}`);
  for (const device of spec.devices) {
    const targetName = `target${spec.host}:${device.channel}:${device.target}`;
    const targetRel = `${hostRel}/${targetName}`;
    if (!fs.existsSync(path.join(root, targetRel))) onBus(root, 'scsi', targetRel, targetName);
    const name = `${spec.host}:${device.channel}:${device.target}:${device.lun}`;
    const devRel = `${targetRel}/${name}`;
    attrs(root, path.join(root, devRel), {
      vendor: device.vendor.padEnd(8, ' '),
      model: device.model.padEnd(16, ' '),
      rev: (device.rev ?? '0001').padEnd(4, ' '),
      type: String(device.type),
      scsi_level: '7',
      state: 'running',
      device_blocked: '0',
    });
    onBus(root, 'scsi', devRel, name);
    bindOn(root, 'scsi', devRel, name, SCSI_DRIVERS[device.type] ?? null);
    const sg = `sg${device.sg}`;
    attrs(root, path.join(root, devRel, 'scsi_generic', sg), { dev: `21:${device.sg}` });
    within(root).mkdir(path.join(root, 'sys/class/scsi_generic'));
    relLink(root, `sys/class/scsi_generic/${sg}`, `${devRel}/scsi_generic/${sg}`);
    put(root, path.join(root, `dev/${sg}`), '', 0o660);
    if (device.block !== undefined) {
      attrs(root, path.join(root, devRel, 'block', device.block), { size: '0' });
      within(root).mkdir(path.join(root, 'sys/class/block'));
      relLink(root, `sys/class/block/${device.block}`, `${devRel}/block/${device.block}`);
      put(root, path.join(root, `dev/${device.block}`), '', 0o660);
    }
  }
}

/**
 * Links under the buses and classes of these kinds that lead to nothing any more: what went with a
 * removed PCI device (its USB buses, mdevs, NVMe namespaces, SCSI hosts). The kernel drops them as
 * it removes each device; the simulator sweeps them after a removal.
 */
export function dropDanglingLinks(root: string): void {
  const files = within(root);
  const dirs = [
    'sys/bus/usb/devices',
    'sys/bus/mdev/devices',
    'sys/bus/scsi/devices',
    'sys/class/mdev_bus',
    'sys/class/nvme',
    'sys/class/block',
    'sys/class/scsi_generic',
    'sys/class/scsi_host',
  ];
  const driverRoots = ['sys/bus/usb/drivers', 'sys/bus/mdev/drivers', 'sys/bus/scsi/drivers'];
  for (const driversRel of driverRoots) {
    try {
      for (const name of fs.readdirSync(path.join(root, driversRel))) dirs.push(`${driversRel}/${name}`);
    } catch {
      // no such bus on this host
    }
  }
  for (const rel of dirs) {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(root, rel));
    } catch {
      continue;
    }
    for (const name of names) {
      const link = path.join(root, rel, name);
      if (fs.lstatSync(link).isSymbolicLink() && !fs.existsSync(link)) files.rm(link);
    }
  }
}
