import { compareAddresses, type PciAddress } from './address.js';
import type { PciDevice } from './device.js';
import type { Owner } from './tables.js';

/**
 * PCI events as `hostdev watch` reports them, computed from two snapshots of the host.
 * Pure: the snapshots are read elsewhere (in a child process, since sysfs reads can block).
 */

/** What the diff needs to know of one PCI function. */
interface DeviceState {
  readonly address: PciAddress;
  readonly driver: string | null;
  /** The PF of a VF, null for anything else. */
  readonly pf: PciAddress | null;
  /** The N of the PF's virtfnN link that points at this VF; null for anything but a VF. */
  readonly vfIndex: number | null;
  /** sriov_numvfs of a PF; null for a function without SR-IOV. */
  readonly numVfs: number | null;
}

export type Snapshot = ReadonlyMap<PciAddress, DeviceState>;

/**
 * The subset of a PciDevice a snapshot is built from (the full device fits). `virtfnLinks`, the
 * PF's virtfnN links with their N, gives the VF indexes; without it a VF's index is its position in
 * `virtfns`, which is only right while no link is missing (not while SR-IOV is being disabled).
 */
export type SnapshotInput = Pick<PciDevice, 'address' | 'driver' | 'physfn' | 'virtfns' | 'sriov'> & {
  readonly virtfnLinks?: ReadonlyArray<{ readonly index: number; readonly address: PciAddress }>;
};

export function snapshotOf(devices: readonly SnapshotInput[]): Snapshot {
  const vfIndex = new Map<PciAddress, number>();
  for (const device of devices) {
    if (device.virtfnLinks !== undefined) for (const link of device.virtfnLinks) vfIndex.set(link.address, link.index);
    else device.virtfns.forEach((vf, index) => vfIndex.set(vf, index));
  }
  const snapshot = new Map<PciAddress, DeviceState>();
  for (const device of devices) {
    snapshot.set(device.address, {
      address: device.address,
      driver: device.driver,
      pf: device.physfn,
      vfIndex: device.physfn === null ? null : (vfIndex.get(device.address) ?? null),
      numVfs: device.sriov?.numVfs ?? null,
    });
  }
  return snapshot;
}

export const EMPTY_SNAPSHOT: Snapshot = new Map();

interface Placed {
  readonly address: PciAddress;
  /** For a VF: its PF and index, which is what identifies it across remove/add. */
  readonly pf: PciAddress | null;
  readonly vfIndex: number | null;
}

export type PciEvent =
  | (Placed & { readonly kind: 'add'; readonly driver: string | null })
  | (Placed & { readonly kind: 'remove'; readonly driver: string | null })
  | (Placed & { readonly kind: 'bind'; readonly driver: string })
  | (Placed & { readonly kind: 'unbind'; readonly driver: string })
  | (Placed & { readonly kind: 'driver-change'; readonly driver: string; readonly previousDriver: string })
  | { readonly kind: 'vf-count-change'; readonly address: PciAddress; readonly from: number; readonly to: number };

function placed(state: DeviceState): Placed {
  return { address: state.address, pf: state.pf, vfIndex: state.vfIndex };
}

function sorted(addresses: Iterable<PciAddress>): PciAddress[] {
  return [...addresses].sort(compareAddresses);
}

/**
 * The events that lead from `before` to `after`, in the order a reader needs them: VF count
 * changes of PFs first (they explain what follows), then removals, then driver changes of
 * devices present in both, then additions. Within each group, by address. `removedBetween`
 * names devices an event source reported removed since `before`.
 */
export function diffSnapshots(
  before: Snapshot,
  after: Snapshot,
  removedBetween: ReadonlySet<PciAddress> = new Set(),
): PciEvent[] {
  // A device an event source saw leave, found again in `after`, left and came back between the
  // two snapshots (a VF through N -> 0 -> M): it is a removal and an addition, not "unchanged".
  const cycled = (address: PciAddress): boolean => removedBetween.has(address) && before.has(address);
  const events: PciEvent[] = [];
  for (const address of sorted(after.keys())) {
    const now = after.get(address)!;
    const was = before.get(address);
    if (was !== undefined && was.numVfs !== null && now.numVfs !== null && was.numVfs !== now.numVfs) {
      events.push({ kind: 'vf-count-change', address, from: was.numVfs, to: now.numVfs });
    }
  }
  for (const address of sorted(before.keys())) {
    if (!after.has(address) || cycled(address)) {
      const was = before.get(address)!;
      events.push({ kind: 'remove', ...placed(was), driver: was.driver });
    }
  }
  for (const address of sorted(after.keys())) {
    const was = before.get(address);
    const now = after.get(address)!;
    if (was === undefined || was.driver === now.driver || cycled(address)) continue;
    if (was.driver === null) events.push({ kind: 'bind', ...placed(now), driver: now.driver! });
    else if (now.driver === null) events.push({ kind: 'unbind', ...placed(now), driver: was.driver });
    else events.push({ kind: 'driver-change', ...placed(now), driver: now.driver, previousDriver: was.driver });
  }
  for (const address of sorted(after.keys())) {
    if (!before.has(address) || cycled(address)) {
      const now = after.get(address)!;
      events.push({ kind: 'add', ...placed(now), driver: now.driver });
    }
  }
  return events;
}

/** A VF that left the host while hostdev held it, remembered so its return can be recognised. */
export interface DepartedVf {
  readonly address: PciAddress;
  readonly pf: PciAddress;
  readonly vfIndex: number;
  /** Who it was taken from, null when it was only detached. */
  readonly owner: Owner | null;
}

interface ReturnedVf {
  readonly departed: DepartedVf;
  /** Its address now (the same one on every kernel we know, but the index is what identifies it). */
  readonly address: PciAddress;
}

/**
 * Matches VF additions against VFs that departed: the same PF and the same VF index is the
 * same VF returning. Returns the matches and the departed VFs still away.
 */
export function matchReturned(
  departed: readonly DepartedVf[],
  events: readonly PciEvent[],
): { readonly returned: ReturnedVf[]; readonly stillAway: DepartedVf[] } {
  const returned: ReturnedVf[] = [];
  const stillAway: DepartedVf[] = [];
  const added = events.filter((event) => event.kind === 'add' && event.pf !== null && event.vfIndex !== null);
  for (const vf of departed) {
    const match = added.find((event) => 'pf' in event && event.pf === vf.pf && event.vfIndex === vf.vfIndex);
    if (match === undefined) stillAway.push(vf);
    else returned.push({ departed: vf, address: match.address });
  }
  return { returned, stillAway };
}

/** One line of `hostdev watch` text output for an event. */
export function describeEvent(event: PciEvent): string {
  const where = 'pf' in event && event.pf !== null && event.vfIndex !== null ? ` (VF ${event.vfIndex} of ${event.pf})` : '';
  switch (event.kind) {
    case 'add':
      return `add ${event.address}${where}${event.driver === null ? '' : ` driver ${event.driver}`}`;
    case 'remove':
      return `remove ${event.address}${where}${event.driver === null ? '' : ` (was on ${event.driver})`}`;
    case 'bind':
      return `bind ${event.address}${where} to ${event.driver}`;
    case 'unbind':
      return `unbind ${event.address}${where} from ${event.driver}`;
    case 'driver-change':
      return `driver-change ${event.address}${where} ${event.previousDriver} -> ${event.driver}`;
    case 'vf-count-change':
      return `vf-count-change ${event.address} ${event.from} -> ${event.to}`;
  }
}
