import { readdir, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import { tryParseAddress, type PciAddress } from '../core/address.js';
import { formatKey, pciKey } from '../core/device-key.js';
import { HostdevError } from '../core/errors.js';
import {
  SCSI_TYPES,
  type MdevDevice,
  type MdevParent,
  type MdevType,
  type NonPciInventory,
  type NonPciKind,
  type NvmeNamespace,
  type ScsiDevice,
  type UsbDevice,
} from '../core/nonpci-device.js';
import { readHead } from '../platform/bounded-read.js';
import { errnoOf } from './errno.js';
import type { SysfsLayout } from './paths.js';

/*
 * The inventory of USB devices, mediated devices (and their parents' types), NVMe namespaces and
 * SCSI devices, read from sysfs under the root. Every read is asynchronous (the event loop never
 * waits on sysfs), every file is read to a bound in size, and the whole read to a bound in time:
 * past it the read ends with HOSTDEV_TIMEOUT naming what it was reading. None of these files is
 * shown under a PCI device lock, so no reader process is needed for them.
 */

/** An attribute is a line or a few (an mdev type's description); a huge one is cut there. */
const ATTR_MAX_BYTES = 4096;

class Reads {
  readonly warnings: string[] = [];
  /** What is being read now: named by a timeout. */
  current = '';

  constructor(readonly layout: SysfsLayout) {}

  async attr(dir: string, name: string): Promise<string | null> {
    this.current = path.join(dir, name);
    try {
      return (await readHead(path.join(dir, name), ATTR_MAX_BYTES)).replace(/\n$/, '');
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') this.warnings.push(`${this.rel(path.join(dir, name))}: cannot read it: ${errnoOf(error)}`);
      return null;
    }
  }

  async list(dir: string): Promise<string[]> {
    this.current = dir;
    try {
      return (await readdir(dir)).sort();
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') this.warnings.push(`${this.rel(dir)}: cannot list it: ${errnoOf(error)}`);
      return [];
    }
  }

  async link(file: string): Promise<string | null> {
    this.current = file;
    try {
      return path.basename(await readlink(file));
    } catch {
      return null;
    }
  }

  /** The real directory an entry of a bus or class leads to, kept under the root; null (with a warning) otherwise. */
  async real(entry: string): Promise<string | null> {
    this.current = entry;
    try {
      const real = await realpath(entry);
      if (real !== this.layout.root && !real.startsWith(`${this.layout.root}${path.sep}`) && this.layout.root !== '/') {
        this.warnings.push(`${this.rel(entry)}: leads out of the root; skipped`);
        return null;
      }
      return real;
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') this.warnings.push(`${this.rel(entry)}: ${errnoOf(error)}`);
      return null;
    }
  }

  rel(file: string): string {
    return `/${path.relative(this.layout.root, file)}`;
  }
}

const trimmed = (text: string | null): string | null => (text === null ? null : text.trim() || null);
const decimal = (text: string | null): number | null => (text !== null && /^\s*[0-9]+\s*$/.test(text) ? Number(text) : null);
const hexId = (text: string | null, width: number): string | null =>
  text !== null && /^\s*(0x)?[0-9a-fA-F]+\s*$/.test(text) ? text.trim().replace(/^0x/i, '').toLowerCase().padStart(width, '0') : null;

/** The nearest PCI function above a device in the sysfs tree (its host controller or adapter). */
function pciAbove(real: string): PciAddress | null {
  const parts = real.split(path.sep);
  for (let i = parts.length - 1; i >= 0; i--) {
    const address = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(parts[i]!) ? tryParseAddress(parts[i]!) : null;
    if (address !== null) return address;
  }
  return null;
}

const USB_DEVICE = /^([0-9]+)-([0-9]+(?:\.[0-9]+)*)$/;

async function readUsb(reads: Reads): Promise<UsbDevice[]> {
  const dir = path.join(reads.layout.root, 'sys/bus/usb/devices');
  const entries = await reads.list(dir);
  const devices: UsbDevice[] = [];
  for (const name of entries) {
    const match = USB_DEVICE.exec(name);
    if (match === null) continue;
    const real = await reads.real(path.join(dir, name));
    if (real === null) continue;
    const bus = Number(match[1]);
    const ports = match[2]!.split('.').map(Number);
    if (bus < 1 || bus > 127 || ports.some((port) => port < 1 || port > 31) || ports.length > 7) {
      reads.warnings.push(`/sys/bus/usb/devices/${name}: not a USB port path hostdev can name; skipped`);
      continue;
    }
    const interfaceDrivers: (string | null)[] = [];
    for (const iface of entries.filter((entry) => entry.startsWith(`${name}:`))) interfaceDrivers.push(await reads.link(path.join(dir, iface, 'driver')));
    devices.push({
      kind: 'usb',
      key: formatKey({ kind: 'usb', bus, ports }),
      port: match[2]!,
      bus,
      devnum: decimal(await reads.attr(real, 'devnum')),
      vendor: hexId(await reads.attr(real, 'idVendor'), 4),
      product: hexId(await reads.attr(real, 'idProduct'), 4),
      manufacturerName: trimmed(await reads.attr(real, 'manufacturer')),
      productName: trimmed(await reads.attr(real, 'product')),
      serial: trimmed(await reads.attr(real, 'serial')),
      deviceClass: hexId(await reads.attr(real, 'bDeviceClass'), 2),
      speed: trimmed(await reads.attr(real, 'speed')),
      interfaceDrivers,
      controller: pciAbove(path.dirname(real)),
    });
  }
  return devices;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function readMdevParents(reads: Reads): Promise<MdevParent[]> {
  const dir = path.join(reads.layout.root, 'sys/class/mdev_bus');
  const parents: MdevParent[] = [];
  for (const name of await reads.list(dir)) {
    const real = await reads.real(path.join(dir, name));
    if (real === null) continue;
    const typesDir = path.join(real, 'mdev_supported_types');
    const types: MdevType[] = [];
    for (const id of await reads.list(typesDir)) {
      const typeDir = path.join(typesDir, id);
      types.push({
        id,
        name: trimmed(await reads.attr(typeDir, 'name')),
        description: trimmed(await reads.attr(typeDir, 'description')),
        availableInstances: decimal(await reads.attr(typeDir, 'available_instances')),
        deviceApi: trimmed(await reads.attr(typeDir, 'device_api')),
        devices: (await reads.list(path.join(typeDir, 'devices'))).filter((uuid) => UUID.test(uuid)),
      });
    }
    const parent = path.basename(real);
    const address = tryParseAddress(parent);
    parents.push({ name: parent, key: address === null ? null : pciKey(address), types });
  }
  return parents;
}

async function readMdevs(reads: Reads): Promise<MdevDevice[]> {
  const dir = path.join(reads.layout.root, 'sys/bus/mdev/devices');
  const devices: MdevDevice[] = [];
  for (const uuid of await reads.list(dir)) {
    if (!UUID.test(uuid)) continue;
    const real = await reads.real(path.join(dir, uuid));
    if (real === null) continue;
    const type = await reads.link(path.join(real, 'mdev_type'));
    const group = await reads.link(path.join(real, 'iommu_group'));
    devices.push({
      kind: 'mdev',
      key: formatKey({ kind: 'mdev', uuid }),
      uuid,
      parent: path.basename(path.dirname(real)),
      type,
      deviceApi: type === null ? null : trimmed(await reads.attr(path.join(real, 'mdev_type'), 'device_api')),
      driver: await reads.link(path.join(real, 'driver')),
      iommuGroup: decimal(group),
    });
  }
  return devices;
}

const NAMESPACE = /^nvme([0-9]+)(?:c[0-9]+)?n([0-9]+)$/;

async function readNvme(reads: Reads): Promise<NvmeNamespace[]> {
  const dir = path.join(reads.layout.root, 'sys/class/nvme');
  const namespaces: NvmeNamespace[] = [];
  for (const instance of await reads.list(dir)) {
    if (!/^nvme[0-9]+$/.test(instance)) continue;
    const real = await reads.real(path.join(dir, instance));
    if (real === null) continue;
    const transport = trimmed(await reads.attr(real, 'transport'));
    const controller = tryParseAddress(trimmed(await reads.attr(real, 'address')) ?? '');
    // Fabrics controllers (tcp, rdma, fc, loop) are no PCI device: nothing to give a VM.
    if (transport !== 'pcie' || controller === null) continue;
    const model = trimmed(await reads.attr(real, 'model'));
    const serial = trimmed(await reads.attr(real, 'serial'));
    for (const name of await reads.list(real)) {
      const match = NAMESPACE.exec(name);
      if (match === null) continue;
      const nsid = decimal(await reads.attr(path.join(real, name), 'nsid')) ?? Number(match[2]);
      if (nsid < 1 || nsid > 0xfffffffe) continue;
      namespaces.push({
        kind: 'nvme',
        key: formatKey({ kind: 'nvme', controller, namespace: nsid }),
        controller,
        instance,
        nsid,
        blockDevice: `nvme${match[1]}n${match[2]}`,
        sectors: decimal(await reads.attr(path.join(real, name), 'size')),
        model,
        serial,
      });
    }
  }
  return namespaces;
}

const SCSI_ADDRESS = /^([0-9]+):([0-9]+):([0-9]+):([0-9]+)$/;

async function readScsi(reads: Reads): Promise<ScsiDevice[]> {
  const dir = path.join(reads.layout.root, 'sys/bus/scsi/devices');
  const devices: ScsiDevice[] = [];
  for (const name of await reads.list(dir)) {
    const match = SCSI_ADDRESS.exec(name);
    if (match === null) continue;
    const real = await reads.real(path.join(dir, name));
    if (real === null) continue;
    const [host, bus, target, lun] = match.slice(1).map(Number) as [number, number, number, number];
    const type = decimal(await reads.attr(real, 'type'));
    devices.push({
      kind: 'scsi',
      key: formatKey({ kind: 'scsi', host, bus, target, lun }),
      host,
      bus,
      target,
      lun,
      vendor: trimmed(await reads.attr(real, 'vendor')),
      model: trimmed(await reads.attr(real, 'model')),
      rev: trimmed(await reads.attr(real, 'rev')),
      type,
      typeName: type === null ? null : (SCSI_TYPES[type] ?? `type ${type}`),
      sg: (await reads.list(path.join(real, 'scsi_generic'))).find((entry) => /^sg[0-9]+$/.test(entry)) ?? null,
      blockDevice: (await reads.list(path.join(real, 'block')))[0] ?? null,
      driver: await reads.link(path.join(real, 'driver')),
      adapter: pciAbove(real),
    });
  }
  return devices;
}

const byKey = <T extends { key: string }>(list: T[]): T[] => list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

/**
 * The devices of `kinds` under the root (the others' lists are empty). At `timeoutMs` the read
 * ends with HOSTDEV_TIMEOUT naming the file it was at.
 */
export async function readNonPciInventory(layout: SysfsLayout, kinds: readonly NonPciKind[], timeoutMs: number): Promise<NonPciInventory> {
  const reads = new Reads(layout);
  const wanted = new Set(kinds);
  const read = (async (): Promise<NonPciInventory> => {
    const usb = wanted.has('usb') ? await readUsb(reads) : [];
    const mdevParents = wanted.has('mdev') ? await readMdevParents(reads) : [];
    const mdev = wanted.has('mdev') ? await readMdevs(reads) : [];
    const nvme = wanted.has('nvme') ? await readNvme(reads) : [];
    const scsi = wanted.has('scsi') ? await readScsi(reads) : [];
    return { usb: byKey(usb), mdevParents, mdev: byKey(mdev), nvme: byKey(nvme), scsi: byKey(scsi), warnings: reads.warnings };
  })();
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(
        new HostdevError('HOSTDEV_TIMEOUT', `reading ${kinds.join(', ')} devices did not finish within ${timeoutMs} ms (at ${reads.rel(reads.current)})`, {
          hint: 'The kernel held a sysfs read up; try again, or give a longer bound with HOSTDEV_READ_TIMEOUT_MS.',
          details: { file: reads.rel(reads.current), timeoutMs },
        }),
      );
    }, timeoutMs);
  });
  try {
    return await Promise.race([read, bound]);
  } finally {
    clearTimeout(timer);
  }
}
