import type Database from 'better-sqlite3';
import type { PciAddress } from '../core/address.js';
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
}

/** Over tables already read (dry runs, tests). */
export function tablesSource(tables: Tables): TableSource {
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
  };
}

interface ActiveRow {
  address: string;
  owner_driver: string;
  owner_domain: string;
  managed: number;
  stub_driver: string;
  original_driver: string | null;
}
type InactiveRow = Omit<ActiveRow, 'owner_driver' | 'owner_domain'>;

const inactiveEntry = (row: InactiveRow): InactiveEntry => ({
  address: row.address as PciAddress,
  managed: row.managed === 1,
  stubDriver: row.stub_driver,
  originalDriver: row.original_driver,
});
const activeEntry = (row: ActiveRow): ActiveEntry => ({
  ...inactiveEntry(row),
  usedBy: { driver: row.owner_driver, domain: row.owner_domain },
});

/**
 * Keyed reads on the state database's `active` and `inactive` tables (schema v1 of
 * src/state/schema.ts), through the store's connection, inside the operation that holds the lock.
 * An adapter until the store offers keyed reads on its Operation itself.
 */
export function sqlTableSource(db: Database.Database): TableSource {
  const activeAt = db.prepare('SELECT * FROM active WHERE address = ?');
  const inactiveAt = db.prepare('SELECT * FROM inactive WHERE address = ?');
  return {
    lookup: (addresses) => {
      const active: ActiveEntry[] = [];
      const inactive: InactiveEntry[] = [];
      for (const address of new Set(addresses)) {
        const a = activeAt.get(address) as ActiveRow | undefined;
        if (a) active.push(activeEntry(a));
        const i = inactiveAt.get(address) as InactiveRow | undefined;
        if (i) inactive.push(inactiveEntry(i));
      }
      return { active, inactive };
    },
    ownedBy: (owner) =>
      (db
        .prepare('SELECT * FROM active WHERE owner_driver = ? AND owner_domain = ? ORDER BY address')
        .all(owner.driver, owner.domain) as ActiveRow[]).map(activeEntry),
    inactive: () => (db.prepare('SELECT * FROM inactive ORDER BY address').all() as InactiveRow[]).map(inactiveEntry),
  };
}
