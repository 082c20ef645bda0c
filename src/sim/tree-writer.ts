import type { VpdSpec } from './spec.js';
import fs from 'node:fs';
import path from 'node:path';
import { readHeadSync } from '../platform/bounded-read.js';
import { ContainedFs } from '../platform/contain.js';
import { buildConfigSpace, type ConfigSpaceInput } from './config-space.js';

/**
 * Writes one PCI function into a sysfs-shaped tree the way the kernel lays it out: the device
 * directory under sys/devices, the RELATIVE links (bus/pci/devices, driver, iommu_group,
 * subsystem, physfn/virtfnN) and the driver's and group's back links.
 */
export interface SimFunction extends Omit<ConfigSpaceInput, 'sriov'> {
  readonly address: string;
  /** Directory relative to the root: "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0". */
  readonly devPath: string;
  readonly numaNode: number;
  readonly resetMethods: readonly string[];
  readonly driver: string | null;
  readonly iommuGroup: number | null;
  readonly netdevs: readonly string[];
  readonly sriov?: NonNullable<ConfigSpaceInput['sriov']> & { readonly autoprobe: boolean };
  readonly vpd?: VpdSpec;
}

/**
 * The bytes of a `vpd` file (PCI 3.0 appendix I): the identifier string (large resource 0x82), the
 * read-only keywords (0x90) with the RV checksum keyword last, and the end tag (0x78).
 */
export function vpdBytes(vpd: VpdSpec): Buffer {
  const resource = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag, body.length & 0xff, body.length >> 8]), body]);
  const keyword = (name: string, value: string): Buffer => Buffer.concat([Buffer.from(name, 'ascii'), Buffer.from([value.length]), Buffer.from(value, 'ascii')]);
  const fields: Array<[string, string | undefined]> = [
    ['PN', vpd.partNumber],
    ['EC', vpd.engineeringChange],
    ['SN', vpd.serialNumber],
    ['MN', vpd.manufacturer],
  ];
  const id = resource(0x82, Buffer.from(vpd.productName ?? '', 'ascii'));
  const ro = Buffer.concat(fields.flatMap(([name, value]) => (value === undefined ? [] : [keyword(name, value)])));
  // RV: a checksum byte making every byte from the start through it sum to 0, then padding.
  const head = Buffer.concat([id, Buffer.from([0x90, 0, 0]), ro, Buffer.from('RV', 'ascii'), Buffer.from([1])]);
  const readOnly = Buffer.concat([ro, Buffer.from('RV', 'ascii'), Buffer.from([1, 0])]);
  head.writeUInt16LE(readOnly.length, id.length + 1);
  const sum = [...head].reduce((total, byte) => total + byte, 0);
  readOnly[readOnly.length - 1] = (0x100 - (sum & 0xff)) & 0xff;
  return Buffer.concat([id, resource(0x90, readOnly), Buffer.from([0x78])]);
}

export const hex = (value: number, width: number): string => value.toString(16).padStart(width, '0');

/** Every change to the tree goes through this: nothing a link leads to outside the root is touched. */
export const within = (root: string): ContainedFs => new ContainedFs(root);

export function relLink(root: string, fromLinkRel: string, toRel: string): void {
  const files = within(root);
  const link = path.join(root, fromLinkRel);
  const target = path.relative(path.dirname(link), path.join(root, toRel));
  try {
    files.symlink(target, link);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    files.unlink(link);
    files.symlink(target, link);
  }
}

function put(files: ContainedFs, dir: string, name: string, content: string | Buffer, mode = 0o644): void {
  files.writeFile(path.join(dir, name), content, { mode });
}

export function driverRel(name: string): string {
  return `sys/bus/pci/drivers/${name}`;
}
export function groupRel(group: number): string {
  return `sys/kernel/iommu_groups/${group}`;
}
export function busDeviceRel(address: string): string {
  return `sys/bus/pci/devices/${address}`;
}

/** Driver directory with its store-only attributes, as a loaded module registers it. */
export function writeDriverDir(root: string, name: string, dir = path.join(root, driverRel(name))): void {
  const files = within(root);
  files.mkdir(dir);
  for (const file of ['bind', 'unbind', 'new_id', 'remove_id']) put(files, dir, file, '', 0o200);
  put(files, dir, 'uevent', '', 0o200);
}

export function linkDriver(root: string, devPath: string, address: string, driver: string): void {
  relLink(root, `${devPath}/driver`, driverRel(driver));
  relLink(root, `${driverRel(driver)}/${address}`, devPath);
  setUeventDriver(root, path.join(root, devPath), driver);
}

const upperHex = (value: number, width: number): string => hex(value, width).toUpperCase();

type FunctionIds = Pick<SimFunction, 'vendor' | 'device' | 'subsystemVendor' | 'subsystemDevice' | 'classCode'>;

/** The function's modalias, as pci_uevent() and the `modalias` attribute spell it. */
function modaliasOf(fn: FunctionIds): string {
  const ids = `v${upperHex(fn.vendor, 8)}d${upperHex(fn.device, 8)}sv${upperHex(fn.subsystemVendor, 8)}sd${upperHex(fn.subsystemDevice, 8)}`;
  return `pci:${ids}bc${upperHex(fn.classCode >> 16, 2)}sc${upperHex((fn.classCode >> 8) & 0xff, 2)}i${upperHex(fn.classCode & 0xff, 2)}`;
}

/** A function's uevent file as Linux's pci_uevent() writes it, without DRIVER= (linkDriver adds it). */
function ueventText(fn: FunctionIds & Pick<SimFunction, 'address'>): string {
  return (
    `PCI_CLASS=${upperHex(fn.classCode, 4)}\n` +
    `PCI_ID=${upperHex(fn.vendor, 4)}:${upperHex(fn.device, 4)}\n` +
    `PCI_SUBSYS_ID=${upperHex(fn.subsystemVendor, 4)}:${upperHex(fn.subsystemDevice, 4)}\n` +
    `PCI_SLOT_NAME=${fn.address}\n` +
    `MODALIAS=${modaliasOf(fn)}\n`
  );
}

const UEVENT_MAX_BYTES = 64 * 1024;

/** Keeps the DRIVER= line of a device's uevent in step with its binding, first as Linux puts it. */
export function setUeventDriver(root: string, dir: string, driver: string | null): void {
  const files = within(root);
  const file = files.resolve(path.join(dir, 'uevent'));
  try {
    // A uevent is a few lines; a huge one (a damaged tree) is read no further than that.
    const rest = readHeadSync(file, UEVENT_MAX_BYTES).split('\n').filter((line) => line !== '' && !line.startsWith('DRIVER='));
    files.writeFile(file, [...(driver === null ? [] : [`DRIVER=${driver}`]), ...rest, ''].join('\n'));
  } catch (error) {
    // No uevent file (a snapshot of a hand-made tree), or the device went meanwhile.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

export function linkGroup(root: string, devPath: string, address: string, group: number): void {
  const files = within(root);
  const groupDir = path.join(root, groupRel(group));
  if (!fs.existsSync(groupDir)) {
    files.mkdir(path.join(groupDir, 'devices'));
    put(files, groupDir, 'type', 'DMA\n');
    put(files, groupDir, 'reserved_regions', '0x00000000fee00000 0x00000000feefffff msi\n', 0o444);
  }
  relLink(root, `${groupRel(group)}/devices/${address}`, devPath);
  relLink(root, `${devPath}/iommu_group`, groupRel(group));
}

export function writeNetdevs(root: string, devPath: string, names: readonly string[]): void {
  const files = within(root);
  for (const name of names) {
    const dir = path.join(root, devPath, 'net', name);
    files.mkdir(dir);
    put(files, dir, 'ifindex', '2\n', 0o444);
    put(files, dir, 'operstate', 'down\n', 0o444);
  }
}

export function writeFunction(root: string, fn: SimFunction): void {
  const files = within(root);
  const dir = files.dir(path.join(root, fn.devPath));
  fs.mkdirSync(dir, { recursive: true });
  const sriov = fn.sriov;
  put(files, dir, 'vendor', `0x${hex(fn.vendor, 4)}\n`, 0o444);
  put(files, dir, 'device', `0x${hex(fn.device, 4)}\n`, 0o444);
  put(files, dir, 'subsystem_vendor', `0x${hex(fn.subsystemVendor, 4)}\n`, 0o444);
  put(files, dir, 'subsystem_device', `0x${hex(fn.subsystemDevice, 4)}\n`, 0o444);
  put(files, dir, 'class', `0x${hex(fn.classCode, 6)}\n`, 0o444);
  put(files, dir, 'revision', `0x${hex(fn.revision, 2)}\n`, 0o444);
  put(files, dir, 'config', buildConfigSpace(fn));
  put(files, dir, 'uevent', ueventText(fn));
  put(files, dir, 'modalias', `${modaliasOf(fn)}\n`, 0o444);
  put(files, dir, 'driver_override', '(null)\n');
  put(files, dir, 'numa_node', `${fn.numaNode}\n`);
  put(files, dir, 'irq', '16\n', 0o444);
  put(files, dir, 'resource', `${'0x0000000000000000 0x0000000000000000 0x0000000000000000\n'.repeat(13)}`, 0o444);
  put(files, dir, 'remove', '', 0o200);
  if (fn.vpd !== undefined) put(files, dir, 'vpd', vpdBytes(fn.vpd), 0o600);
  if (fn.resetMethods.length > 0) {
    put(files, dir, 'reset', '', 0o200);
    put(files, dir, 'reset_method', `${fn.resetMethods.join(' ')}\n`);
  }
  if (sriov) {
    put(files, dir, 'sriov_totalvfs', `${sriov.totalVfs}\n`, 0o444);
    put(files, dir, 'sriov_numvfs', `${sriov.numVfs}\n`);
    put(files, dir, 'sriov_offset', `${sriov.offset}\n`, 0o444);
    put(files, dir, 'sriov_stride', `${sriov.stride}\n`, 0o444);
    put(files, dir, 'sriov_vf_device', `${hex(sriov.vfDevice, 4)}\n`, 0o444);
    put(files, dir, 'sriov_drivers_autoprobe', `${sriov.autoprobe ? 1 : 0}\n`);
  }
  relLink(root, `${fn.devPath}/subsystem`, 'sys/bus/pci');
  relLink(root, busDeviceRel(fn.address), fn.devPath);
  if (fn.iommuGroup !== null) linkGroup(root, fn.devPath, fn.address, fn.iommuGroup);
  if (fn.driver !== null) {
    if (!fs.existsSync(path.join(root, driverRel(fn.driver)))) writeDriverDir(root, fn.driver);
    linkDriver(root, fn.devPath, fn.address, fn.driver);
    if (fn.driver !== 'vfio-pci') writeNetdevs(root, fn.devPath, fn.netdevs);
  }
}

/** physfn on the VF, virtfnN on the PF, both relative ("../0000:01:10.0"). */
export function linkVirtfn(root: string, pfDevPath: string, vfDevPath: string, index: number): void {
  relLink(root, `${vfDevPath}/physfn`, pfDevPath);
  relLink(root, `${pfDevPath}/virtfn${index}`, vfDevPath);
}

/** Skeleton every simulated host has, whatever its devices. */
export function writeSkeleton(root: string): void {
  const files = within(root);
  for (const dir of ['sys/bus/pci/devices', 'sys/bus/pci/drivers', 'sys/kernel/iommu_groups', 'sys/devices', 'dev']) {
    files.mkdir(path.join(root, dir));
  }
  put(files, path.join(root, 'sys/bus/pci'), 'drivers_probe', '', 0o200);
  put(files, path.join(root, 'sys/bus/pci'), 'rescan', '', 0o200);
  put(files, path.join(root, 'sys/bus/pci'), 'drivers_autoprobe', '1\n');
}
