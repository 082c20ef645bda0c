import fs from 'node:fs';
import path from 'node:path';
import { readHeadSync } from '../platform/bounded-read.js';
import { writeBelow, writeMdevs, type BelowSpec } from './nonpci-tree.js';
import { MDEV_FIXED_FILES, type MdevParentSpec, type NvmeSpec, type ScsiDeviceSpec, type ScsiHostSpec, type UsbBusSpec, type UsbDeviceSpec } from './spec.js';

/*
 * `sim snapshot` of what hangs below a PCI function (USB buses, mdev types and mdevs, NVMe
 * namespaces, SCSI hosts): read from the source as specs, then written by the builder's own
 * writers, so a snapshot is laid out exactly as a built host is.
 */

const ATTR_MAX_BYTES = 4096;

function attr(dir: string, name: string): string | null {
  try {
    return readHeadSync(path.join(dir, name), ATTR_MAX_BYTES).replace(/\n$/, '');
  } catch {
    return null;
  }
}

function subdirs(dir: string, pattern: RegExp): string[] {
  try {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && pattern.test(entry.name))
      .map((entry) => entry.name)
      .sort();
  } catch {
    return [];
  }
}

function linkName(file: string): string | null {
  try {
    return path.basename(fs.readlinkSync(file));
  } catch {
    return null;
  }
}

const printable = (text: string | null): string | undefined => (text === null ? undefined : text.replace(/[^\x20-\x7e]/g, '?').slice(0, 255));

function usbDevices(dir: string, bus: number, out: UsbDeviceSpec[]): void {
  for (const name of subdirs(dir, new RegExp(`^${bus}-[0-9]+(\\.[0-9]+)*$`))) {
    const here = path.join(dir, name);
    const interfaces = subdirs(here, /:[0-9]+\.[0-9]+$/).map((ifName) => ({
      class: (attr(path.join(here, ifName), 'bInterfaceClass') ?? '00').padStart(2, '0'),
      driver: linkName(path.join(here, ifName, 'driver')),
    }));
    const devnum = Number(attr(here, 'devnum'));
    const manufacturer = printable(attr(here, 'manufacturer'));
    const productName = printable(attr(here, 'product'));
    const serial = printable(attr(here, 'serial'));
    out.push({
      port: name.slice(name.indexOf('-') + 1),
      vendor: (attr(here, 'idVendor') ?? '0000').padStart(4, '0'),
      product: (attr(here, 'idProduct') ?? '0000').padStart(4, '0'),
      ...(Number.isInteger(devnum) && devnum >= 2 && devnum <= 127 ? { devnum } : {}),
      ...(manufacturer === undefined ? {} : { manufacturer }),
      ...(productName === undefined ? {} : { productName }),
      ...(serial === undefined ? {} : { serial }),
      deviceClass: (attr(here, 'bDeviceClass') ?? '00').padStart(2, '0'),
      interfaces,
    });
    usbDevices(here, bus, out);
  }
}

function usbBuses(dir: string): UsbBusSpec[] {
  return subdirs(dir, /^usb[0-9]+$/).map((name) => {
    const bus = Number(name.slice(3));
    const devices: UsbDeviceSpec[] = [];
    usbDevices(path.join(dir, name), bus, devices);
    const speed = Number(attr(path.join(dir, name), 'speed'));
    return { bus, ...(Number.isInteger(speed) ? { speed } : {}), devices };
  });
}

const UUID_DIR = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function mdevParent(dir: string): MdevParentSpec | null {
  const typesDir = path.join(dir, 'mdev_supported_types');
  const ids = subdirs(typesDir, /^[A-Za-z0-9_.-]+$/);
  if (ids.length === 0) return null;
  const devices = subdirs(dir, UUID_DIR).flatMap((uuid) => {
    const type = linkName(path.join(dir, uuid, 'mdev_type'));
    return type === null ? [] : [{ uuid, type, driver: linkName(path.join(dir, uuid, 'driver')) }];
  });
  const types = ids.map((id) => {
    const typeDir = path.join(typesDir, id);
    const made = devices.filter((d) => d.type === id).length;
    const description = attr(typeDir, 'description');
    const deviceApi = attr(typeDir, 'device_api');
    return {
      id,
      name: printable(attr(typeDir, 'name')) ?? id,
      ...(description === null ? {} : { description }),
      // the writer counts the mdevs it makes off again
      availableInstances: (Number(attr(typeDir, 'available_instances')) || 0) + made,
      ...(deviceApi === null ? {} : { deviceApi }),
      ...attributesOf(dir, devices.find((d) => d.type === id)?.uuid),
    };
  });
  const driver = devices.find((d) => d.driver !== null)?.driver ?? 'vfio_mdev';
  return { driver, types, devices: devices.map(({ uuid, type }) => ({ uuid, type })) };
}

/** A type's attributes, as one of its mdevs shows them (a type with no mdev shows none). */
function attributesOf(parentDir: string, uuid: string | undefined): { attributes?: string[] } {
  if (uuid === undefined) return {};
  const names = fs
    .readdirSync(path.join(parentDir, uuid), { withFileTypes: true })
    .filter((entry) => entry.isFile() && !MDEV_FIXED_FILES.has(entry.name))
    .map((entry) => entry.name)
    .sort();
  return names.length === 0 ? {} : { attributes: names };
}

function nvmeController(dir: string): NvmeSpec | null {
  const [name] = subdirs(path.join(dir, 'nvme'), /^nvme[0-9]+$/);
  if (name === undefined) return null;
  const ctrl = path.join(dir, 'nvme', name);
  const namespaces = subdirs(ctrl, new RegExp(`^nvme[0-9]+(c[0-9]+)?n[0-9]+$`)).map((ns) => ({
    nsid: Number(attr(path.join(ctrl, ns), 'nsid') ?? /n([0-9]+)$/.exec(ns)![1]),
    sectors: Number(attr(path.join(ctrl, ns), 'size') ?? '0') || 0,
  }));
  const model = printable(attr(ctrl, 'model')?.trim() ?? null);
  const serial = printable(attr(ctrl, 'serial')?.trim() ?? null);
  return { instance: Number(name.slice(4)), ...(model === undefined ? {} : { model }), ...(serial === undefined ? {} : { serial }), namespaces };
}

function scsiHosts(dir: string): ScsiHostSpec[] {
  return subdirs(dir, /^host[0-9]+$/).map((hostName) => {
    const host = Number(hostName.slice(4));
    const devices: ScsiDeviceSpec[] = [];
    for (const target of subdirs(path.join(dir, hostName), /^target[0-9]+:[0-9]+:[0-9]+$/)) {
      for (const name of subdirs(path.join(dir, hostName, target), /^[0-9]+:[0-9]+:[0-9]+:[0-9]+$/)) {
        const here = path.join(dir, hostName, target, name);
        const [, channel, targetId, lun] = name.split(':').map(Number) as [number, number, number, number];
        const sg = subdirs(path.join(here, 'scsi_generic'), /^sg[0-9]+$/)[0];
        if (sg === undefined) continue;
        const [block] = subdirs(path.join(here, 'block'), /^(sd[a-z]{1,3}|sr[0-9]{1,3})$/);
        const rev = printable(attr(here, 'rev')?.trim() ?? null);
        devices.push({
          channel,
          target: targetId,
          lun,
          type: Number(attr(here, 'type')) || 0,
          vendor: (printable(attr(here, 'vendor')?.trim() ?? null) ?? '').slice(0, 8),
          model: (printable(attr(here, 'model')?.trim() ?? null) ?? '').slice(0, 16),
          ...(rev === undefined ? {} : { rev: rev.slice(0, 4) }),
          sg: Number(sg.slice(2)),
          ...(block === undefined ? {} : { block }),
        });
      }
    }
    return { host, devices };
  });
}

/**
 * Copies what hangs below one PCI function of the source (`sourceDir`, its real directory) to the
 * function at `devPath` of the tree being written, and returns it as what the function's driver
 * shows (null: nothing, or no driver to show it). The mdevs get IOMMU groups from `allocGroup`.
 */
export function copyBelowFunction(sourceDir: string, destRoot: string, devPath: string, address: string, driver: string | null, allocGroup: () => number | null): BelowSpec | null {
  const buses = usbBuses(sourceDir);
  const nvme = nvmeController(sourceDir);
  // one SCSI host per adapter function is what the simulator models
  const [scsi] = scsiHosts(sourceDir);
  const mdev = mdevParent(sourceDir);
  if (driver === null || (buses.length === 0 && nvme === null && scsi === undefined && mdev === null)) return null;
  const types = mdev === null ? null : { driver: mdev.driver, types: mdev.types };
  const below: BelowSpec = {
    driver,
    ...(buses.length === 0 ? {} : { usbBuses: buses }),
    ...(nvme === null ? {} : { nvme }),
    ...(scsi === undefined ? {} : { scsi }),
    ...(types === null ? {} : { mdev: types }),
  };
  writeBelow(destRoot, devPath, address, below);
  if (mdev !== null) writeMdevs(destRoot, devPath, address, mdev, allocGroup);
  return below;
}
