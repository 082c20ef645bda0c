import type { PciAddress } from '../core/address.js';
import type { DeviceKey } from '../core/device-key.js';
import { reconcile, type PrunedBy } from '../core/reconcile.js';
import type { Located, Owner, Tables } from '../core/tables.js';
import type { Operation, StateChange } from '../state/store.js';
import { departures, type DepartureOptions } from './departed.js';

/** A pruned entry as reports give it. */
export interface PrunedEntry {
  readonly key: DeviceKey;
  readonly address: PciAddress;
  readonly table: 'active' | 'inactive';
  readonly usedBy: Owner | null;
}

function prunedEntry(place: Located): PrunedEntry {
  return { key: place.entry.key, address: place.entry.address, table: place.table, usedBy: place.table === 'active' ? place.entry.usedBy : null };
}

/**
 * The table entries whose device is no longer on the host, in table order. `exists` answers at once
 * when it already knows (a walk's batch read) and with a promise when it must look: only those are
 * awaited, for a promise per entry is most of the cost of a large table's walk.
 */
export async function goneFrom(tables: Tables, exists: (address: PciAddress) => boolean | Promise<boolean>): Promise<Set<PciAddress>> {
  const entries = [...tables.active, ...tables.inactive];
  const answers = entries.map((entry) => exists(entry.address));
  const present = answers.every((answer) => typeof answer === 'boolean') ? (answers as boolean[]) : await Promise.all(answers);
  return new Set(entries.filter((_, index) => !present[index]).map((entry) => entry.address));
}

/**
 * Applies the reconcile rule inside an operation: the state changes for one commit (the entries
 * removed, their saved VF config dropped, a departed record for each VF whose return is awaited)
 * and what was pruned. Every path that finds a vanished device comes here: recovery at open,
 * status, release, reattach, watch and `vf set-count --force`.
 */
export function pruneVanished(
  op: Operation,
  gone: ReadonlySet<PciAddress>,
  prunedBy: PrunedBy,
  options: DepartureOptions & {
    readonly releasing?: Owner;
    /** False when the operator removed them on purpose (`vf set-count --force`): their return is not awaited. */
    readonly awaitReturn?: boolean;
  } = {},
): { readonly pruned: readonly PrunedEntry[]; readonly changes: readonly StateChange[] } {
  if (gone.size === 0) return { pruned: [], changes: [] };
  const result = reconcile({ tables: op.lookup(gone), gone, releasing: options.releasing });
  if (result.pruned.length === 0) return { pruned: [], changes: [] };
  const saved = new Set<string>(op.vfConfigs().map((row) => row.address));
  const changes: StateChange[] = [
    ...(options.awaitReturn === false ? [] : departures(op, result.awaited, prunedBy, options)),
    ...result.changes,
    ...result.pruned.filter((place) => saved.has(place.entry.address)).map((place) => ({ kind: 'drop-vf-config' as const, address: place.entry.address })),
  ];
  return { pruned: result.pruned.map(prunedEntry), changes };
}
