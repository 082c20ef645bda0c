import { HostdevError } from './errors.js';
import { InUseError } from './in-use.js';
import { formatKey, keyKind, type DeviceKey } from './device-key.js';
import type { NonPciDevice, NonPciKind, UsbDevice } from './nonpci-device.js';
import { formatOwner, sameOwner, type Owner } from './tables.js';

/*
 * Table entries of the kinds other than PCI (mediated devices, USB, NVMe namespaces, SCSI). libvirt
 * keeps one active list per kind (activeUSBHostdevs, activeMediatedHostdevs, ...) and an inactive
 * list for PCI only: these devices never change driver for a VM (an mdev is on its parent's mdev
 * driver, QEMU opens a USB device through usbfs), so taking one is ownership alone and there is
 * nothing to detach. The state database keeps them in the same `active` table as PCI entries,
 * keyed by their device key; PCI entries keep their own type (ActiveEntry, with its PciAddress).
 */

/** What identifies the device beyond its key: how a device seen again is recognised as the same one. */
export type DeviceIdentity =
  | { readonly kind: 'usb'; readonly vendor: string | null; readonly product: string | null; readonly serial: string | null }
  | { readonly kind: 'mdev'; readonly parent: string; readonly type: string | null }
  /** A SCSI device: the generic node QEMU opens (/dev/sgN's name), and what the device says it is. */
  | { readonly kind: 'scsi'; readonly sg: string | null; readonly vendor: string | null; readonly model: string | null };

export interface DeviceEntry {
  readonly key: DeviceKey;
  readonly kind: NonPciKind;
  /** The domain that took it first. */
  readonly usedBy: Owner;
  readonly identity: DeviceIdentity | null;
  /**
   * A SCSI device assigned shareable (libvirt's <shareable/>): other domains that asked for it
   * shareable hold it too, in `sharedBy` (libvirt's used_by list past its first).
   */
  readonly shareable?: boolean;
  readonly sharedBy?: readonly Owner[];
}

/** Every domain that holds the entry's device: the first, then those that share it. */
export function holdersOf(entry: DeviceEntry): readonly Owner[] {
  return [entry.usedBy, ...(entry.sharedBy ?? [])];
}

export function isHeldBy(entry: DeviceEntry, owner: Owner): boolean {
  return holdersOf(entry).some((holder) => sameOwner(holder, owner));
}

/**
 * The entry once `owner` let go of it: null when it held it alone, else the same entry held by the
 * others (the next sharer becomes the first holder).
 */
export function withoutHolder(entry: DeviceEntry, owner: Owner): DeviceEntry | null {
  const [first, ...rest] = holdersOf(entry).filter((holder) => !sameOwner(holder, owner));
  if (first === undefined) return null;
  const { sharedBy: _sharedBy, ...base } = entry;
  return { ...base, usedBy: first, ...(rest.length === 0 ? {} : { sharedBy: rest }) };
}

/** A non-PCI entry pruned while a domain held it, remembered until its domain is released or it returns. */
export interface DepartedDevice {
  readonly entry: DeviceEntry;
  readonly prunedBy: string;
  readonly departedAt: string;
}

export function identityOf(device: NonPciDevice): DeviceIdentity | null {
  switch (device.kind) {
    case 'usb':
      return { kind: 'usb', vendor: device.vendor, product: device.product, serial: device.serial };
    case 'mdev':
      return { kind: 'mdev', parent: device.parent, type: device.type };
    case 'scsi':
      return { kind: 'scsi', sg: device.sg, vendor: device.vendor, model: device.model };
    default:
      return null;
  }
}

/**
 * Whether `device`, present now under the departed entry's key, is that device back: USB by the
 * same vendor:product on the same port (the key is the port), an mdev by the same UUID on the same
 * parent and type (mdevctl's definitions make it again with the UUID it had), a SCSI device by the
 * same vendor and model at the same host:bus:target:lun (its sg node may have another number).
 */
export function isReturn(departed: DeviceEntry, device: NonPciDevice | null): boolean {
  if (device === null || device.key !== departed.key || departed.identity === null) return false;
  const was = departed.identity;
  if (was.kind === 'usb' && device.kind === 'usb') return was.vendor === device.vendor && was.product === device.product;
  if (was.kind === 'mdev' && device.kind === 'mdev') return was.parent === device.parent && was.type === device.type;
  if (was.kind === 'scsi' && device.kind === 'scsi') return was.vendor === device.vendor && was.model === device.model;
  return false;
}

/** libvirt's names of the kinds in its messages ("mediated device", "USB device"). */
export function kindNoun(kind: NonPciKind): string {
  switch (kind) {
    case 'mdev':
      return 'mediated device';
    case 'usb':
      return 'USB device';
    case 'nvme':
      return 'NVMe namespace';
    case 'scsi':
      return 'SCSI device';
  }
}

/** The kinds whose assign and release hostdev does today. */
export const ASSIGNABLE_KINDS: readonly NonPciKind[] = ['mdev', 'usb', 'nvme', 'scsi'];

export function assignableKind(key: DeviceKey, input: string): NonPciKind {
  const kind = keyKind(key);
  if (kind !== 'pci' && ASSIGNABLE_KINDS.includes(kind)) return kind;
  throw new HostdevError('HOSTDEV_BAD_ADDRESS', `"${input}" names a ${kind} device; hostdev assigns PCI functions, mediated devices, USB devices, NVMe namespaces and SCSI devices`, {
    hint: 'Give a pci:, mdev:, usb:, nvme: or scsi: key.',
    details: { input, key, kind },
  });
}

/** libvirt's refusal of <hostdev type='scsi' managed='yes'> (virHostdevPrepareSCSIHostDevices): nothing detaches a SCSI device. */
export function scsiManaged(key: DeviceKey, element: string | null): HostdevError {
  return new HostdevError('HOSTDEV_SCSI_MANAGED', `SCSI host device doesn't support managed mode (${element ?? key})`, {
    hint: "Write the <hostdev type='scsi'> with managed='no' or without managed: QEMU opens the device's /dev/sgN, no driver changes.",
    details: { key, ...(element === null ? {} : { element }) },
  });
}

/** The name libvirt gives a SCSI device in its messages (virSCSIDeviceNew: HOST:BUS:TARGET:LUN). */
const scsiName = (key: DeviceKey): string => key.slice('scsi:'.length);

/**
 * libvirt's refusal (virHostdevPrepareSCSIDevices) when a SCSI device is held and either the holder
 * or the new request is not shareable: "SCSI device %s is already in use by other domain(s) as '%s'".
 */
export function scsiInUse(entry: DeviceEntry): HostdevError {
  const as = entry.shareable === true ? 'shareable' : 'non-shareable';
  const holders = holdersOf(entry);
  return new InUseError(`Requested operation is not valid: SCSI device ${scsiName(entry.key)} is already in use by other domain(s) as '${as}'`, {
    hint:
      entry.shareable === true
        ? `Assign it with --shareable (every domain that shares it must), or release it from ${holders.map((holder) => holder.vm).join(', ')} first.`
        : `Release it from its domain first (\`hostdev release --domain ${entry.usedBy.vm} --hypervisor ${entry.usedBy.hypervisor} ${entry.key}\`).`,
    details: { key: entry.key, owner: entry.usedBy, holders, shareable: entry.shareable === true },
  });
}

/** libvirt's refusal (virHostdevPrepareMediatedDevices, virHostdevMarkUSBDevices): "... is in use by driver D, domain V". */
export function deviceInUse(entry: DeviceEntry): HostdevError {
  return new InUseError(`${kindNoun(entry.kind)} ${entry.key} is in use by ${formatOwner(entry.usedBy)}`, {
    hint: `Release it from its domain first (\`hostdev release --domain ${entry.usedBy.vm} --hypervisor ${entry.usedBy.hypervisor} ${entry.key}\`).`,
    details: { key: entry.key, owner: entry.usedBy },
  });
}

export function deviceNotFound(key: DeviceKey): HostdevError {
  const kind = keyKind(key);
  return new HostdevError('HOSTDEV_DEVICE_NOT_FOUND', `${kind === 'pci' ? 'PCI device' : kindNoun(kind)} ${key} not found on this host`, {
    hint: `\`hostdev list --kind ${kind}\` lists the ${kind} devices this host has and their keys.`,
    details: { key },
  });
}

/** `usb:VVVV:PPPP`: a USB device chosen by vendor and product, as libvirt's <vendor>/<product> source. */
export interface UsbSelector {
  readonly vendor: string;
  readonly product: string;
}

export function parseUsbSelector(input: string): UsbSelector | null {
  const match = /^usb:([0-9a-fA-F]{4}):([0-9a-fA-F]{4})$/.exec(input);
  return match === null ? null : { vendor: match[1]!.toLowerCase(), product: match[2]!.toLowerCase() };
}

/** The one USB device with that vendor:product; libvirt's refusals when there is none or more than one. */
export function selectUsb(devices: readonly UsbDevice[], selector: UsbSelector): DeviceKey {
  const matches = devices.filter((device) => device.vendor === selector.vendor && device.product === selector.product);
  const name = `${selector.vendor}:${selector.product}`;
  if (matches.length === 0) {
    throw new HostdevError('HOSTDEV_DEVICE_NOT_FOUND', `Did not find USB device ${name}`, {
      hint: '`hostdev list --kind usb` lists the USB devices with their vendor:product.',
      details: { vendor: selector.vendor, product: selector.product },
    });
  }
  if (matches.length > 1) {
    throw new HostdevError(
      'HOSTDEV_AMBIGUOUS_DEVICE',
      `Multiple USB devices for ${Number.parseInt(selector.vendor, 16).toString(16)}:${Number.parseInt(selector.product, 16).toString(16)}, use <address> to specify one`,
      {
        hint: `Name one by where it is plugged: ${matches.map((device) => device.key).join(', ')}.`,
        details: { vendor: selector.vendor, product: selector.product, keys: matches.map((device) => device.key) },
      },
    );
  }
  return matches[0]!.key;
}

export interface DevicePlan {
  /** Entries that become active for the domain (a shared SCSI device's with the domain among its holders). */
  readonly assign: readonly DeviceEntry[];
  /** Entries the domain let go of that other domains still share (written back without it). */
  readonly keep: readonly DeviceEntry[];
  /** Keys whose entry is dropped (released, or pruned because the device is gone). */
  readonly remove: readonly DeviceKey[];
  /** Entries removed because their device vanished (release: the domain let go of them). */
  readonly pruned: readonly DeviceEntry[];
  readonly notes: readonly string[];
}

/**
 * Assign: every device exists and is held by no domain (not even this one: libvirt refuses a second
 * prepare of the same device); all or nothing. `present`: the devices as the host shows them now.
 * A SCSI device in `shareable` may be held by other domains that took it shareable too
 * (libvirt's virSCSIDeviceSetUsedBy); either side not shareable is libvirt's refusal.
 */
export function planDeviceAssign(
  owner: Owner,
  keys: readonly DeviceKey[],
  present: ReadonlyMap<DeviceKey, NonPciDevice>,
  held: ReadonlyMap<DeviceKey, DeviceEntry>,
  shareable: ReadonlySet<DeviceKey> = new Set(),
): DevicePlan {
  const assign: DeviceEntry[] = [];
  for (const key of [...new Set(keys)]) {
    const device = present.get(key);
    if (device === undefined) throw deviceNotFound(key);
    const entry = held.get(key);
    const shared = device.kind === 'scsi' && shareable.has(key);
    if (entry !== undefined && device.kind === 'scsi') {
      // Named by this domain, which may be a sharer: the message names it.
      if (isHeldBy(entry, owner)) throw deviceInUse({ ...entry, usedBy: owner });
      if (!shared || entry.shareable !== true) throw scsiInUse(entry);
      assign.push({ ...entry, sharedBy: [...(entry.sharedBy ?? []), owner] });
      continue;
    }
    if (entry !== undefined) throw deviceInUse(entry);
    assign.push({ key, kind: device.kind, usedBy: owner, identity: identityOf(device), ...(shared ? { shareable: true } : {}) });
  }
  return { assign, keep: [], remove: [], pruned: [], notes: [] };
}

/**
 * Release: the domain's devices (all, or those named) leave the table; one that is no longer on the
 * host is pruned all the same; one held by another domain is skipped with a note, as libvirt does.
 */
export function planDeviceRelease(
  owner: Owner,
  keys: readonly DeviceKey[] | undefined,
  present: ReadonlyMap<DeviceKey, NonPciDevice | null>,
  held: ReadonlyMap<DeviceKey, DeviceEntry>,
): DevicePlan {
  const wanted = keys ?? [...held.values()].filter((entry) => isHeldBy(entry, owner)).map((entry) => entry.key);
  const remove: DeviceKey[] = [];
  const keep: DeviceEntry[] = [];
  const pruned: DeviceEntry[] = [];
  const notes: string[] = [];
  for (const key of [...new Set(wanted)]) {
    const entry = held.get(key);
    if (entry === undefined) {
      notes.push(`${key} is not assigned to any domain; skipped`);
    } else if (!isHeldBy(entry, owner)) {
      notes.push(`${key} is used by ${formatOwner(entry.usedBy)}, not by this domain; skipped`);
    } else {
      const rest = withoutHolder(entry, owner);
      // A device that left the host is pruned for every holder (the prune rule records it as departed for the others).
      if (rest === null || !present.has(key)) remove.push(key);
      else keep.push(rest);
      if (!present.has(key)) pruned.push(entry);
    }
  }
  return { assign: [], keep, remove, pruned, notes };
}

export function mdevKey(uuid: string): DeviceKey {
  return formatKey({ kind: 'mdev', uuid: uuid.toLowerCase() });
}
