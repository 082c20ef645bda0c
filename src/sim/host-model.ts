import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SIMULATED_HOST_ID_FILE } from '../core/host-identity.js';
import { BOOT_ID_FILE } from '../core/boot.js';
import type { BelowSpec } from './nonpci-tree.js';
import type { DriverIdSpec, MdevParentSpec } from './spec.js';

/**
 * What the simulated host knows beyond the sysfs files, kept in ROOT/.hostdev-sim/host.json:
 * the modules it can load and their ID tables, which interfaces a device shows on which driver,
 * how a PF's VFs look. Written once by the builder; the kernel's changing state lives apart.
 */
const SIM_DIR = '.hostdev-sim';
const HOST_FILE = 'host.json';

/** An ID table entry, normalised: lower-case hex without 0x; absent = any. */
export type DriverId = DriverIdSpec;

export interface KnownDriver {
  readonly ids: readonly DriverId[];
  readonly loaded: boolean;
}

export interface VfTemplate {
  readonly numaNode: number;
  readonly flr: boolean;
  readonly resetMethods: readonly string[];
  /** "{pf}v{n}" style, substituted when the VF is on a driver other than vfio-pci. */
  readonly netdev: string | null;
  readonly pfNetdev: string | null;
}

export interface HostModel {
  readonly version: 1;
  readonly iommu: boolean;
  /** In registration order: the order probe tries them. */
  readonly drivers: Readonly<Record<string, KnownDriver>>;
  /** Interfaces a device exposes while bound to `driver`. */
  readonly netdevs: Readonly<Record<string, { readonly driver: string; readonly names: readonly string[] }>>;
  readonly vfTemplates: Readonly<Record<string, VfTemplate>>;
  /** By PCI address: what the function's driver shows below it while bound (USB buses, NVMe namespaces, a SCSI host, mdev types). */
  readonly below?: Readonly<Record<string, BelowSpec>>;
  /** By name: the mdev parents that are no PCI function (mtty), with their types. */
  readonly virtualMdev?: Readonly<Record<string, Omit<MdevParentSpec, 'devices'>>>;
}

/** What the model knows of an mdev parent, by its name (a PCI address, or a virtual parent's name). */
export function mdevParentOf(model: HostModel | null, parent: string): Omit<MdevParentSpec, 'devices'> | undefined {
  return model?.below?.[parent]?.mdev ?? model?.virtualMdev?.[parent];
}

/** A host model; `below` only when some function has something below it. */
export function makeHostModel(
  fields: Pick<HostModel, 'iommu' | 'drivers' | 'netdevs' | 'vfTemplates' | 'virtualMdev'> & {
    readonly below: Readonly<Record<string, BelowSpec>>;
  },
): HostModel {
  const { below, virtualMdev, ...rest } = fields;
  return {
    version: 1,
    ...rest,
    ...(Object.keys(below).length > 0 ? { below } : {}),
    ...(virtualMdev !== undefined && Object.keys(virtualMdev).length > 0 ? { virtualMdev } : {}),
  };
}

export function simDir(root: string): string {
  return path.join(root, SIM_DIR);
}

export function isSimulatedTree(root: string): boolean {
  return fs.existsSync(path.join(simDir(root), HOST_FILE));
}

export function writeHostModel(root: string, model: HostModel): void {
  fs.mkdirSync(simDir(root), { recursive: true });
  const file = path.join(simDir(root), HOST_FILE);
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(model, null, 1)}\n`);
  fs.renameSync(`${file}.tmp`, file);
  // The tree is a host of its own: a state database opened for it records this id (see core/host-identity.ts).
  const id = path.join(root, SIMULATED_HOST_ID_FILE);
  if (!fs.existsSync(id)) fs.writeFileSync(id, `${randomUUID()}\n`);
  if (!fs.existsSync(path.join(root, BOOT_ID_FILE))) newBoot(root);
}

/** A new boot id for the simulated host (Linux makes one at every boot): the tree's /proc/sys/kernel/random/boot_id. */
export function newBoot(root: string): string {
  const file = path.join(root, BOOT_ID_FILE);
  const id = randomUUID();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(`${file}.tmp`, `${id}\n`);
  fs.renameSync(`${file}.tmp`, file);
  return id;
}

export function readHostModel(root: string): HostModel | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(simDir(root), HOST_FILE), 'utf8')) as HostModel;
  } catch {
    return null;
  }
}

export interface DeviceIds {
  readonly vendor: string;
  readonly device: string;
  readonly subsystemVendor: string;
  readonly subsystemDevice: string;
  readonly class: string;
}

/** pci_match_one_device: every present field equal, class under its mask. */
export function idMatches(id: DriverId, dev: DeviceIds): boolean {
  if (id.vendor !== undefined && id.vendor !== dev.vendor) return false;
  if (id.device !== undefined && id.device !== dev.device) return false;
  if (id.subsystemVendor !== undefined && id.subsystemVendor !== dev.subsystemVendor) return false;
  if (id.subsystemDevice !== undefined && id.subsystemDevice !== dev.subsystemDevice) return false;
  if (id.class !== undefined) {
    const mask = Number.parseInt(id.classMask ?? 'ffffff', 16);
    if ((Number.parseInt(id.class, 16) & mask) !== (Number.parseInt(dev.class, 16) & mask)) return false;
  }
  return true;
}

export function normHex(value: string, width: number): string {
  return value.replace(/^0x/i, '').toLowerCase().padStart(width, '0');
}
