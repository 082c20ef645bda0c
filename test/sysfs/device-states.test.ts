import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { snapshotOf } from '../../src/core/events.js';
import { buildHost } from '../../src/sim/builder.js';
import { generateSpec, presets } from '../../src/sim/presets.js';
import { readDeviceStates } from '../../src/sysfs/device-states.js';
import { SysfsLayout } from '../../src/sysfs/paths.js';
import { readInventory, readVirtfnLinks } from '../../src/sysfs/reader.js';
import { endpointFiles, tinyDriver, tinyRoot, writeTinyDevices } from '../support/tiny-sysfs.js';

// The watcher's snapshot reads five ops per function, not the whole inventory: what it gives must be
// what the inventory says of the same tree, on every preset and on broken trees.
const base = mkdtempSync(path.join(tmpdir(), 'hostdev-device-states-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** The inventory's answer, as the watcher took it before: its fields, and the virtfnN links of the PFs. */
function fromInventory(root: string) {
  const layout = new SysfsLayout(root);
  return readInventory(layout, { names: null }).devices.map(({ address, driver, physfn, virtfns, sriov }) => ({
    address,
    driver,
    physfn,
    virtfns,
    sriov,
    virtfnLinks: sriov !== null ? readVirtfnLinks(layout, address) : undefined,
  }));
}

function expectAgreement(root: string): void {
  const states = readDeviceStates(new SysfsLayout(root));
  const expected = fromInventory(root);
  expect(states.map(({ virtfnLinks: _links, ...fields }) => fields)).toEqual(expected.map(({ virtfnLinks: _links, ...fields }) => fields));
  expect(states.filter((s) => s.sriov !== null).map((s) => s.virtfnLinks)).toEqual(expected.filter((e) => e.sriov !== null).map((e) => e.virtfnLinks));
  expect(snapshotOf(states)).toEqual(snapshotOf(expected.map(({ virtfnLinks, ...fields }) => (virtfnLinks ? { ...fields, virtfnLinks } : fields))));
}

describe('readDeviceStates', () => {
  for (const [name, spec] of Object.entries(presets)) {
    it(`agrees with the inventory on the ${name} preset`, () => {
      const root = path.join(base, name);
      buildHost(root, spec);
      expectAgreement(root);
    });
  }

  it('agrees on a generated 256-function host', () => {
    const root = path.join(base, 'generated');
    buildHost(root, generateSpec(256));
    expect(readDeviceStates(new SysfsLayout(root))).toHaveLength(256);
    expectAgreement(root);
  });

  it('keeps the N of virtfnN when virtfn0 is gone, as the inventory does', () => {
    const root = path.join(base, 'no-virtfn0');
    buildHost(root, presets['sriov-nic']!);
    const layout = new SysfsLayout(root);
    unlinkSync(layout.device('0000:01:00.0' as PciAddress, 'virtfn0'));
    const pf = readDeviceStates(layout).find((s) => s.address === '0000:01:00.0');
    expect(pf?.virtfnLinks?.[0]).toEqual({ index: 1, address: '0000:01:10.2' });
    expectAgreement(root);
  });

  it('agrees on a broken tree: dangling driver link, bad counts, a physfn that names nothing', () => {
    const root = tinyRoot();
    try {
      tinyDriver(root, 'igb');
      const good = endpointFiles('8086', '10c9', '020000');
      writeTinyDevices(root, [
        { address: '0000:00:01.0', files: good, links: { driver: '../../../bus/pci/drivers/gone' } },
        { address: '0000:00:02.0', files: { ...good, sriov_totalvfs: 'many\n', sriov_numvfs: '1\n' }, links: { driver: '../../../bus/pci/drivers/igb' } },
        { address: '0000:00:03.0', files: { ...good, sriov_totalvfs: '2\n', sriov_numvfs: '?\n' }, links: { physfn: '..', virtfn0: '../not-an-address' } },
        { address: '0000:00:04.0', files: good, links: { physfn: '../0000:00:03.0' } },
      ]);
      const states = readDeviceStates(new SysfsLayout(root));
      expect(states.map((s) => [s.driver, s.physfn, s.sriov])).toEqual([
        [null, null, null],
        ['igb', null, null],
        [null, null, { totalVfs: 2, numVfs: 0 }],
        [null, '0000:00:03.0', null],
      ]);
      expectAgreement(root);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('leaves out a bus entry that is gone, and gives nothing for a root without sysfs', () => {
    const root = path.join(base, 'gone');
    buildHost(root, presets['sriov-nic']!);
    const layout = new SysfsLayout(root);
    const before = readDeviceStates(layout).length;
    unlinkSync(path.join(layout.pciDevicesDir, '0000:01:10.0'));
    writeFileSync(path.join(base, 'not-a-root'), '');
    expect(readDeviceStates(layout)).toHaveLength(before - 1);
    expect(readDeviceStates(new SysfsLayout(path.join(base, 'not-a-root')))).toEqual([]);
  });
});
