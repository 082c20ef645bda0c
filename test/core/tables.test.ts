import { describe, expect, it } from 'vitest';
import {
  applyChanges,
  formatOwner,
  ownerCell,
  removeChange,
  sameOwner,
  TableIndex,
  toActive,
  type InactiveEntry,
  type Tables,
} from '../../src/core/tables.js';
import { addr } from '../support/pci-device-fixture.js';
import { pciKey } from '../../src/core/device-key.js';

const vm1 = { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' };
const inactive = (address: string): InactiveEntry => ({
  key: pciKey(addr(address)),
  address: addr(address),
  managed: false,
  stubDriver: 'vfio-pci',
  originalDriver: 'igbvf',
});

describe('device tables', () => {
  it('set-active moves an entry out of the inactive table', () => {
    const tables: Tables = { active: [], inactive: [inactive('0000:01:10.0')] };
    const next = applyChanges(tables, [{ kind: 'set-active', entry: toActive(inactive('0000:01:10.0'), vm1) }]);
    expect(next.inactive).toEqual([]);
    expect(next.active).toEqual([{ ...inactive('0000:01:10.0'), usedBy: vm1 }]);
  });

  it('set-inactive moves an entry out of the active table', () => {
    const tables: Tables = { active: [toActive(inactive('0000:01:10.0'), vm1)], inactive: [] };
    const next = applyChanges(tables, [{ kind: 'set-inactive', entry: inactive('0000:01:10.0') }]);
    expect(next).toEqual({ active: [], inactive: [inactive('0000:01:10.0')] });
  });

  it('remove drops an address from both tables', () => {
    const tables: Tables = { active: [toActive(inactive('0000:01:10.0'), vm1)], inactive: [inactive('0000:01:10.2')] };
    const next = applyChanges(tables, [
      removeChange(addr('0000:01:10.0')),
      removeChange(addr('0000:01:10.2')),
    ]);
    expect(next).toEqual({ active: [], inactive: [] });
  });

  it('applies changes in order and keeps both tables sorted by address', () => {
    const next = applyChanges({ active: [], inactive: [] }, [
      { kind: 'set-inactive', entry: inactive('0000:02:00.0') },
      { kind: 'set-inactive', entry: inactive('0000:01:00.0') },
      { kind: 'set-active', entry: toActive(inactive('0000:02:00.0'), vm1) },
    ]);
    expect(next.inactive.map((entry) => entry.address)).toEqual(['0000:01:00.0']);
    expect(next.active.map((entry) => entry.address)).toEqual(['0000:02:00.0']);
  });

  it('the index finds an address in either table and lists a domain\'s devices', () => {
    const index = new TableIndex({
      active: [toActive(inactive('0000:01:10.0'), vm1), toActive(inactive('0000:01:10.4'), { driver: 'qemu', domain: 'vm2', hypervisor: 'qemu', vm: 'vm2' })],
      inactive: [inactive('0000:01:10.2')],
    });
    expect(index.active(addr('0000:01:10.0'))?.usedBy).toEqual(vm1);
    expect(index.inactive(addr('0000:01:10.2'))).toBeDefined();
    expect(index.find(addr('0000:01:10.6'))).toBeUndefined();
    expect(index.ownedBy(vm1).map((entry) => entry.address)).toEqual(['0000:01:10.0']);
    expect(ownerCell({ table: 'active', owner: index.active(addr('0000:01:10.0'))!.usedBy })).toBe('qemu/vm1');
    expect(ownerCell(index.find(addr('0000:01:10.2'))!)).toBe('hostdev (detached)');
    expect(ownerCell(null)).toBe('-');
    expect(formatOwner(vm1)).toBe('driver qemu, domain vm1');
    expect(formatOwner(null)).toBe('detached, no owner');
  });

  it('an owner is the pair (driver, domain): the same domain name under another driver is someone else', () => {
    expect(sameOwner(vm1, { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' })).toBe(true);
    expect(sameOwner(vm1, { driver: 'xen', domain: 'vm1', hypervisor: 'xen', vm: 'vm1' })).toBe(false);
  });
});
