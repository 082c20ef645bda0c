import { describe, expect, it } from 'vitest';
import { buildConfigSpace, type ConfigSpaceInput } from '../../src/sim/config-space.js';
import { configFromBytes, pcieLinks } from '../../src/sysfs/config-space.js';

// The link of a PCI Express function as libvirt's node device XML gives it: LnkCap (port, max speed,
// max width) at cap+0x0c, LnkSta (current speed and width) at cap+0x12.
const base: Omit<ConfigSpaceInput, 'pcie'> = {
  vendor: 0x8086, device: 0x10c9, subsystemVendor: 0x8086, subsystemDevice: 0, classCode: 0x020000, revision: 1, bridge: false, multifunction: false, flr: true, acs: false,
};

describe('pcieLinks', () => {
  it('reads cap and sta from the Express capability; a conventional PCI function has none', () => {
    const bytes = buildConfigSpace({ ...base, pcie: 'endpoint' });
    expect(pcieLinks(configFromBytes(bytes))).toEqual([
      { validity: 'cap', port: 0, speed: '5', width: 1 },
      { validity: 'sta', port: null, speed: '5', width: 1 },
    ]);
    // Gen4 x16 on port 3, running at Gen3 x8.
    const cap = bytes.indexOf(0x10, 0x40);
    bytes.writeUInt32LE(((3 << 24) | (16 << 4) | 4) >>> 0, cap + 0x0c);
    bytes.writeUInt16LE((8 << 4) | 3, cap + 0x12);
    expect(pcieLinks(configFromBytes(bytes))).toEqual([
      { validity: 'cap', port: 3, speed: '16', width: 16 },
      { validity: 'sta', port: null, speed: '8', width: 8 },
    ]);
    expect(pcieLinks(configFromBytes(buildConfigSpace({ ...base, pcie: null })))).toEqual([]);
    expect(pcieLinks(configFromBytes(new Uint8Array(64)))).toEqual([]);
  });
});
