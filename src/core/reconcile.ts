import type { PciAddress } from './address.js';
import { removeChange, sameOwner, type Located, type Owner, type TableChange, type Tables } from './tables.js';

/** Which path pruned a device: recovery at open, status, watch, vf set-count, or a release or reattach after its writes. */
export type PrunedBy = 'recover' | 'status' | 'watch' | 'vf-set-count' | 'release' | 'reattach';

/**
 * The one rule for devices that left the host (libvirt's virHostdevDeleteMissingPCIDevices, and
 * the founding fix): every table entry whose device no longer exists is removed from both tables,
 * unconditionally, so that the address can be used again when a device comes back.
 */
interface ReconcileInput {
  readonly tables: Tables;
  /** The table entries' addresses that no longer exist on the host (other addresses are ignored). */
  readonly gone: ReadonlySet<PciAddress>;
  /** The domain whose release this is: it let go of its devices, so they are not awaited back. */
  readonly releasing?: Owner | undefined;
}

interface Reconciliation {
  /** Each pruned entry with where it was, in table order (active first). */
  readonly pruned: readonly Located[];
  /** The table changes: one removal a pruned entry. */
  readonly changes: readonly TableChange[];
  /** Pruned entries whose return is awaited (every one but those of the releasing domain). */
  readonly awaited: readonly PciAddress[];
}

export function reconcile(input: ReconcileInput): Reconciliation {
  const located: Located[] = [
    ...input.tables.active.map((entry) => ({ table: 'active' as const, entry })),
    ...input.tables.inactive.map((entry) => ({ table: 'inactive' as const, entry })),
  ];
  const pruned = located.filter((place) => input.gone.has(place.entry.address));
  const releasing = input.releasing;
  const awaited = pruned
    .filter((place) => place.table !== 'active' || releasing === undefined || !sameOwner(place.entry.usedBy, releasing))
    .map((place) => place.entry.address);
  return {
    pruned,
    changes: pruned.map((place) => removeChange(place.entry.address)),
    awaited,
  };
}
