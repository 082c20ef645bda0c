import { readdirSync, rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { SysfsLayout } from '../../src/sysfs/paths.js';
import { readDevice, readInventory } from '../../src/sysfs/reader.js';
import { PciIdsDatabase } from '../../src/sysfs/pci-ids.js';
import {
  configSpace,
  endpointFiles,
  tinyDriver,
  tinyGroup,
  tinyRoot,
  writeTinyDevices,
} from '../support/tiny-sysfs.js';

const roots: string[] = [];
function root(): string {
  const dir = tinyRoot();
  roots.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of roots.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const names = new PciIdsDatabase(
  Buffer.from('# test\n8086  Intel Corporation\n\t10c9  82576 Gigabit Network Connection\n\t10ca  82576 Virtual Function\nC 02  Network controller\n\t00  Ethernet controller\n'),
);
const addr = (text: string): PciAddress => text as PciAddress;

/** A root port, a 2-VF SR-IOV PF behind it (igb-like stride 2), its VFs, one IOMMU group each. */
function sriovHost(dir: string): void {
  tinyDriver(dir, 'igb');
  tinyDriver(dir, 'pcieport');
  for (const group of [0, 1, 2, 3]) tinyGroup(dir, group);
  writeTinyDevices(dir, [
    {
      address: '0000:00:01.0',
      files: { ...endpointFiles('8086', '1901', '060400'), config: configSpace({ vendor: 0x8086, device: 0x1901, headerType: 1 }) },
      links: { driver: '../../../bus/pci/drivers/pcieport', iommu_group: '../../../kernel/iommu_groups/0' },
    },
    {
      address: '0000:01:00.0',
      parent: '0000:00:01.0',
      files: {
        ...endpointFiles('8086', '10c9', '020000'),
        numa_node: '0\n',
        driver_override: 'vfio-pci\n',
        reset_method: 'flr bus\n',
        sriov_totalvfs: '7\n',
        sriov_numvfs: '2\n',
        config: configSpace({ vendor: 0x8086, device: 0x10c9, flr: true }),
      },
      links: {
        driver: '../../../../bus/pci/drivers/igb',
        iommu_group: '../../../../kernel/iommu_groups/1',
        virtfn1: '../0000:01:10.2',
        virtfn0: '../0000:01:10.0',
      },
      dirs: ['net', 'net/eth0'],
    },
    ...['0000:01:10.0', '0000:01:10.2'].map((address, index) => ({
      address,
      parent: '0000:00:01.0',
      files: { ...endpointFiles('8086', '10ca', '020000'), config: configSpace({ vendor: 0x8086, device: 0x10ca, flr: true }) },
      links: { physfn: '../0000:01:00.0', iommu_group: `../../../../kernel/iommu_groups/${index + 2}` },
    })),
  ]);
}

describe('readInventory', () => {
  it('reads every field of a PF, its VFs and the bridge above them', () => {
    const dir = root();
    sriovHost(dir);
    const inventory = readInventory(new SysfsLayout(dir), { names });
    expect(inventory.warnings).toEqual([]);
    expect(inventory.iommuEnabled).toBe(true);
    expect(inventory.devices.map((d) => d.address)).toEqual(['0000:00:01.0', '0000:01:00.0', '0000:01:10.0', '0000:01:10.2']);
    const [bridge, pf, vf0] = inventory.devices;
    expect(bridge).toMatchObject({ headerType: 'bridge', class: '0604', driver: 'pcieport', parent: null, iommuGroup: 0 });
    expect(pf).toEqual({
      address: '0000:01:00.0',
      vendor: '8086',
      device: '10c9',
      subsystemVendor: '8086',
      subsystemDevice: '0000',
      class: '0200',
      progIf: '00',
      revision: '01',
      vendorName: 'Intel Corporation',
      deviceName: '82576 Gigabit Network Connection',
      driver: 'igb',
      driverOverride: 'vfio-pci',
      iommuGroup: 1,
      numaNode: 0,
      headerType: 'endpoint',
      parent: '0000:00:01.0',
      physfn: null,
      virtfns: ['0000:01:10.0', '0000:01:10.2'],
      sriov: { totalVfs: 7, numVfs: 2 },
      netdevs: ['eth0'],
      resetMethods: ['flr', 'bus'],
      flr: true,
    });
    expect(vf0).toMatchObject({ physfn: '0000:01:00.0', driver: null, iommuGroup: 2, deviceName: '82576 Virtual Function', sriov: null });
  });

  it('lists broken devices with nulls and warnings and still lists the others', () => {
    const dir = root();
    tinyDriver(dir, 'igb');
    const good = endpointFiles('8086', '10c9', '020000');
    const { vendor: _vendor, ...noVendor } = good;
    const { device: _device, revision: _revision, ...noDevice } = good;
    writeTinyDevices(dir, [
      { address: '0000:00:01.0', files: noVendor },
      { address: '0000:00:02.0', files: { ...good, class: 'network!\n', numa_node: 'lots\n' } },
      { address: '0000:00:03.0', files: good, links: { driver: '../../../bus/pci/drivers/gone' } },
      { address: '0000:00:04.0', files: { ...noDevice, config: new Uint8Array(10) }, dirs: ['device', 'revision'] },
      { address: '0000:00:05.0', files: { ...good, config: configSpace({ vendor: 0x8086, device: 0x10c9 }) }, links: { driver: '../../../bus/pci/drivers/igb' } },
      { address: '0000:00:06.0', files: { ...good, sriov_totalvfs: '2\n', sriov_numvfs: '1\n' }, links: { physfn: '..', virtfn0: '../not-an-address' } },
    ]);
    const inventory = readInventory(new SysfsLayout(dir), { names });
    const byAddress = new Map(inventory.devices.map((d) => [d.address, d]));
    expect(inventory.devices).toHaveLength(6);
    expect(byAddress.get(addr('0000:00:01.0'))).toMatchObject({ vendor: null, vendorName: null, device: '10c9' });
    expect(byAddress.get(addr('0000:00:02.0'))).toMatchObject({ class: null, progIf: null, numaNode: null, vendor: '8086' });
    expect(byAddress.get(addr('0000:00:03.0'))).toMatchObject({ driver: null, vendor: '8086' });
    expect(byAddress.get(addr('0000:00:04.0'))).toMatchObject({ device: null, revision: null, headerType: null, flr: null });
    expect(byAddress.get(addr('0000:00:05.0'))).toMatchObject({ driver: 'igb', flr: false, headerType: 'endpoint' });
    expect(byAddress.get(addr('0000:00:06.0'))).toMatchObject({ physfn: null, virtfns: [] });
    const warned = (address: string): string[] =>
      inventory.warnings.filter((w) => w.address === address).map((w) => w.message);
    expect(warned('0000:00:01.0')).toEqual(['no vendor file']);
    expect(warned('0000:00:02.0')).toEqual(
      expect.arrayContaining([
        expect.stringContaining('unexpected content in class: "network!"'),
        expect.stringContaining('unexpected content in numa_node'),
      ]),
    );
    expect(warned('0000:00:03.0')).toEqual([expect.stringContaining('missing driver')]);
    expect(warned('0000:00:04.0')).toEqual(
      expect.arrayContaining([expect.stringContaining('cannot read device: EISDIR'), expect.stringContaining('cannot read revision')]),
    );
    expect(warned('0000:00:05.0')).toEqual([]);
    expect(warned('0000:00:06.0')).toHaveLength(2);
  });

  it('skips bus entries that are not PCI addresses, with a warning', () => {
    const dir = root();
    writeTinyDevices(dir, [{ address: '0000:00:01.0', files: endpointFiles('8086', '10c9', '020000') }]);
    writeTinyDevices(dir, [{ address: 'junk', files: {} }]);
    const inventory = readInventory(new SysfsLayout(dir), { names: null });
    expect(inventory.devices.map((d) => d.address)).toEqual(['0000:00:01.0']);
    expect(inventory.warnings).toEqual([{ address: 'junk', message: 'not a PCI address; skipped' }]);
    expect(inventory.iommuEnabled).toBe(false);
  });

  it('gives null names and one warning when pci.ids is missing', () => {
    const dir = root();
    writeTinyDevices(dir, ['0000:00:01.0', '0000:00:02.0'].map((address) => ({ address, files: endpointFiles('8086', '10c9', '020000') })));
    const inventory = readInventory(new SysfsLayout(dir), { pciIdsPath: `${dir}/no-pci.ids` });
    expect(inventory.devices.every((d) => d.vendorName === null && d.deviceName === null)).toBe(true);
    expect(inventory.warnings).toHaveLength(1);
    expect(inventory.warnings[0]!.message).toContain('no PCI ID database');
  });

  it('returns an empty inventory with a warning for a root without sysfs', () => {
    const dir = root();
    rmSync(`${dir}/sys`, { recursive: true });
    const inventory = readInventory(new SysfsLayout(dir));
    expect(inventory.devices).toEqual([]);
    expect(inventory.warnings[0]!.message).toContain('cannot list');
  });

  it('reads the real /sys of this machine without warnings', () => {
    const inventory = readInventory(new SysfsLayout('/'));
    expect(inventory.devices.length).toBe(readdirSync('/sys/bus/pci/devices').length);
    expect(inventory.warnings).toEqual([]);
    for (const device of inventory.devices) {
      expect(device.vendor).toMatch(/^[0-9a-f]{4}$/);
      expect(device.class).toMatch(/^[0-9a-f]{4}$/);
    }
  });
});

describe('readDevice', () => {
  it('reads one function, and null for one that does not exist', () => {
    const dir = root();
    sriovHost(dir);
    const layout = new SysfsLayout(dir);
    expect(readDevice(layout, addr('0000:01:10.2'), { names: null })).toMatchObject({
      address: '0000:01:10.2',
      physfn: '0000:01:00.0',
      parent: '0000:00:01.0',
      vendorName: null,
    });
    expect(readDevice(layout, addr('0000:07:00.0'))).toBeNull();
  });

  it('reports warnings through onWarning', () => {
    const dir = root();
    writeTinyDevices(dir, [{ address: '0000:00:01.0', files: { class: 'x' } }]);
    const warnings: string[] = [];
    const device = readDevice(new SysfsLayout(dir), addr('0000:00:01.0'), {
      names: null,
      onWarning: (w) => warnings.push(w.message),
    });
    expect(device).toMatchObject({ vendor: null, device: null, class: null });
    expect(warnings).toHaveLength(3);
  });
});
