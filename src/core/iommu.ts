import type { PciAddress } from './address.js';
import type { Inventory, PciDevice } from './device.js';
import { HostdevError, type ErrorCode } from './errors.js';
import { groupConflict, inUse, noIommuGroup, notEndpoint, notFound, type Blocker } from './plan-errors.js';
import { DEFAULT_STUB_DRIVER, isStubDriver } from './stub-driver.js';
import { sameOwner, type Owner } from './tables.js';

/** IOMMU groups as an Inventory shows them: pure functions, no host access. */

export interface IommuGroup {
  readonly id: number;
  /** In address order, bridges included. */
  readonly members: readonly PciDevice[];
}

/** Who owns a device (the active table), for callers that have the tables; null when nobody does. */
export type OwnerLookup = (address: PciAddress) => Owner | null;

/** Bridges stay with the host when their group is assigned (VFIO allows them in a viable group). */
export function isBridge(device: PciDevice): boolean {
  return device.headerType === 'bridge' || device.headerType === 'cardbus';
}

export function findDevice(inventory: Inventory, address: PciAddress): PciDevice | null {
  return inventory.devices.find((device) => device.address === address) ?? null;
}

/** Every group with its members, by group number. */
export function listGroups(inventory: Inventory): IommuGroup[] {
  const groups = new Map<number, PciDevice[]>();
  for (const device of inventory.devices) {
    if (device.iommuGroup === null) continue;
    let members = groups.get(device.iommuGroup);
    if (!members) groups.set(device.iommuGroup, (members = []));
    members.push(device);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => a - b)
    .map(([id, members]) => ({ id, members: members.sort((a, b) => (a.address < b.address ? -1 : 1)) }));
}

/** The members of the device's group, itself included; [] when it is unknown or has no group. */
export function groupMembers(inventory: Inventory, address: PciAddress): PciDevice[] {
  const group = findDevice(inventory, address)?.iommuGroup;
  if (group === null || group === undefined) return [];
  return inventory.devices
    .filter((device) => device.iommuGroup === group)
    .sort((a, b) => (a.address < b.address ? -1 : 1));
}

/** One reason a device cannot be given to a VM now, as the error the manager would raise. */
export interface VerdictProblem {
  readonly code: ErrorCode;
  readonly message: string;
  readonly hint: string | null;
  /** The group member that causes it; null when it is the device itself or the host. */
  readonly member: PciAddress | null;
}

export interface AssignmentVerdict {
  readonly address: PciAddress;
  readonly group: number | null;
  /** True when nothing below stands in the way. */
  readonly assignable: boolean;
  /** True when no other endpoint shares its group. */
  readonly alone: boolean;
  /** The other endpoints of the group: they must leave the host with it (to a stub driver or unbound). */
  readonly companions: readonly PciAddress[];
  /** Bridges of the group; they stay on the host and do not count. */
  readonly bridges: readonly PciAddress[];
  readonly problems: readonly VerdictProblem[];
}

export interface VerdictOptions {
  /** Owners from the active table; without it ownership is not checked. */
  readonly owners?: OwnerLookup;
  /** The domain asking: its own devices are no conflict. */
  readonly requester?: Owner;
}

function problem(error: HostdevError, member: PciAddress | null): VerdictProblem {
  return { code: error.code, message: error.message, hint: error.hint ?? null, member };
}

/**
 * Can the device be given to a VM alone? VFIO hands out whole groups: every other endpoint of
 * the group must be off the host (unbound or on a stub driver) and not owned by another domain.
 * Bridges are excluded, as the kernel excludes them from group viability.
 */
export function assignmentVerdict(
  inventory: Inventory,
  address: PciAddress,
  options: VerdictOptions = {},
): AssignmentVerdict {
  const device = findDevice(inventory, address);
  const verdict = (fields: Partial<AssignmentVerdict> & Pick<AssignmentVerdict, 'problems'>): AssignmentVerdict => ({
    address,
    group: device?.iommuGroup ?? null,
    alone: true,
    companions: [],
    bridges: [],
    ...fields,
    assignable: fields.problems.length === 0,
  });
  if (device === null) return verdict({ problems: [problem(notFound(address), null)] });

  const problems: VerdictProblem[] = [];
  if (isBridge(device)) problems.push(problem(notEndpoint(device), null));
  const owner = options.owners?.(address) ?? null;
  if (owner !== null && !(options.requester && sameOwner(owner, options.requester))) {
    problems.push(problem(inUse(address, owner), null));
  }
  if (!inventory.iommuEnabled) {
    const error = new HostdevError('HOSTDEV_NO_IOMMU', `PCI device ${address} cannot be given to a VM: this host has no IOMMU groups`, {
      hint: 'Enable the IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line) and reboot.',
    });
    return verdict({ problems: [...problems, problem(error, null)] });
  }
  if (device.iommuGroup === null) {
    return verdict({ problems: [...problems, problem(noIommuGroup(device, DEFAULT_STUB_DRIVER), null)] });
  }

  const companions: PciAddress[] = [];
  const bridges: PciAddress[] = [];
  for (const member of groupMembers(inventory, address)) {
    if (member.address === address) continue;
    if (isBridge(member)) {
      bridges.push(member.address);
      continue;
    }
    companions.push(member.address);
    const blocker = blockerOf(member, options);
    if (blocker) problems.push(problem(groupConflict(address, device.iommuGroup, member.address, blocker), member.address));
  }
  return verdict({ alone: companions.length === 0, companions, bridges, problems });
}

function blockerOf(member: PciDevice, options: VerdictOptions): Blocker | null {
  const owner = options.owners?.(member.address) ?? null;
  if (owner !== null) return options.requester && sameOwner(owner, options.requester) ? null : { kind: 'domain', owner };
  if (member.driver !== null && !isStubDriver(member.driver)) return { kind: 'host', driver: member.driver };
  return null;
}
