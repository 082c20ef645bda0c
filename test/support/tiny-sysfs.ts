import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * A hand-written sysfs fragment for reader tests that need files the simulator would never
 * write (garbage, holes, dangling links). Simulated hosts proper come from src/sim.
 */
export interface TinyDevice {
  readonly address: string;
  /** Upstream bridge address; the device sits on the root bus when absent. */
  readonly parent?: string;
  /** Attribute files; a Uint8Array is written as binary (config). */
  readonly files?: Readonly<Record<string, string | Uint8Array>>;
  /** Links from the device directory, e.g. { driver: '../../../bus/pci/drivers/igb' }. */
  readonly links?: Readonly<Record<string, string>>;
  /** Names that are created as directories, e.g. to make a file unreadable (EISDIR). */
  readonly dirs?: readonly string[];
}

export function tinyRoot(): string {
  const root = mkdtempSync(path.join(tmpdir(), 'hostdev-tiny-'));
  mkdirSync(path.join(root, 'sys/bus/pci/devices'), { recursive: true });
  mkdirSync(path.join(root, 'sys/bus/pci/drivers'), { recursive: true });
  mkdirSync(path.join(root, 'sys/kernel/iommu_groups'), { recursive: true });
  return root;
}

/** Writes devices in order (parents first) under sys/devices/pci0000:00 and links them on the bus. */
export function writeTinyDevices(root: string, devices: readonly TinyDevice[]): void {
  const dirs = new Map<string, string>();
  for (const device of devices) {
    const parentDir = device.parent ? dirs.get(device.parent) : 'devices/pci0000:00';
    if (parentDir === undefined) throw new Error(`parent ${device.parent} must come first`);
    const rel = `${parentDir}/${device.address}`;
    dirs.set(device.address, rel);
    const dir = path.join(root, 'sys', rel);
    mkdirSync(dir, { recursive: true });
    for (const [name, content] of Object.entries(device.files ?? {})) writeFileSync(path.join(dir, name), content);
    for (const [name, target] of Object.entries(device.links ?? {})) symlinkSync(target, path.join(dir, name));
    for (const name of device.dirs ?? []) mkdirSync(path.join(dir, name));
    symlinkSync(`../../../${rel}`, path.join(root, 'sys/bus/pci/devices', device.address));
  }
}

export function tinyDriver(root: string, name: string): void {
  mkdirSync(path.join(root, 'sys/bus/pci/drivers', name), { recursive: true });
}

export function tinyGroup(root: string, group: number): void {
  mkdirSync(path.join(root, 'sys/kernel/iommu_groups', String(group), 'devices'), { recursive: true });
}

/**
 * Config space with a PCIe capability at 0x40, FLR in DevCap when asked; revision and subsystem
 * ids default to what endpointFiles writes.
 */
export function configSpace(options: {
  vendor: number;
  device: number;
  headerType?: number;
  flr?: boolean;
  revision?: number;
  subsystemDevice?: number;
}): Uint8Array {
  const config = new Uint8Array(256);
  const view = new DataView(config.buffer);
  view.setUint16(0, options.vendor, true);
  view.setUint16(2, options.device, true);
  config[0x08] = options.revision ?? 1;
  view.setUint16(0x2c, options.vendor, true);
  view.setUint16(0x2e, options.subsystemDevice ?? 0, true);
  view.setUint16(6, 0x0010, true); // status: capability list
  config[0x0e] = options.headerType ?? 0;
  config[0x34] = 0x40;
  config[0x40] = 0x10; // PCI Express
  config[0x41] = 0x00;
  view.setUint32(0x44, options.flr ? 1 << 28 : 0, true);
  return config;
}

/** The usual attribute files of an endpoint. */
export function endpointFiles(vendor: string, device: string, pciClass: string): Record<string, string> {
  return {
    vendor: `0x${vendor}\n`,
    device: `0x${device}\n`,
    class: `0x${pciClass}\n`,
    subsystem_vendor: `0x${vendor}\n`,
    subsystem_device: '0x0000\n',
    revision: '0x01\n',
    driver_override: '(null)\n',
    numa_node: '-1\n',
  };
}
