import fs from 'node:fs';
import path from 'node:path';
import { findExtCap, PCI_EXT_CAP_ID_SRIOV, SRIOV_CTRL_REG, SRIOV_NUMVFS_REG } from './config-space.js';
import type { ContainedFs } from '../platform/contain.js';
import { heldValue } from './held-files.js';
import type { DeviceIds } from './host-model.js';
import { busDeviceRel, driverRel, groupRel, linkDriver, linkGroup, setUeventDriver, within, writeNetdevs } from './tree-writer.js';

export const ADDRESS_RE = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

/**
 * Reads and rewires a sysfs-shaped tree: any tree with sys/bus/pci/devices links to device
 * directories, whoever wrote it. Every path it returns is absolute, real (symlinks resolved) and
 * inside the root: a link that leads out of it throws OutsideRootError, and every change goes
 * through `files`, which refuses the same.
 */
export class SimTree {
  readonly root: string;
  readonly files: ContainedFs;

  constructor(root: string) {
    this.root = fs.realpathSync(root);
    this.files = within(this.root);
  }

  rel(abs: string): string {
    return path.relative(this.root, abs);
  }

  /** The real device directory of an address, or null when no such device exists. */
  deviceDir(address: string): string | null {
    if (!ADDRESS_RE.test(address)) return null;
    const dir = this.files.resolve(path.join(this.root, busDeviceRel(address)));
    return fs.existsSync(dir) ? dir : null;
  }

  addresses(): string[] {
    try {
      return fs.readdirSync(path.join(this.root, 'sys/bus/pci/devices')).filter((a) => ADDRESS_RE.test(a)).sort();
    } catch {
      return [];
    }
  }

  isDeviceDir(dir: string): boolean {
    return ADDRESS_RE.test(path.basename(dir)) && fs.existsSync(path.join(dir, 'vendor'));
  }

  /**
   * An attribute's value. A file a blocked write holds (a FIFO, held-files.ts) gives its value
   * from the hold: the simulated kernel's own reads must never wait on its own locks.
   */
  attr(dir: string, name: string): string | null {
    const file = path.join(dir, name);
    let fd: number;
    try {
      fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch {
      return null;
    }
    try {
      if (fs.fstatSync(fd).isFIFO()) return heldValue(this.root, file)?.trim() ?? null;
      return fs.readFileSync(fd, 'utf8').trim();
    } catch {
      return null;
    } finally {
      fs.closeSync(fd);
    }
  }

  hexAttr(dir: string, name: string, width: number): string {
    return (this.attr(dir, name) ?? '').replace(/^0x/i, '').toLowerCase().padStart(width, '0');
  }

  ids(dir: string): DeviceIds {
    return {
      vendor: this.hexAttr(dir, 'vendor', 4),
      device: this.hexAttr(dir, 'device', 4),
      subsystemVendor: this.hexAttr(dir, 'subsystem_vendor', 4),
      subsystemDevice: this.hexAttr(dir, 'subsystem_device', 4),
      class: this.hexAttr(dir, 'class', 6),
    };
  }

  driverOf(dir: string): string | null {
    try {
      return path.basename(fs.readlinkSync(path.join(dir, 'driver')));
    } catch {
      return null;
    }
  }

  groupOf(dir: string): number | null {
    try {
      return Number(path.basename(fs.readlinkSync(path.join(dir, 'iommu_group'))));
    } catch {
      return null;
    }
  }

  override(dir: string): string | null {
    const value = this.attr(dir, 'driver_override');
    return value === null || value === '(null)' || value === '' ? null : value;
  }

  isBridge(dir: string): boolean {
    const config = this.readConfig(dir);
    if (config && config.length > 0x0e) return (config.readUInt8(0x0e) & 0x7f) === 1;
    return this.hexAttr(dir, 'class', 6).startsWith('0604');
  }

  readConfig(dir: string): Buffer | null {
    try {
      return fs.readFileSync(path.join(dir, 'config'));
    } catch {
      return null;
    }
  }

  /** A PF's VFs by their virtfnN links; links (or the PF) another process removes meanwhile are left out. */
  virtfns(dir: string): Array<{ index: number; dir: string }> {
    const out: Array<{ index: number; dir: string }> = [];
    for (const name of readdirOrNone(dir)) {
      if (!/^virtfn\d+$/.test(name)) continue;
      try {
        fs.readlinkSync(path.join(dir, name));
        out.push({ index: Number(name.slice(6)), dir: this.files.resolve(path.join(dir, name)) });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    return out.sort((a, b) => a.index - b.index);
  }

  physfn(dir: string): string | null {
    try {
      fs.readlinkSync(path.join(dir, 'physfn'));
    } catch {
      return null;
    }
    return this.files.resolve(path.join(dir, 'physfn'));
  }

  /** The directory and every device directory nested under it (children of bridges), top-down. */
  subtree(dir: string): string[] {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (error) {
      // Removed meanwhile by another process (a VF its PF's SR-IOV disable took away): not part of it.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const out = [dir];
    for (const entry of entries) {
      if (entry.isDirectory() && ADDRESS_RE.test(entry.name)) out.push(...this.subtree(path.join(dir, entry.name)));
    }
    return out;
  }

  bind(dir: string, driver: string, netdevs: readonly string[]): void {
    linkDriver(this.root, this.rel(dir), path.basename(dir), driver);
    if (netdevs.length > 0) writeNetdevs(this.root, this.rel(dir), netdevs);
  }

  unbind(dir: string, driver: string): void {
    this.files.rm(path.join(dir, 'driver'));
    setUeventDriver(this.root, dir, null);
    this.files.rm(path.join(this.root, driverRel(driver), path.basename(dir)));
    this.files.rm(path.join(dir, 'net'), { recursive: true });
  }

  netdevNames(dir: string): string[] {
    try {
      return fs.readdirSync(path.join(dir, 'net'));
    } catch {
      return [];
    }
  }

  driverLoaded(name: string): boolean {
    return fs.existsSync(path.join(this.root, driverRel(name)));
  }

  /** Lowest group number not in use (the kernel allocates group ids from an IDA). */
  freeGroup(): number {
    const used = new Set(this.groups());
    let n = 0;
    while (used.has(n)) n++;
    return n;
  }

  groups(): number[] {
    try {
      return fs.readdirSync(path.join(this.root, 'sys/kernel/iommu_groups')).map(Number).filter(Number.isInteger);
    } catch {
      return [];
    }
  }

  groupMembers(group: number): string[] {
    try {
      return fs.readdirSync(path.join(this.root, groupRel(group), 'devices')).sort();
    } catch {
      return [];
    }
  }

  joinGroup(dir: string, group: number): void {
    linkGroup(this.root, this.rel(dir), path.basename(dir), group);
  }

  /** Leaves the group; a group left empty disappears. Returns whether it did. */
  leaveGroup(dir: string): boolean {
    const group = this.groupOf(dir);
    if (group === null) return false;
    this.files.rm(path.join(dir, 'iommu_group'));
    this.files.rm(path.join(this.root, groupRel(group), 'devices', path.basename(dir)));
    if (this.groupMembers(group).length === 0) {
      this.files.rm(path.join(this.root, groupRel(group)), { recursive: true });
      return true;
    }
    return false;
  }

  vfioNode(group: number): string {
    return path.join(this.root, 'dev/vfio', String(group));
  }

  /** Rewrites NumVFs and VF Enable in the PF's SR-IOV capability, as the kernel's iov code does. */
  setConfigNumVfs(dir: string, numVfs: number): void {
    const config = this.readConfig(dir);
    if (!config) return;
    const at = findExtCap(config, PCI_EXT_CAP_ID_SRIOV);
    if (at === null) return;
    config.writeUInt16LE(numVfs, at + SRIOV_NUMVFS_REG);
    config.writeUInt16LE(numVfs > 0 ? 0x0009 : 0, at + SRIOV_CTRL_REG);
    this.files.writeFile(path.join(dir, 'config'), config);
  }

  writeAttr(dir: string, name: string, content: string): void {
    this.files.writeFile(path.join(dir, name), content);
  }
}

function readdirOrNone(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}
