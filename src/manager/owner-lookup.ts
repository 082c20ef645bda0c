import { existsSync } from 'node:fs';
import path from 'node:path';
import type { OwnerLookup } from '../core/iommu.js';
import { TableIndex } from '../core/tables.js';
import { DB_FILE, StateStore } from '../state/store.js';

/**
 * The owner of each device from the active table, for `list` and `show`. Read once, no lock.
 * A state directory without a database means hostdev never took a device: nobody owns anything,
 * and nothing is created (listing must work for any user on a fresh machine).
 */
export function ownerLookupFor(stateDir: string): OwnerLookup {
  if (!existsSync(path.join(stateDir, DB_FILE))) return () => null;
  const store = StateStore.open(stateDir);
  try {
    const index = new TableIndex(store.readTables());
    return (address) => index.active(address)?.usedBy ?? null;
  } finally {
    store.close();
  }
}
