import { describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { isHostdevError } from '../../src/core/errors.js';
import { deviceAddArguments, placeDevices, type VmSlots } from '../../src/core/hotplug.js';
import { qemuArgs } from '../../src/core/qemu-args.js';

const A = '0000:01:10.0' as PciAddress;
const B = '0000:01:10.1' as PciAddress;
const C = '0000:01:10.2' as PciAddress;

function q35(ports: Record<string, boolean>, ids: string[] = []): VmSlots {
  return { machine: 'q35', rootPorts: Object.entries(ports).map(([id, occupied]) => ({ id, occupied })), deviceIds: new Set(ids) };
}

describe('placeDevices', () => {
  it('gives each device not in the VM a free root port, by port name in numeric order and devices in address order', () => {
    const layout = placeDevices([C, A], q35({ rp10: false, rp2: false, rp1: true }), 'vm1');
    expect(layout.place).toEqual([
      { address: A, id: 'hostdev-0000_01_10_0', bus: 'rp2' },
      { address: C, id: 'hostdev-0000_01_10_2', bus: 'rp10' },
    ]);
    expect(layout.present).toEqual([]);
  });

  it('leaves a device the VM has already (by its hostdev id) where it is', () => {
    const layout = placeDevices([A, B], q35({ rp1: false }, ['hostdev-0000_01_10_0']), 'vm1');
    expect(layout).toEqual({ place: [{ address: B, id: 'hostdev-0000_01_10_1', bus: 'rp1' }], present: [A] });
  });

  it('refuses when free root ports run short, naming how many and the devices', () => {
    let error: unknown;
    try {
      placeDevices([A, B], q35({ rp1: false, rp2: true }), 'vm1');
    } catch (caught) {
      error = caught;
    }
    expect(isHostdevError(error) && error.code).toBe('HOSTDEV_NO_FREE_SLOT');
    expect(isHostdevError(error) && error.message).toBe('vm1 has 1 free PCIe root port(s) and 2 device(s) to plug (0000:01:10.0, 0000:01:10.1)');
  });

  it('puts devices on the root bus of a pc machine', () => {
    const layout = placeDevices([A], { machine: 'pc', rootPorts: [], deviceIds: new Set() }, 'vm1');
    expect(layout.place).toEqual([{ address: A, id: 'hostdev-0000_01_10_0', bus: null }]);
    expect(deviceAddArguments(layout.place[0]!)).toEqual({ driver: 'vfio-pci', host: A, id: 'hostdev-0000_01_10_0' });
  });

  it('names devices as qemu-args does, so one started from qemu-args is unplugged by the same id', () => {
    const [placed] = placeDevices([A], q35({ rp: false }), 'vm1').place;
    expect(qemuArgs([{ address: A }]).join(' ')).toContain(`id=${placed!.id}`);
    expect(deviceAddArguments(placed!)).toEqual({ driver: 'vfio-pci', host: A, id: placed!.id, bus: 'rp' });
  });
});
