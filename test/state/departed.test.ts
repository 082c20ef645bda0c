import { describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { StateStore } from '../../src/state/store.js';
import { active, addr, tempDir } from './helpers.js';
import { removeChange } from '../../src/core/tables.js';

const PF = '0000:01:00.0' as PciAddress;

describe('store: VF identities and departed VFs', () => {
  it('a noted VF identity lives as long as its table entry; a departed record round-trips with the commit time', async () => {
    const store = StateStore.open(tempDir());
    try {
      const entry = active(16);
      await store.exclusive('assign', async (op) => {
        op.commit([{ kind: 'set-active', entry }, { kind: 'note-vf', address: entry.address, pf: PF, vfIndex: 3 }]);
        expect(op.vfHomes([entry.address, addr(17)])).toEqual(new Map([[entry.address, { pf: PF, vfIndex: 3 }]]));
      });
      const record = {
        address: entry.address,
        pf: PF,
        vfIndex: 3,
        former: { table: 'active' as const, entry },
        owner: entry.usedBy,
        vfConfig: { address: entry.address, pf: 'eth1', vfIndex: 3, mac: '00:00:00:00:00:00', vlan: 0, spoofchk: true, trust: null },
        domainConfig: { vlan: 10 },
        prunedBy: 'watch' as const,
      };
      await store.exclusive('watch-prune', async (op) => {
        op.commit([{ kind: 'record-departed', record }, removeChange(entry.address)]);
        expect(op.vfHomes([entry.address]).size).toBe(0);
      });
      const [stored, ...rest] = store.readDeparted();
      expect(rest).toEqual([]);
      expect(stored).toEqual({ ...record, departedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
      // the same VF (PF, index) departing again replaces its record
      await store.exclusive('status', async (op) => op.commit([{ kind: 'record-departed', record: { ...record, prunedBy: 'status' } }]));
      expect(store.readDeparted().map((r) => r.prunedBy)).toEqual(['status']);
      await store.exclusive('assign', async (op) => op.commit([{ kind: 'drop-departed', pf: PF, vfIndex: 3 }]));
      expect(store.readDeparted()).toEqual([]);
    } finally {
      store.close();
    }
  });
});
