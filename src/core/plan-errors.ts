import type { PciAddress } from './address.js';
import type { PciDevice } from './device.js';
import { HostdevError } from './errors.js';
import { InUseError } from './in-use.js';
import type { HostUse } from './plan-types.js';
import { hostdevCommand, releaseCommand } from './shell.js';
import { formatOwner, sameOwner, type Owner, type Tables } from './tables.js';
import { hardwareChangeText, type HardwareIdentity } from './hardware-identity.js';

/** The errors plans raise, worded as libvirt words them where users know the wording. */

export function notFound(address: PciAddress): HostdevError {
  return new HostdevError('HOSTDEV_DEVICE_NOT_FOUND', `PCI device ${address} not found on this host`, {
    hint: 'Check the address with `hostdev list`; a VF disappears when sriov_numvfs of its PF is lowered.',
    details: { address },
  });
}

export function inUse(address: PciAddress, owner: Owner): HostdevError {
  return new InUseError(`PCI device ${address} is in use by ${formatOwner(owner)}`, {
    hint: `Release it first: ${releaseCommand(owner, address)}`,
    details: { address, owner },
  });
}

export function notEndpoint(device: PciDevice, what: 'assigned to guests' | 'detached for guests' = 'assigned to guests'): HostdevError {
  return new HostdevError(
    'HOSTDEV_NOT_ENDPOINT',
    `Non-endpoint PCI device ${device.address} cannot be ${what} (it is a ${device.headerType ?? 'device of unknown type'})`,
    { hint: 'Use the endpoints behind the bridge instead (see `hostdev show`).', details: { address: device.address, driver: device.driver } },
  );
}

/** libvirt's wording: a bridge's reset would hit every device behind it. */
export function resetNotEndpoint(device: PciDevice): HostdevError {
  return new HostdevError(
    'HOSTDEV_NOT_ENDPOINT',
    `Invalid attempt to reset PCI device ${device.address}. Only PCI endpoint devices can be reset (it is a ${device.headerType ?? 'device of unknown type'})`,
    { hint: 'Reset the endpoints behind the bridge instead.', details: { address: device.address, driver: device.driver } },
  );
}

export function noIommuGroup(device: PciDevice, stubDriver: string): HostdevError {
  return new HostdevError(
    'HOSTDEV_NO_IOMMU_GROUP',
    `PCI device ${device.address} has no IOMMU group, so ${stubDriver} cannot take it`,
    {
      hint: 'Enable the IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line) and reboot.',
      details: { address: device.address, driver: device.driver },
    },
  );
}

export function hostInUse(device: PciDevice, uses: readonly HostUse[]): HostdevError {
  return new HostdevError(
    'HOSTDEV_HOST_IN_USE',
    `PCI device ${device.address} (driver ${device.driver ?? 'none'}) is in use by the host: ${uses.map((use) => use.detail).join('; ')}`,
    {
      hint: 'Stop using it on the host first (remove the address/route, unmount), or pass --force.',
      details: { address: device.address, driver: device.driver, uses },
    },
  );
}

export function unmanagedNotDetached(device: PciDevice): HostdevError {
  return new HostdevError(
    'HOSTDEV_UNMANAGED_NOT_DETACHED',
    `Unmanaged PCI device ${device.address} must be manually detached from the host (it is on driver ${device.driver ?? 'none'})`,
    { hint: `Run ${hostdevCommand('detach', device.address)} first, or assign it managed.`, details: { address: device.address, driver: device.driver } },
  );
}

export type Blocker =
  | { readonly kind: 'domain'; readonly owner: Owner }
  | { readonly kind: 'host'; readonly driver: string };

export function groupConflict(device: PciAddress, group: number, member: PciAddress, blocker: Blocker): HostdevError {
  const why =
    blocker.kind === 'domain'
      ? `is in use by ${formatOwner(blocker.owner)}`
      : `is in use by the host (driver ${blocker.driver})`;
  return new HostdevError(
    'HOSTDEV_GROUP_CONFLICT',
    `PCI device ${device} cannot be assigned: member ${member} of its IOMMU group ${group} ${why}`,
    {
      hint:
        blocker.kind === 'domain'
          ? `Devices of one IOMMU group cannot be split between domains; release ${member} from domain ${blocker.owner.vm} first (${releaseCommand(blocker.owner, member)}).`
          : `Take the whole group along with --with-group, or detach ${member} first (${hostdevCommand('detach', member)}).`,
      details: {
        address: device,
        member,
        group,
        driver: blocker.kind === 'host' ? blocker.driver : null,
        owner: blocker.kind === 'domain' ? blocker.owner : null,
      },
    },
  );
}

export function resetUnsupported(device: PciDevice): HostdevError {
  return new HostdevError('HOSTDEV_RESET_UNSUPPORTED', `PCI device ${device.address} has no reset method`, {
    hint: 'The kernel lists none in reset_method; the device can only be reset by a power cycle.',
    details: { address: device.address, driver: device.driver },
  });
}

export function resetUnsafe(address: PciAddress, sibling: PciAddress, blocker: Blocker): HostdevError {
  const who = blocker.kind === 'domain' ? formatOwner(blocker.owner) : `the host (driver ${blocker.driver})`;
  return new HostdevError(
    'HOSTDEV_RESET_UNSAFE',
    `A bus reset of PCI device ${address} would also reset ${sibling}, which is in use by ${who}`,
    {
      hint: `Release or detach ${sibling} first, or reset both together.`,
      details: { address, sibling, owner: blocker.kind === 'domain' ? blocker.owner : null },
    },
  );
}

export function bindFailed(address: PciAddress, expected: string | null, actual: string | null): HostdevError {
  const target = expected === null ? 'stay unbound' : `bind to ${expected}`;
  return new HostdevError(
    'HOSTDEV_BIND_FAILED',
    `PCI device ${address} did not ${target}: its driver is ${actual ?? 'none'} after drivers_probe`,
    {
      hint:
        expected !== null && expected.includes('vfio')
          ? `Check that ${expected} is loaded and the device is in an IOMMU group (dmesg says why a probe failed).`
          : 'Check dmesg for the probe failure; `hostdev show` tells the device state.',
      details: { address, driver: actual, expected },
    },
  );
}

/** The owners of the active table, each once, in table order. */
export function domainsOf(tables: Tables): Owner[] {
  const owners: Owner[] = [];
  for (const entry of tables.active) if (!owners.some((owner) => sameOwner(owner, entry.usedBy))) owners.push(entry.usedBy);
  return owners;
}

/** A domain that holds nothing: a typo, or the name assigned under another hypervisor. */
export function domainHoldsNothing(owner: Owner, tables: Tables): HostdevError {
  const holders = domainsOf(tables);
  const sameName = holders.filter((other) => other.domain === owner.vm);
  const who = holders.length === 0 ? 'no domain holds a device' : `the domains that do: ${holders.map((other) => `${other.domain} (hypervisor ${other.driver})`).join(', ')}`;
  return new HostdevError('HOSTDEV_DOMAIN_NOT_FOUND', `domain ${owner.vm} (hypervisor ${owner.hypervisor}) holds no device; ${who}`, {
    hint:
      sameName.length > 0
        ? `${owner.vm} was assigned under hypervisor ${sameName.map((other) => other.driver).join(', ')}: ` +
          `name it the same way, as in ${releaseCommand(sameName[0]!)}`
        : 'Check the domain name (and --hypervisor): `hostdev status` lists every domain with its devices.',
    details: { domain: owner.vm, hypervisor: owner.hypervisor, domains: holders },
  });
}

/** qemu-args for a device that is no longer on its stub: QEMU would fail to open it. */
export function driftedDevice(drift: {
  readonly address: PciAddress;
  readonly usedBy: Owner | null;
  readonly expectedDriver: string;
  readonly actualDriver: string | null;
}): HostdevError {
  const owner = drift.usedBy === null ? 'no domain' : formatOwner(drift.usedBy);
  return new HostdevError(
    'HOSTDEV_DRIFT',
    `PCI device ${drift.address} (${owner}) should be on ${drift.expectedDriver} but is on ${drift.actualDriver ?? 'no driver'}: ` +
      'changed outside hostdev, so QEMU could not open it',
    {
      hint:
        drift.usedBy === null
          ? `Settle it with ${hostdevCommand('reattach', drift.address)} (or detach it again).`
          : `Check the VM does not use it, settle it with ${releaseCommand(drift.usedBy, drift.address)}, then assign it again.`,
      details: { address: drift.address, driver: drift.actualDriver, expected: drift.expectedDriver, owner: drift.usedBy },
    },
  );
}

/**
 * HOSTDEV_HARDWARE_CHANGED: an operation on an address whose table entry was made for another card.
 * `owner` null: the entry is detached, no owner.
 */
export function hardwareChangedError(
  operation: string,
  address: PciAddress,
  driver: string | null,
  owner: Owner | null,
  was: HardwareIdentity,
  now: HardwareIdentity,
): HostdevError {
  return new HostdevError(
    'HOSTDEV_HARDWARE_CHANGED',
    `${hardwareChangeText(address, was, now)} (on ${driver ?? 'no driver'}; the table entry, ${formatOwner(owner)}, was made for the card that was there); ${operation} refused`,
    {
      hint: `Check which card sits at ${address} now (hostdev show ${address}). If it is the one you mean, repeat with --force: the entry then records this card.`,
      details: { address, driver, owner, was, now },
    },
  );
}
