import type { PciAddress } from '../core/address.js';
import type { SavedVfNet } from '../core/vf-net-config.js';
import { TableIndex, type ActiveEntry, type InactiveEntry, type Owner, type Tables } from '../core/tables.js';

/**
 * The table entries an operation needs, without reading whole tables: an assign of 4 devices on a
 * host whose tables hold 4,096 entries reads the rows of its devices and their group members only,
 * so its cost does not grow with the tables (bench/assign-release.ts).
 */
export interface TableSource {
  /** The entries of these addresses (those in no table are simply absent). */
  lookup(addresses: Iterable<PciAddress>): Tables;
  ownedBy(owner: Owner): readonly ActiveEntry[];
  inactive(): readonly InactiveEntry[];
  /** The VF network configs saved by assigns (what a release puts back); none when absent. */
  vfConfigs?(): readonly SavedVfNet[];
}

/** Over tables already read (dry runs, tests). */
export function tablesSource(tables: Tables, saved: readonly SavedVfNet[] = []): TableSource {
  const index = new TableIndex(tables);
  return {
    lookup: (addresses) => {
      const active: ActiveEntry[] = [];
      const inactive: InactiveEntry[] = [];
      for (const address of new Set(addresses)) {
        const found = index.find(address);
        if (found?.table === 'active') active.push(found.entry);
        if (found?.table === 'inactive') inactive.push(found.entry);
      }
      return { active, inactive };
    },
    ownedBy: (owner) => index.ownedBy(owner),
    inactive: () => tables.inactive,
    vfConfigs: () => saved,
  };
}
