import { existsSync } from 'node:fs';
import path from 'node:path';
import type { PciAddress } from '../core/address.js';
import { TableIndex, type Owner } from '../core/tables.js';
import { DB_FILE } from '../state/files.js';

/** Where a device stands in hostdev's tables: owned by a domain, detached for nobody, or neither (null). */
export type TableMembership = { readonly table: 'active'; readonly owner: Owner } | { readonly table: 'inactive' };
export type TableLookup = (address: PciAddress) => TableMembership | null;

/**
 * Both tables, read once and without the lock, for the inventory commands. A state directory
 * without a database means hostdev never took a device: nobody owns anything, nothing is created,
 * and SQLite is not even loaded (the common case on a host where `list` is all that runs).
 */
export async function tableLookupFor(stateDir: string): Promise<TableLookup> {
  if (!existsSync(path.join(stateDir, DB_FILE))) return () => null;
  const { StateStore } = await import('../state/store.js');
  const store = StateStore.open(stateDir);
  try {
    const index = new TableIndex(store.readTables());
    return (address) => {
      const found = index.find(address);
      if (found === undefined) return null;
      return found.table === 'active' ? { table: 'active', owner: found.entry.usedBy } : { table: 'inactive' };
    };
  } finally {
    store.close();
  }
}
