import { describe, expect, it } from 'vitest';
import { parseAddress } from '../../src/core/address.js';
import { deviceArgument, guestDevice, guestNames } from '../../src/core/guest-device.js';
import { placeGuestDevices, type VmBuses, type VmSlots } from '../../src/core/hotplug.js';
import { isHostdevError } from '../../src/core/errors.js';
import type { DeviceKey } from '../../src/core/device-key.js';

const controller = parseAddress('0000:01:00.0');
// QEMU refuses a block node name of 32 characters or more ("Node name too long").
const QEMU_NODE_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,30}$/;

describe('guestDevice: the QEMU spelling of each kind', () => {
  it('gives block node names QEMU takes, even for the largest NSID and SCSI numbers', () => {
    expect(guestNames({ kind: 'nvme', controller, namespace: 1 }).node).toBe('hd-nvme-0000_01_00_0-1');
    expect(guestNames({ kind: 'nvme', controller, namespace: 0xfffffffe }).node).toMatch(QEMU_NODE_NAME);
    expect(guestNames({ kind: 'scsi', host: 2, bus: 0, target: 1, lun: 0 }).node).toBe('hostdev-scsi-2_0_1_0-backend');
    const big = guestNames({ kind: 'scsi', host: 4000, bus: 0, target: 1024, lun: 16383 }).node!;
    expect(big).toMatch(QEMU_NODE_NAME);
    expect(big).toBe(guestNames({ kind: 'scsi', host: 4000, bus: 0, target: 1024, lun: 16383 }).node);
    expect(big).not.toBe(guestNames({ kind: 'scsi', host: 4000, bus: 0, target: 1024, lun: 16384 }).node);
  });

  it('a read-only SCSI device opens its generic node read-only; the command-line spelling is the device_add one', () => {
    const tape = guestDevice({ kind: 'scsi', host: 2, bus: 0, target: 1, lun: 0, sg: 'sg1', readOnly: true });
    expect(tape.blockdev).toMatchObject({ driver: 'host_device', filename: '/dev/sg1', 'read-only': true });
    expect(deviceArgument(tape.props({ bus: 's.0', channel: 0, scsiId: 0, lun: 3 }))).toBe(
      'scsi-generic,bus=s.0,channel=0,scsi-id=0,lun=3,drive=hostdev-scsi-2_0_1_0-backend,id=hostdev-scsi-2_0_1_0',
    );
  });
});

describe('placeGuestDevices', () => {
  const slots: VmSlots = { machine: 'q35', rootPorts: [{ id: 'rp10', occupied: false }, { id: 'rp2', occupied: false }, { id: 'rp1', occupied: true }], deviceIds: new Set() };
  const buses: VmBuses = { usb: [{ id: 'ehci', type: 'usb-ehci' }, { id: 'x', type: 'qemu-xhci' }], scsi: [], scsiUnits: [] };
  const mdev = { key: 'mdev:4b20d080-1b54-4048-85b3-a6a62d165c01' as DeviceKey, guest: guestDevice({ kind: 'mdev', uuid: '4b20d080-1b54-4048-85b3-a6a62d165c01' }) };
  const usb = { key: 'usb:1-1.2' as DeviceKey, guest: guestDevice({ kind: 'usb', bus: 1, ports: [1, 2] }) };

  it('puts an mdev on the first free root port by name and USB on an xHCI before other USB controllers', () => {
    const layout = placeGuestDevices([usb, mdev], slots, buses, 'vm1');
    expect(layout.place.map((p) => [p.key, p.at])).toEqual([
      [mdev.key, 'rp2'],
      [usb.key, 'x.0'],
    ]);
  });

  it('refuses SCSI devices on a VM without a SCSI controller, and more PCI-seated devices than free ports', () => {
    const tape = { key: 'scsi:2:0:1:0' as DeviceKey, guest: guestDevice({ kind: 'scsi', host: 2, bus: 0, target: 1, lun: 0, sg: 'sg1' }) };
    const caught = (run: () => unknown): unknown => {
      try {
        return run();
      } catch (error) {
        return error;
      }
    };
    expect(caught(() => placeGuestDevices([tape], slots, buses, 'vm1'))).toMatchObject({ code: 'HOSTDEV_NO_CONTROLLER' });
    const nvme = { key: 'nvme:0000:01:00.0/1' as DeviceKey, guest: guestDevice({ kind: 'nvme', controller, namespace: 1 }) };
    const nvme2 = { key: 'nvme:0000:01:00.0/2' as DeviceKey, guest: guestDevice({ kind: 'nvme', controller, namespace: 2 }) };
    const error = caught(() => placeGuestDevices([mdev, nvme, nvme2], slots, buses, 'vm1'));
    expect(isHostdevError(error) && error.code).toBe('HOSTDEV_NO_FREE_SLOT');
  });
});
