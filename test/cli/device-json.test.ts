import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { deviceJson, ownershipJson } from '../../src/cli/inventory-view.js';
import type { TableLookup } from '../../src/manager/table-lookup.js';
import { buildHost } from '../../src/sim/builder.js';
import { presets } from '../../src/sim/presets.js';
import { readInventory } from '../../src/sysfs/inventory.js';
import { SysfsLayout } from '../../src/sysfs/paths.js';

const base = mkdtempSync(path.join(tmpdir(), 'hostdev-device-json-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('deviceJson: a device with its table fields', () => {
  const root = path.join(base, 'host');
  buildHost(root, presets['sriov-nic']!);
  const devices = readInventory(new SysfsLayout(root), { pciIdsPath: '/nonexistent' }).devices;
  const pf = devices.find((device) => device.sriov !== null)!;
  const vf = devices.find((device) => device.physfn !== null)!;
  const tables: TableLookup = (address: PciAddress | string) =>
    address === pf.address ? { table: 'inactive' } : address === vf.address ? { table: 'active', owner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' } } : null;

  it('prints the key, every PciDevice field in its order, then owner and table, as a spread of all would', () => {
    for (const device of devices) {
      const spread = { key: `pci:${device.address}`, ...device, ...ownershipJson(tables(device.address)) };
      const json = deviceJson(device, tables);
      expect(Object.keys(json)).toEqual(Object.keys(spread));
      expect(JSON.stringify(json, null, 2)).toBe(JSON.stringify(spread, null, 2));
    }
    expect(deviceJson(vf, tables)).toMatchObject({ owner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' }, table: 'active' });
    expect(deviceJson(pf, tables)).toMatchObject({ owner: null, table: 'inactive' });
  });

  it('is the key and the device when there are no tables', () => {
    expect(deviceJson(pf, null)).toEqual({ key: `pci:${pf.address}`, ...pf });
    expect(Object.keys(deviceJson(pf, null))).toEqual(['key', ...Object.keys(pf)]);
  });
});
