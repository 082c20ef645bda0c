import type { PciAddress } from '../core/address.js';
import type { PciDevice } from '../core/device.js';
import { formatOwner, sameOwner, type Owner, type TableChange } from '../core/tables.js';
import type { VfNetRequest } from '../core/vf-net-config.js';
import type { DepartedVfRecord, Operation, StateChange, StateStore, VfConfig, VfIdentity } from '../state/store.js';
import type { PrunedBy } from '../core/reconcile.js';

/**
 * Departed VFs: a VF that leaves the host while a table holds it is pruned from both
 * tables, and remembered in the state database in the same commit, with the entry it had, the
 * domain it was taken from and its VF network config, so that a `watch` started at any later time
 * recognises its return (same PF, same VF index) and `--reclaim` can ready it for that domain.
 *
 * A record is dropped when a watch has reported or readied the returned VF, when the VF is assigned
 * again, when its former domain is released (that domain no longer claims anything; so a VF pruned
 * by its own domain's release is not recorded at all), or by `hostdev vf forget`.
 */

export interface DepartureOptions {
  /** Identities known to the caller (a watch's snapshots, the PF of `vf set-count`); else the noted ones. */
  readonly known?: ReadonlyMap<PciAddress, VfIdentity>;
  /** The domains' VF config captured while the VFs were present (a watch); else what was requested at assign. */
  readonly domainConfigs?: ReadonlyMap<PciAddress, VfNetRequest>;
}

/** The records of the pruned addresses that were VFs in a table, for the prune's own commit. */
export function departures(op: Operation, pruned: readonly PciAddress[], prunedBy: PrunedBy, options: DepartureOptions = {}): StateChange[] {
  if (pruned.length === 0) return [];
  const tables = op.lookup(pruned);
  const homes = op.vfHomes(pruned);
  const configs = new Map(op.vfConfigs().map((row) => [row.address as string, row]));
  const changes: StateChange[] = [];
  for (const address of pruned) {
    const identity = options.known?.get(address) ?? homes.get(address);
    if (identity === undefined) continue;
    const active = tables.active.find((entry) => entry.address === address);
    const inactive = tables.inactive.find((entry) => entry.address === address);
    const former = active ? ({ table: 'active', entry: active } as const) : inactive ? ({ table: 'inactive', entry: inactive } as const) : null;
    if (former === null) continue;
    const owner = former.table === 'active' ? former.entry.usedBy : null;
    const saved = configs.get(address);
    const domainConfig = options.domainConfigs?.get(address) ?? saved?.requested ?? null;
    changes.push({
      kind: 'record-departed',
      record: {
        ...identity,
        address,
        former,
        owner,
        vfConfig: saved === undefined ? null : hostConfig(saved),
        domainConfig,
        prunedBy,
      },
    });
  }
  return changes;
}

/** The host's saved config alone (the domain's request is kept as domainConfig). */
function hostConfig({ requested, ...host }: VfConfig): VfConfig {
  return host;
}

/** A release lets go of its domain's departed VFs: all of them, or those of the named addresses. */
export function releasedDepartures(
  op: Operation,
  owner: Owner,
  addresses: readonly PciAddress[] | undefined,
): { readonly changes: StateChange[]; readonly addresses: PciAddress[] } {
  const named = addresses === undefined ? null : new Set<string>(addresses);
  const records = op
    .departed()
    .filter((record) => record.owner !== null && sameOwner(record.owner, owner))
    .filter((record) => named === null || named.has(record.address));
  return {
    changes: records.map((record) => ({ kind: 'drop-departed', pf: record.pf, vfIndex: record.vfIndex })),
    addresses: records.map((record) => record.address),
  };
}

/**
 * A VF given out again (to its former domain by hand or by `watch --reclaim`, or to anyone else by
 * an explicit assign) is no longer awaited. Returns the drops and a note for each VF whose former
 * domain is not the one that gets it now.
 */
export function reassignedDepartures(op: Operation, owner: Owner, addresses: readonly PciAddress[]): { changes: StateChange[]; notes: string[] } {
  const wanted = new Set<string>(addresses);
  const changes: StateChange[] = [];
  const notes: string[] = [];
  for (const record of op.departed()) {
    if (!wanted.has(record.address)) continue;
    changes.push({ kind: 'drop-departed', pf: record.pf, vfIndex: record.vfIndex });
    if (record.owner !== null && !sameOwner(record.owner, owner)) {
      notes.push(
        `${record.address} (VF ${record.vfIndex} of ${record.pf}) left the host while ${formatOwner(record.owner)} ` +
          `held it; it now goes to ${formatOwner(owner)} instead`,
      );
    }
  }
  return { changes, notes };
}

/**
 * `note-vf` for each VF that a table change takes into a table, so a later prune knows which VF it
 * was even when the VF is gone by then. `devices` are the plan's snapshots; `readPf` reads a PF.
 */
export async function vfIdentityNotes(
  changes: readonly TableChange[],
  devices: ReadonlyMap<PciAddress, PciDevice | null>,
  readVirtfnLinks: (pf: PciAddress) => Promise<ReadonlyArray<{ readonly index: number; readonly address: PciAddress }>>,
): Promise<StateChange[]> {
  const pfs = new Map<PciAddress, ReadonlyArray<{ readonly index: number; readonly address: PciAddress }>>();
  const notes: StateChange[] = [];
  for (const change of changes) {
    if (change.kind === 'remove') continue;
    const device = devices.get(change.entry.address);
    if (device?.physfn === null || device?.physfn === undefined) continue;
    const pfAddress = device.physfn;
    if (!pfs.has(pfAddress)) pfs.set(pfAddress, await readVirtfnLinks(pfAddress));
    const vfIndex = pfs.get(pfAddress)?.find((link) => link.address === device.address)?.index ?? -1;
    if (vfIndex >= 0) notes.push({ kind: 'note-vf', address: device.address, pf: pfAddress, vfIndex });
  }
  return notes;
}

/** One line for a departed VF (status, `vf forget`). */
export function describeDeparted(record: DepartedVfRecord): string {
  return `${record.address} (VF ${record.vfIndex} of ${record.pf}), ${formatOwner(record.owner)}, left ${record.departedAt} (pruned by ${record.prunedBy})`;
}

/** `hostdev vf forget`: drops the departed records of these addresses (null: all of them); a dry run only names them. */
export function forgetDeparted(store: StateStore, addresses: readonly PciAddress[] | null, dryRun = false): Promise<DepartedVfRecord[]> {
  const named = addresses === null ? null : new Set<string>(addresses);
  const chosen = (records: readonly DepartedVfRecord[]) => records.filter((record) => named === null || named.has(record.address));
  if (dryRun) return Promise.resolve(chosen(store.readDeparted()));
  return store.exclusive('vf-forget', async (op) => {
    const dropped = chosen(op.departed());
    op.commit(dropped.map((record) => ({ kind: 'drop-departed', pf: record.pf, vfIndex: record.vfIndex })));
    return dropped;
  });
}
