import path from 'node:path';
import type { PciAddress } from '../core/address.js';
import type { KernelFiles } from '../core/kernel-files.js';

/**
 * The /sys layout, in one place. `root` stands for `/` (the `--root` option): a real host has
 * root "/", a simulated host has its temp dir. Host paths ("/sys/...") are what users and
 * kernel-port writes speak; they are resolved under the root here and nowhere else.
 */
export class SysfsLayout {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  /** Resolves a host path like "/sys/bus/pci/rescan" under the root; refuses to leave it. */
  resolve(hostPath: string): string {
    const normalized = path.posix.normalize(hostPath);
    if (!normalized.startsWith('/') || normalized.split('/').includes('..')) {
      throw new Error(`refusing a host path outside the root: ${hostPath}`);
    }
    return path.join(this.root, normalized);
  }

  /** Whether a host path names something under /sys (the only place a kernel write may go). */
  static isSysfsPath(hostPath: string): boolean {
    const normalized = path.posix.normalize(hostPath);
    return normalized.startsWith('/sys/') && !hostPath.split('/').includes('..');
  }

  get sys(): string {
    return path.join(this.root, 'sys');
  }
  get pciDevicesDir(): string {
    return path.join(this.root, 'sys/bus/pci/devices');
  }
  get pciDriversDir(): string {
    return path.join(this.root, 'sys/bus/pci/drivers');
  }
  get iommuGroupsDir(): string {
    return path.join(this.root, 'sys/kernel/iommu_groups');
  }
  /** The number of the last uevent the kernel sent (add, remove, bind, unbind, change, ...). */
  get ueventSeqnum(): string {
    return path.join(this.root, 'sys/kernel/uevent_seqnum');
  }
  get vfioDevDir(): string {
    return path.join(this.root, 'dev/vfio');
  }

  device(address: PciAddress, file?: string): string {
    const dir = path.join(this.pciDevicesDir, address);
    return file === undefined ? dir : path.join(dir, file);
  }
  driver(name: string, file?: string): string {
    const dir = path.join(this.pciDriversDir, name);
    return file === undefined ? dir : path.join(dir, file);
  }
  iommuGroup(group: number, file?: string): string {
    const dir = path.join(this.iommuGroupsDir, String(group));
    return file === undefined ? dir : path.join(dir, file);
  }
  /** A block device by its kernel name (sda, nvme0n1p2, dm-0). */
  block(name: string, file?: string): string {
    const dir = path.join(this.root, 'sys/class/block', name);
    return file === undefined ? dir : path.join(dir, file);
  }

  /** Host paths (for the kernel port and for `--dry-run` output). */
  static hostDevice(address: PciAddress, file: string): string {
    return `/sys/bus/pci/devices/${address}/${file}`;
  }
  static hostDriver(name: string, file: string): string {
    return `/sys/bus/pci/drivers/${name}/${file}`;
  }
  static readonly hostDriversProbe = '/sys/bus/pci/drivers_probe';
  static readonly hostRescan = '/sys/bus/pci/rescan';
}

/** The kernel files plans write, for the planners in src/core. */
export const hostFiles: KernelFiles = {
  device: (address, attribute) => SysfsLayout.hostDevice(address, attribute),
  driver: (name, file) => SysfsLayout.hostDriver(name, file),
  driversProbe: SysfsLayout.hostDriversProbe,
};
