import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { XMLBuilder } from 'fast-xml-parser';
import { addressParts, nodedevName, type PciAddress } from '../core/address.js';
import type { Inventory, PciDevice } from '../core/device.js';
import type { DeviceKey } from '../core/device-key.js';
import { groupMembers } from '../core/iommu.js';
import type { MdevDevice, NonPciDevice, ScsiDevice, UsbDevice } from '../core/nonpci-device.js';
import { HostdevError } from '../core/errors.js';
import type { SysfsLayout } from '../sysfs/paths.js';
import type { PcieLink } from '../sysfs/config-space.js';

/*
 * `show KEY --xml`: a device the way `virsh nodedev-dumpxml` prints it (libvirt's node device XML,
 * docs/formatnode.rst): <device> with name, path, parent, driver and one capability element.
 * Built as data and written by a maintained XML library (fast-xml-parser's builder).
 */

type XmlNode = Record<string, unknown>;

/** libvirt's node device names: subsystem_sysname with every other character than [A-Za-z0-9] made "_". */
function nodeName(subsystem: string, sysname: string): string {
  return `${subsystem}_${sysname.replace(/[^A-Za-z0-9]/g, '_')}`;
}

const hex = (value: number, width: number): string => `0x${value.toString(16).padStart(width, '0')}`;

/** <address domain='0x0000' bus='0x02' slot='0x10' function='0x0'/> */
function addressElement(address: PciAddress): XmlNode {
  const parts = addressParts(address);
  return { '@_domain': hex(parts.domain, 4), '@_bus': hex(parts.bus, 2), '@_slot': hex(parts.slot, 2), '@_function': hex(parts.function, 1) };
}

function textWithId(id: string | null, text: string | null): XmlNode {
  return { '@_id': id === null ? '' : `0x${id}`, ...(text === null ? {} : { '#text': text }) };
}

function pciCapability(device: PciDevice, inventory: Inventory, links: readonly PcieLink[]): XmlNode {
  const parts = addressParts(device.address);
  const capability: XmlNode = {
    '@_type': 'pci',
    class: device.class === null ? undefined : `0x${device.class}${device.progIf ?? '00'}`,
    domain: parts.domain,
    bus: parts.bus,
    slot: parts.slot,
    function: parts.function,
    product: textWithId(device.device, device.deviceName),
    vendor: textWithId(device.vendor, device.vendorName),
  };
  const capabilities: XmlNode[] = [];
  if (device.physfn !== null) capabilities.push({ '@_type': 'phys_function', address: addressElement(device.physfn) });
  if (device.sriov !== null) capabilities.push({ '@_type': 'virt_functions', '@_maxCount': device.sriov.totalVfs, address: device.virtfns.map(addressElement) });
  if (capabilities.length > 0) capability['capability'] = capabilities;
  if (device.iommuGroup !== null) {
    const members = groupMembers(inventory, device.address);
    capability['iommuGroup'] = { '@_number': device.iommuGroup, address: (members.length > 0 ? members.map((m) => m.address) : [device.address]).map(addressElement) };
  }
  if (device.numaNode !== null) capability['numa'] = { '@_node': device.numaNode };
  if (links.length > 0) {
    capability['pci-express'] = {
      link: links.map((link) => ({
        '@_validity': link.validity,
        ...(link.port === null ? {} : { '@_port': link.port }),
        ...(link.speed === null ? {} : { '@_speed': link.speed }),
        '@_width': link.width,
      })),
    };
  }
  return capability;
}

function usbCapability(device: UsbDevice): XmlNode {
  return {
    '@_type': 'usb_device',
    bus: device.bus,
    device: device.devnum ?? undefined,
    product: textWithId(device.product, device.productName),
    vendor: textWithId(device.vendor, device.manufacturerName),
  };
}

function mdevCapability(device: MdevDevice): XmlNode {
  return {
    '@_type': 'mdev',
    type: { '@_id': device.type ?? '' },
    uuid: device.uuid,
    parent_addr: device.parent,
    iommuGroup: device.iommuGroup === null ? undefined : { '@_number': device.iommuGroup },
  };
}

function scsiCapability(device: ScsiDevice): XmlNode {
  return { '@_type': 'scsi', host: device.host, bus: device.bus, target: device.target, lun: device.lun, type: device.typeName ?? undefined };
}

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', format: true, indentBy: '  ', suppressEmptyNode: true });

/** The element, its children in libvirt's order: name, path, devnode, parent, driver, capability. */
function deviceXml(fields: { name: string; path: string; devnode?: string; parent: string; driver: string | null; capability: XmlNode }): string {
  const device: XmlNode = {
    name: fields.name,
    path: fields.path,
    ...(fields.devnode === undefined ? {} : { devnode: { '@_type': 'dev', '#text': fields.devnode } }),
    parent: fields.parent,
    ...(fields.driver === null ? {} : { driver: { name: fields.driver } }),
    capability: fields.capability,
  };
  return (builder.build({ device }) as string).trimEnd();
}

/** Where sysfs has the device, as the host names it ("/sys/devices/..."). */
async function sysPath(layout: SysfsLayout, entry: string): Promise<string> {
  const real = await realpath(path.join(layout.root, entry));
  return `/${path.relative(layout.root, real)}`;
}

/** `links`: the PCI Express link's cap and sta (config space), none for a conventional PCI function. */
export async function pciNodedevXml(layout: SysfsLayout, inventory: Inventory, device: PciDevice, links: readonly PcieLink[]): Promise<string> {
  return deviceXml({
    name: nodedevName(device.address),
    path: await sysPath(layout, `sys/bus/pci/devices/${device.address}`),
    parent: device.parent === null ? 'computer' : nodedevName(device.parent),
    driver: device.driver,
    capability: pciCapability(device, inventory, links),
  });
}

/** USB, mdev and SCSI devices; libvirt has no node device for an NVMe namespace (its controller is the PCI device). */
export async function nonPciNodedevXml(layout: SysfsLayout, device: NonPciDevice): Promise<string> {
  switch (device.kind) {
    case 'usb': {
      const sysname = `${device.bus}-${device.port}`;
      const parentName = device.port.includes('.') ? `${device.bus}-${device.port.slice(0, device.port.lastIndexOf('.'))}` : `usb${device.bus}`;
      const pad = (n: number): string => String(n).padStart(3, '0');
      return deviceXml({
        name: nodeName('usb', sysname),
        path: await sysPath(layout, `sys/bus/usb/devices/${sysname}`),
        ...(device.devnum === null ? {} : { devnode: `/dev/bus/usb/${pad(device.bus)}/${pad(device.devnum)}` }),
        parent: nodeName('usb', parentName),
        driver: 'usb',
        capability: usbCapability(device),
      });
    }
    case 'mdev':
      return deviceXml({
        name: `mdev_${device.uuid.replace(/-/g, '_')}_${device.parent.replace(/[^A-Za-z0-9]/g, '_')}`,
        path: await sysPath(layout, `sys/bus/mdev/devices/${device.uuid}`),
        parent: /^[0-9a-f]{4}:/.test(device.parent) ? nodedevName(device.parent as PciAddress) : device.parent,
        driver: device.driver,
        capability: mdevCapability(device),
      });
    case 'scsi': {
      const sysname = `${device.host}:${device.bus}:${device.target}:${device.lun}`;
      return deviceXml({
        name: nodeName('scsi', sysname),
        path: await sysPath(layout, `sys/bus/scsi/devices/${sysname}`),
        parent: nodeName('scsi', `target${device.host}:${device.bus}:${device.target}`),
        driver: device.driver,
        capability: scsiCapability(device),
      });
    }
    case 'nvme':
      throw new HostdevError('HOSTDEV_USAGE', `libvirt has no node device for an NVMe namespace (${device.key as DeviceKey})`, {
        hint: `Show its controller as XML: hostdev show pci:${device.controller} --xml`,
        details: { key: device.key },
      });
  }
}
