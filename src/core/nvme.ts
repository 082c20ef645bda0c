import type { PciAddress } from './address.js';
import { deviceNotFound, type DeviceEntry } from './device-entry.js';
import { idOf, type DeviceKey } from './device-key.js';
import { HostdevError } from './errors.js';
import { InUseError } from './in-use.js';
import { isStubDriver } from './stub-driver.js';
import { formatOwner, sameOwner, type Owner } from './tables.js';

/*
 * NVMe namespaces given to a domain, with libvirt's semantics (virHostdevPrepareOneNVMeDevice,
 * virNVMeDeviceListCreateDetachList / CreateReAttachList): QEMU opens the controller itself through
 * VFIO (its nvme block driver), so the controller leaves the nvme driver for vfio-pci with the first
 * namespace the domain is given (the PCI assign plan, journaled) and goes back only when its last
 * namespace is released. Each namespace is an entry of its own (libvirt's activeNVMeHostdevs);
 * the controller is an active PCI entry of the same domain. libvirt lets only one domain use a
 * controller's namespaces (the detach list skips a controller already in use): hostdev refuses a
 * second domain outright.
 */

/** The controller of an nvme: key. */
export function nvmeController(key: DeviceKey): PciAddress {
  const id = idOf(key);
  if (id.kind !== 'nvme') throw new Error(`not an nvme: key: ${key}`);
  return id.controller;
}

export interface NvmeAssignFacts {
  /** Namespaces the host shows now (only while their controller is on nvme). */
  readonly present: ReadonlySet<DeviceKey>;
  /** Entries of devices of other kinds than PCI (the nvme: ones are read). */
  readonly held: ReadonlyMap<DeviceKey, DeviceEntry>;
  /** Who holds each controller in the active PCI table, for the controllers of the request. */
  readonly controllerOwners: ReadonlyMap<PciAddress, Owner>;
  /** The driver of each controller now (null: none); a controller not on the host is absent. */
  readonly controllerDrivers: ReadonlyMap<PciAddress, string | null>;
}

export interface NvmeAssignPlan {
  readonly entries: readonly DeviceEntry[];
  /** Controllers to take from the host for the domain (the PCI assign plan's addresses). */
  readonly detach: readonly PciAddress[];
  readonly notes: readonly string[];
}

/** libvirt's refusal of a namespace in use: "NVMe device %s already in use by driver %s domain %s". */
function namespaceInUse(entry: DeviceEntry): HostdevError {
  return new InUseError(`NVMe device ${entry.key} already in use by ${formatOwner(entry.usedBy)}`, {
    hint: `Release it from its domain first (\`hostdev release --domain ${entry.usedBy.vm} --hypervisor ${entry.usedBy.hypervisor} ${entry.key}\`).`,
    details: { key: entry.key, owner: entry.usedBy },
  });
}

function controllerShared(key: DeviceKey, controller: PciAddress, other: DeviceEntry, owner: Owner): HostdevError {
  return new HostdevError(
    'HOSTDEV_NVME_CONTROLLER_SHARED',
    `NVMe controller ${controller} of ${key} is in use by ${formatOwner(other.usedBy)} (${other.key}); all namespaces of one controller go to one domain, not also to ${formatOwner(owner)}`,
    {
      hint: `Give ${key} to ${other.usedBy.vm} too, or release ${other.usedBy.vm}'s namespaces of ${controller} first.`,
      details: { key, controller, heldBy: other.key, owner: other.usedBy },
    },
  );
}

/**
 * Assign: every namespace is on the host (the controller on nvme shows it; on another driver it
 * cannot be seen), no domain
 * holds it, and no other domain holds a namespace of its controller; all or nothing. A controller
 * on neither nvme nor a stub gets libvirt's "Suspicious NVMe disk assignment" note (a warning in
 * libvirt too: the assign goes on).
 */
export function planNvmeAssign(owner: Owner, keys: readonly DeviceKey[], facts: NvmeAssignFacts): NvmeAssignPlan {
  const entries: DeviceEntry[] = [];
  const detach: PciAddress[] = [];
  const notes: string[] = [];
  const held = [...facts.held.values()].filter((entry) => entry.kind === 'nvme');
  for (const key of [...new Set(keys)]) {
    const controller = nvmeController(key);
    const mine = facts.controllerOwners.get(controller);
    const ownedHere = mine !== undefined && sameOwner(mine, owner);
    const entry = facts.held.get(key);
    if (entry !== undefined) throw namespaceInUse(entry);
    const other = held.find((candidate) => nvmeController(candidate.key) === controller && !sameOwner(candidate.usedBy, owner));
    if (other !== undefined) throw controllerShared(key, controller, other, owner);
    // The kernel shows a controller's namespaces only while it is on nvme: on any other driver the
    // namespace is taken on trust, as libvirt takes it.
    if (!facts.controllerDrivers.has(controller)) throw deviceNotFound(key);
    if (facts.controllerDrivers.get(controller) === 'nvme' && !facts.present.has(key)) throw deviceNotFound(key);
    entries.push({ key, kind: 'nvme', usedBy: owner, identity: null });
    if (ownedHere || detach.includes(controller)) continue;
    detach.push(controller);
    const driver = facts.controllerDrivers.get(controller) ?? null;
    if (driver !== 'nvme' && !isStubDriver(driver)) {
      notes.push(`Suspicious NVMe disk assignment. PCI device ${controller} is not an NVMe disk, it has ${driver ?? '(null)'} driver`);
    }
  }
  return { entries, detach, notes };
}

export interface NvmeReleasePlan {
  /** Namespace entries that leave the table. */
  readonly remove: readonly DeviceKey[];
  /** Controllers none of whose namespaces the domain holds any longer: given back to nvme. */
  readonly reattach: readonly PciAddress[];
  readonly notes: readonly string[];
}

/**
 * Release: the domain's namespaces (all, or those named) leave the table; a controller goes back
 * to the host only with its last namespace (libvirt's CreateReAttachList). One held by another
 * domain, or by none, is skipped with a note.
 */
export function planNvmeRelease(owner: Owner, keys: readonly DeviceKey[] | undefined, held: ReadonlyMap<DeviceKey, DeviceEntry>): NvmeReleasePlan {
  const namespaces = [...held.values()].filter((entry) => entry.kind === 'nvme');
  const wanted = keys ?? namespaces.filter((entry) => sameOwner(entry.usedBy, owner)).map((entry) => entry.key);
  const remove: DeviceKey[] = [];
  const notes: string[] = [];
  for (const key of [...new Set(wanted)]) {
    const entry = held.get(key);
    if (entry === undefined) notes.push(`${key} is not assigned to any domain; skipped`);
    else if (!sameOwner(entry.usedBy, owner)) notes.push(`${key} is used by ${formatOwner(entry.usedBy)}, not by this domain; skipped`);
    else remove.push(key);
  }
  const leaving = new Set(remove);
  const controllers = [...new Set(remove.map(nvmeController))];
  const reattach = controllers.filter((controller) =>
    namespaces.every((entry) => nvmeController(entry.key) !== controller || leaving.has(entry.key)),
  );
  return { remove, reattach, notes };
}

/** The QEMU node and device ids of a namespace: "hostdev-nvme-0000_01_00_0-1". */
export function nvmeDeviceId(controller: PciAddress, namespace: number): string {
  return `hostdev-nvme-${controller.replace(/[:.]/g, '_')}-${namespace}`;
}

/**
 * What libvirt gives QEMU for `<disk type='nvme'>`: QEMU's own NVMe driver opens the controller
 * (on vfio-pci) and the namespace as a block node, and a virtio disk shows it to the guest. The
 * controller is not passed as a vfio-pci device.
 */
export function nvmeQemuArgs(namespaces: readonly { readonly controller: PciAddress; readonly namespace: number }[]): string[] {
  const sorted = [...namespaces].sort((a, b) => a.controller.localeCompare(b.controller) || a.namespace - b.namespace);
  return sorted.flatMap(({ controller, namespace }) => {
    const id = nvmeDeviceId(controller, namespace);
    const node = { driver: 'nvme', device: controller, namespace, 'node-name': `${id}-storage`, 'auto-read-only': true, discard: 'unmap' };
    return ['-blockdev', JSON.stringify(node), '-device', `virtio-blk-pci,drive=${id}-storage,id=${id}`];
  });
}

/**
 * A release that names an NVMe controller directly while namespaces of it are given to a domain is
 * refused: the controller goes back to nvme only with its domain's last namespace, else the
 * namespace entries would outlive their controller's detach.
 */
export function controllerOfHeldNamespaces(addresses: readonly PciAddress[], entries: readonly DeviceEntry[]): HostdevError | null {
  for (const address of addresses) {
    const namespaces = entries.filter((entry) => entry.kind === 'nvme' && nvmeController(entry.key) === address);
    const [first] = namespaces;
    if (first === undefined) continue;
    const keys = namespaces.map((entry) => entry.key);
    return new InUseError(
      `PCI device ${address} is the NVMe controller of ${keys.join(', ')}, in use by ${formatOwner(first.usedBy)}: it goes back to nvme with the last of them`,
      {
        hint: `Release the namespaces instead (\`hostdev release --domain ${first.usedBy.vm} --hypervisor ${first.usedBy.hypervisor} ${keys.join(' ')}\`).`,
        details: { address, owner: first.usedBy, namespaces: keys },
      },
    );
  }
  return null;
}
