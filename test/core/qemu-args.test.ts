import { describe, expect, it } from 'vitest';
import { parseAddress } from '../../src/core/address.js';
import { hostdevDeviceId, qemuArgs } from '../../src/core/qemu-args.js';
import { shellJoin } from '../../src/core/shell.js';

const vf0 = parseAddress('0000:03:10.0');
const vf1 = parseAddress('0000:03:10.2');
const nic = parseAddress('0000:01:00.0');

describe('qemuArgs', () => {
  it('gives each device its own root port on q35, in address order, with ids derived from the address', () => {
    expect(qemuArgs([{ address: vf0 }, { address: nic }])).toEqual([
      '-device', 'pcie-root-port,id=hostdev-0000_01_00_0-rp,chassis=1,slot=0',
      '-device', 'vfio-pci,host=0000:01:00.0,id=hostdev-0000_01_00_0,bus=hostdev-0000_01_00_0-rp',
      '-device', 'pcie-root-port,id=hostdev-0000_03_10_0-rp,chassis=2,slot=0',
      '-device', 'vfio-pci,host=0000:03:10.0,id=hostdev-0000_03_10_0,bus=hostdev-0000_03_10_0-rp',
    ]);
  });

  it('is stable: the same set in any order gives the same arguments, duplicates once', () => {
    const a = qemuArgs([{ address: vf1 }, { address: vf0 }, { address: nic }]);
    const b = qemuArgs([{ address: nic }, { address: vf0 }, { address: vf1 }, { address: vf0 }]);
    expect(a).toEqual(b);
    expect(a.filter((x) => x.startsWith('vfio-pci'))).toHaveLength(3);
  });

  it('puts devices on the root bus without root ports for the pc machine', () => {
    expect(qemuArgs([{ address: vf0 }], { machine: 'pc' })).toEqual([
      '-device', 'vfio-pci,host=0000:03:10.0,id=hostdev-0000_03_10_0',
    ]);
  });

  it('numbers chassis from firstChassis and refuses to overflow chassis 255', () => {
    expect(qemuArgs([{ address: vf0 }], { firstChassis: 10 })[1]).toContain('chassis=10,');
    expect(() => qemuArgs([{ address: vf0 }, { address: vf1 }], { firstChassis: 255 })).toThrow(/chassis/);
  });

  it('produces ids QEMU accepts (a letter first, then letters, digits, "-", "_", ".")', () => {
    expect(hostdevDeviceId(parseAddress('ffff:ff:1f.7'))).toMatch(/^[A-Za-z][\w.-]*$/);
  });

  it('returns nothing for a domain without devices', () => {
    expect(qemuArgs([])).toEqual([]);
  });

  it('renders a shell line that needs no quoting for its own arguments', () => {
    expect(shellJoin(qemuArgs([{ address: vf0 }]))).toBe(
      '-device pcie-root-port,id=hostdev-0000_03_10_0-rp,chassis=1,slot=0 -device vfio-pci,host=0000:03:10.0,id=hostdev-0000_03_10_0,bus=hostdev-0000_03_10_0-rp',
    );
    expect(shellJoin(["it's"])).toBe(`'it'\\''s'`);
  });
});
