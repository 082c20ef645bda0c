import { formatAddress, type PciAddress } from './address.js';
import { formatKey, isUuid, keyKind, type DeviceKey } from './device-key.js';
import { scsiManaged, type ScsiHostdevOptions } from './device-entry.js';
import { HostdevError } from './errors.js';
import type { UsbDevice } from './nonpci-device.js';

/*
 * The devices of a libvirt domain XML (formatdomain: <hostdev mode='subsystem'> of type pci, usb,
 * scsi and mdev, and <disk type='nvme'>) as the references assign and release take. Works on an
 * element tree the front end parsed; everything else in the document is left alone.
 */

/** One XML element as the parser gave it: attributes, child elements in order, and its text. */
export interface XmlElement {
  readonly name: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly children: readonly XmlElement[];
  readonly text: string;
}

/** A device element of the document, before the host is asked (a USB device named by bus and devnum needs it). */
export type DomainXmlDevice =
  | { readonly element: string; readonly kind: 'pci'; readonly address: PciAddress; readonly managed: boolean }
  | {
      readonly element: string;
      readonly kind: 'key';
      readonly key: DeviceKey;
      readonly managed: boolean;
      readonly shareable?: boolean;
      /** A SCSI hostdev's <readonly/>, sgio and rawio, when it has any. */
      readonly scsi?: ScsiHostdevOptions;
    }
  | { readonly element: string; readonly kind: 'usb'; readonly vendor: string | null; readonly product: string | null; readonly bus: number | null; readonly device: number | null };

export interface DomainXmlDevices {
  /** The domain's <name>; null for a bare <hostdev> or <disk> (virsh attach-device's file). */
  readonly name: string | null;
  readonly devices: readonly DomainXmlDevice[];
}

/** What assign and release take: references (PCI addresses, keys, usb:VENDOR:PRODUCT) and the unmanaged PCI functions. */
export interface DomainXmlRequest {
  readonly refs: readonly string[];
  readonly unmanaged: readonly PciAddress[];
  /** SCSI devices whose <hostdev> has <shareable/>. */
  readonly shareable: readonly DeviceKey[];
  /** SCSI devices whose <hostdev> has <readonly/>, sgio or rawio='yes', with them. */
  readonly scsiOptions: Readonly<Record<string, ScsiHostdevOptions>>;
}

function xmlError(message: string, element: string | null, hint: string): HostdevError {
  return new HostdevError('HOSTDEV_DOMAIN_XML', message, { hint, details: element === null ? {} : { element } });
}

const child = (element: XmlElement, name: string): XmlElement | undefined => element.children.find((c) => c.name === name);

/** The element as a message names it: its name and the attributes that say what it is. */
function describe(element: XmlElement, index: number): string {
  const shown = ['mode', 'type', 'device'].flatMap((name) => (element.attributes[name] === undefined ? [] : [` ${name}='${element.attributes[name]}'`]));
  return `<${element.name}${shown.join('')}> (device ${index + 1})`;
}

/** A number as libvirt reads these attributes (strtoul base 0: 0x.. hex, 0.. octal, else decimal). */
function number(element: XmlElement, name: string, max: number, where: string, fallback?: number): number {
  const text = element.attributes[name];
  if (text === undefined) {
    if (fallback !== undefined) return fallback;
    throw xmlError(`${where}: <${element.name}> has no ${name} attribute`, where, `Write it as libvirt does, e.g. ${name}='0x00'.`);
  }
  const trimmed = text.trim();
  const value = /^0x[0-9a-f]+$/i.test(trimmed)
    ? Number.parseInt(trimmed.slice(2), 16)
    : /^0[0-7]*$/.test(trimmed)
      ? Number.parseInt(trimmed, 8)
      : /^[1-9][0-9]*$/.test(trimmed)
        ? Number(trimmed)
        : Number.NaN;
  if (!Number.isSafeInteger(value) || value > max) {
    throw xmlError(`${where}: ${name}='${text}' of <${element.name}> is not a number from 0 to ${max}`, where, 'libvirt takes decimal, 0x-prefixed hex or 0-prefixed octal numbers.');
  }
  return value;
}

function managedOf(element: XmlElement, where: string, fallback: boolean): boolean {
  const value = element.attributes['managed'];
  if (value === undefined) return fallback;
  if (value === 'yes' || value === 'no') return value === 'yes';
  throw xmlError(`${where}: managed='${value}' is neither yes nor no`, where, "Write managed='yes' (hostdev detaches the device) or managed='no' (it is on a stub already).");
}

function required(parent: XmlElement, name: string, where: string): XmlElement {
  const found = child(parent, name);
  if (found === undefined) throw xmlError(`${where}: <${parent.name}> has no <${name}>`, where, "See libvirt's formatdomain documentation for the element's form.");
  return found;
}

function pciAddress(address: XmlElement, where: string): PciAddress {
  return formatAddress({
    domain: number(address, 'domain', 0xffff, where, 0),
    bus: number(address, 'bus', 0xff, where),
    slot: number(address, 'slot', 0x1f, where),
    function: number(address, 'function', 7, where),
  });
}

const hex4 = (value: number): string => value.toString(16).padStart(4, '0');

function hostdev(element: XmlElement, where: string): DomainXmlDevice | null {
  const mode = element.attributes['mode'] ?? 'subsystem';
  if (mode !== 'subsystem') {
    throw xmlError(`${where}: hostdev hands over host devices (mode='subsystem'); mode='${mode}' gives a container the host's block or character devices`, where, 'Leave this element to the container manager.');
  }
  const source = required(element, 'source', where);
  // libvirt's default for <hostdev> is managed='no'.
  const managed = managedOf(element, where, false);
  switch (element.attributes['type']) {
    case 'pci':
      return { element: where, kind: 'pci', address: pciAddress(required(source, 'address', where), where), managed };
    case 'usb': {
      const vendor = child(source, 'vendor');
      const product = child(source, 'product');
      const address = child(source, 'address');
      if ((vendor === undefined) !== (product === undefined) || (vendor === undefined && address === undefined)) {
        throw xmlError(`${where}: a USB hostdev names its device by <vendor> and <product>, by <address bus device>, or both`, where, "Write <vendor id='0x1050'/><product id='0x0407'/> or <address bus='1' device='5'/>.");
      }
      return {
        element: where,
        kind: 'usb',
        vendor: vendor === undefined ? null : hex4(number(vendor, 'id', 0xffff, where)),
        product: product === undefined ? null : hex4(number(product, 'id', 0xffff, where)),
        bus: address === undefined ? null : number(address, 'bus', 0xffff, where),
        device: address === undefined ? null : number(address, 'device', 0xffff, where),
      };
    }
    case 'mdev': {
      const uuid = required(source, 'address', where).attributes['uuid'] ?? '';
      if (!isUuid(uuid)) throw xmlError(`${where}: uuid='${uuid}' is not a UUID`, where, "Write <address uuid='c297db4a-f4c2-11e6-90f6-d3b88d6c9525'/>.");
      return { element: where, kind: 'key', key: formatKey({ kind: 'mdev', uuid: uuid.toLowerCase() }), managed };
    }
    case 'scsi': {
      if ((source.attributes['protocol'] ?? 'adapter') !== 'adapter') {
        throw xmlError(`${where}: a SCSI hostdev over ${source.attributes['protocol']} is a network LUN, not a host device`, where, 'Leave iSCSI LUNs to libvirt.');
      }
      const adapter = /^scsi_host([0-9]+)$/.exec(required(source, 'adapter', where).attributes['name'] ?? '');
      if (adapter === null) throw xmlError(`${where}: <adapter name> is not scsi_hostN`, where, "Write <adapter name='scsi_host2'/> (the host number of `hostdev list --kind scsi`).");
      const address = required(source, 'address', where);
      const id = { kind: 'scsi', host: Number(adapter[1]), bus: number(address, 'bus', 0xffffffff, where), target: number(address, 'target', 0xffffffff, where), lun: number(address, 'unit', Number.MAX_SAFE_INTEGER, where) } as const;
      // virHostdevPrepareSCSIHostDevices refuses managed='yes' before anything else.
      if (managed) throw scsiManaged(formatKey(id), where);
      const sgio = element.attributes['sgio'];
      if (sgio !== undefined && sgio !== 'filtered' && sgio !== 'unfiltered') {
        throw xmlError(`${where}: sgio='${sgio}' is not filtered or unfiltered`, where, "libvirt's sgio takes 'filtered' (the default) or 'unfiltered'.");
      }
      const rawio = element.attributes['rawio'];
      if (rawio !== undefined && rawio !== 'yes' && rawio !== 'no') throw xmlError(`${where}: rawio='${rawio}' is not yes or no`, where, "Write rawio='yes' or leave it out.");
      const scsi: ScsiHostdevOptions = {
        ...(child(element, 'readonly') === undefined ? {} : { readOnly: true }),
        ...(sgio === undefined ? {} : { sgio }),
        ...(rawio === 'yes' ? { rawio: true } : {}),
      };
      return {
        element: where,
        kind: 'key',
        key: formatKey(id),
        managed,
        ...(child(element, 'shareable') === undefined ? {} : { shareable: true }),
        ...(Object.keys(scsi).length === 0 ? {} : { scsi }),
      };
    }
    case 'scsi_host':
      throw xmlError(`${where}: a vhost-scsi hostdev is not handled by hostdev`, where, 'Leave this element to libvirt.');
    default:
      throw xmlError(`${where}: hostdev type '${element.attributes['type'] ?? ''}' is not pci, usb, scsi or mdev`, where, "See libvirt's formatdomain documentation for <hostdev>.");
  }
}

/** <disk type='nvme'>: <source type='pci' managed namespace><address .../></source>; libvirt's default here is managed='yes'. */
function nvmeDisk(element: XmlElement, where: string): DomainXmlDevice {
  const source = required(element, 'source', where);
  const controller = pciAddress(required(source, 'address', where), where);
  const namespace = number(source, 'namespace', 0xfffffffe, where);
  if (namespace === 0) throw xmlError(`${where}: namespace='0' is not an NVMe namespace`, where, 'Namespaces are numbered from 1.');
  return { element: where, kind: 'key', key: formatKey({ kind: 'nvme', controller, namespace }), managed: managedOf(source, where, true) };
}

/** The devices of a <domain> (its <devices>), or of a bare <hostdev> or <disk>. */
export function domainXmlDevices(root: XmlElement): DomainXmlDevices {
  if (root.name !== 'domain' && root.name !== 'hostdev' && root.name !== 'disk') {
    throw xmlError(`the document's root element is <${root.name}>, not <domain>, <hostdev> or <disk>`, null, 'Give a domain XML (virsh dumpxml) or one device element (virsh attach-device).');
  }
  const name = root.name === 'domain' ? (child(root, 'name')?.text.trim() ?? null) : null;
  const elements = root.name === 'domain' ? (child(root, 'devices')?.children ?? []) : [root];
  const devices = elements.flatMap((element, index) => {
    const where = describe(element, index);
    if (element.name === 'hostdev') return [hostdev(element, where)];
    if (element.name === 'disk' && element.attributes['type'] === 'nvme') return [nvmeDisk(element, where)];
    return [];
  });
  return { name: name === '' ? null : name, devices: devices.filter((device) => device !== null) };
}

/** The one USB device a <hostdev type='usb'> names (vendor and product, bus and devnum, or all four). */
function usbKey(device: Extract<DomainXmlDevice, { kind: 'usb' }>, usb: readonly UsbDevice[]): string {
  if (device.bus === null) return `usb:${device.vendor}:${device.product}`;
  const found = usb.find(
    (candidate) => candidate.bus === device.bus && candidate.devnum === device.device && (device.vendor === null || (candidate.vendor === device.vendor && candidate.product === device.product)),
  );
  if (found === undefined) {
    const ids = device.vendor === null ? '' : ` ${device.vendor}:${device.product}`;
    throw new HostdevError('HOSTDEV_DEVICE_NOT_FOUND', `${device.element}: no USB device${ids} at bus ${device.bus} device ${device.device}`, {
      hint: '`hostdev list --kind usb --json` lists each USB device with its bus and devnum (which changes on every plug).',
      details: { element: device.element, bus: device.bus, device: device.device },
    });
  }
  return found.key;
}

/** The request for assign or release (every kind an element names is one assign takes). */
export function domainXmlRequest(devices: readonly DomainXmlDevice[], usb: readonly UsbDevice[]): DomainXmlRequest {
  const refs: string[] = [];
  const unmanaged: PciAddress[] = [];
  const shareable: DeviceKey[] = [];
  const scsiOptions: Record<string, ScsiHostdevOptions> = {};
  for (const device of devices) {
    if (device.kind === 'usb') refs.push(usbKey(device, usb));
    else if (device.kind === 'pci') (device.managed ? refs : unmanaged).push(device.address);
    else {
      refs.push(device.key);
      if (device.shareable === true) shareable.push(device.key);
      if (device.scsi !== undefined) scsiOptions[device.key] = device.scsi;
    }
  }
  if (refs.length === 0 && unmanaged.length === 0) {
    throw xmlError('the document names no device: no <hostdev> and no <disk type=\'nvme\'>', null, 'Give the domain XML whose host devices are to be assigned (virsh dumpxml DOMAIN).');
  }
  return { refs, unmanaged, shareable, scsiOptions };
}

/** The element's devices that usb lookups need: none when no USB hostdev is named by bus and devnum. */
export function needsUsbInventory(devices: readonly DomainXmlDevice[]): boolean {
  return devices.some((device) => device.kind === 'usb' && device.bus !== null);
}
