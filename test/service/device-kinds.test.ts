import { describe, expect, it } from 'vitest';
import { simServicePerTest } from '../support/sim-service.js';
import { StateStore } from '../../src/state/store.js';
import type { DeviceKey } from '../../src/core/device-key.js';

// Mediated and USB devices in the tables, on the virt-host preset: an i915 GVT-g parent at 00:02.0
// (one mdev made already), a USB bus with a YubiKey at 1-1.2 and two SanDisk sticks of one vendor:product.
const GPU = '0000:00:02.0';
const V5_4 = 'i915-GVTg_V5_4';
const EXISTING = '4b20d080-1b54-4048-85b3-a6a62d165c01';
const UUID_A = 'a297db4a-f4c2-11e6-90f6-d3b88d6c9525';
const KEY_A = `mdev:${UUID_A}` as DeviceKey;

const sim = simServicePerTest('hostdev-kinds-', 'virt-host');

function journalRows(): readonly unknown[] {
  const snapshot = StateStore.openSnapshot(sim.stateDir);
  try {
    return snapshot.readJournal();
  } finally {
    snapshot.close();
  }
}

const mdevUuids = async (): Promise<string[]> => (await sim.service.mdevList()).devices.map((d) => (d as { uuid: string }).uuid);

describe('mdev create and remove', () => {
  it('creates through the type create file (journaled, cleared by the commit), lists it, removes it through its remove file', async () => {
    const made = await sim.service.mdevCreate({ parent: GPU, type: V5_4, uuid: UUID_A.toUpperCase() });
    expect(made).toMatchObject({ key: KEY_A, uuid: UUID_A, parent: GPU, type: V5_4, dryRun: false });
    expect(made.write).toEqual({ path: `/sys/class/mdev_bus/${GPU}/mdev_supported_types/${V5_4}/create`, value: UUID_A });
    expect(await mdevUuids()).toEqual([EXISTING, UUID_A].sort());
    expect(journalRows()).toEqual([]);
    await sim.service.mdevRemove({ uuid: UUID_A });
    expect(await mdevUuids()).toEqual([EXISTING]);
  });

  it('a dry run writes nothing; the kernel refusals come back as catalog errors with the errno', async () => {
    const dry = await sim.service.mdevCreate({ parent: GPU, type: V5_4, uuid: UUID_A, dryRun: true });
    expect(dry.dryRun).toBe(true);
    expect(await mdevUuids()).toEqual([EXISTING]);
    await expect(sim.service.mdevCreate({ parent: GPU, type: 'i915-GVTg_V5_8', uuid: EXISTING })).rejects.toMatchObject({
      code: 'HOSTDEV_KERNEL_WRITE',
      details: { errno: 'EEXIST', key: `mdev:${EXISTING}` },
    });
    await expect(sim.service.mdevCreate({ parent: GPU, type: 'nope' })).rejects.toMatchObject({ code: 'HOSTDEV_DEVICE_NOT_FOUND' });
    await expect(sim.service.mdevCreate({ parent: '0000:00:19.0', type: V5_4 })).rejects.toMatchObject({ code: 'HOSTDEV_DEVICE_NOT_FOUND' });
    await expect(sim.service.mdevCreate({ parent: GPU, type: V5_4, uuid: 'not-a-uuid' })).rejects.toMatchObject({ code: 'HOSTDEV_USAGE' });
    // V5_4 offers 1 instance on this parent: the second create is EUSERS from the kernel.
    const types = (await sim.service.mdevList()).parents.find((p) => p.name === GPU)!.types;
    const left = types.find((t) => t.id === V5_4)!.availableInstances!;
    for (let i = 0; i < left; i += 1) await sim.service.mdevCreate({ parent: GPU, type: V5_4 });
    await expect(sim.service.mdevCreate({ parent: GPU, type: V5_4 })).rejects.toMatchObject({ code: 'HOSTDEV_KERNEL_WRITE', details: { errno: 'EUSERS' } });
    expect(journalRows()).toEqual([]);
  });

  it('recovery clears the journal row of a create a dead hostdev left, and says whether the mdev was made', async () => {
    sim.service.close();
    const store = StateStore.open(sim.stateDir);
    const write = `/sys/class/mdev_bus/${GPU}/mdev_supported_types/${V5_4}/create`;
    // An operation that wrote its intent and the create, then died before its commit.
    await store.exclusive('mdev-create', async (op) => {
      op.intendDevice({ key: KEY_A, action: 'mdev-create', hostPath: write, value: UUID_A });
      await sim.host.kernel.write(write, UUID_A);
    });
    expect(store.readJournal()).toHaveLength(1);
    store.close();
    await sim.open();
    expect(sim.service.warnings.join('\n')).toContain(`${KEY_A}: an mdev create a hostdev that did not finish left: the mediated device was created`);
    expect(journalRows()).toEqual([]);
  });
});

describe('mdev assign, release, qemu-args, prune', () => {
  it('assigns mdev:UUID to one domain only (libvirt\'s "in use by driver, domain"), gives QEMU its sysfsdev, releases it', async () => {
    await sim.service.mdevCreate({ parent: GPU, type: V5_4, uuid: UUID_A });
    const assigned = await sim.service.assignDevices({ domain: 'vm1', devices: [KEY_A] });
    expect(assigned.assigned).toEqual([KEY_A]);
    const status = await sim.service.status();
    expect(status.devices).toEqual([
      { key: KEY_A, kind: 'mdev', usedBy: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' }, identity: { kind: 'mdev', parent: GPU, type: V5_4 } },
    ]);
    const taken = sim.service.assignDevices({ domain: 'vm2', devices: [KEY_A] });
    await expect(taken).rejects.toMatchObject({ code: 'HOSTDEV_IN_USE', message: `mediated device ${KEY_A} is in use by driver qemu, domain vm1` });
    await expect(sim.service.mdevRemove({ uuid: UUID_A })).rejects.toMatchObject({ code: 'HOSTDEV_IN_USE' });
    const args = await sim.service.qemuArgs({ domain: 'vm1' });
    expect(args.argv).toEqual([
      '-device',
      `pcie-root-port,id=hostdev-mdev-${UUID_A}-rp,chassis=1,slot=0`,
      '-device',
      `vfio-pci,sysfsdev=/sys/bus/mdev/devices/${UUID_A},id=hostdev-mdev-${UUID_A},bus=hostdev-mdev-${UUID_A}-rp`,
    ]);
    expect(args.otherKeys).toEqual([KEY_A]);
    const released = await sim.service.release({ domain: 'vm1' });
    expect(released.devices).toMatchObject({ released: [KEY_A], pruned: [] });
    expect((await sim.service.status()).devices).toBeUndefined();
    await sim.service.mdevRemove({ uuid: UUID_A });
  });

  it('an mdev removed behind hostdev\'s back is pruned by status, recorded as departed, and reported by the release', async () => {
    await sim.service.mdevCreate({ parent: GPU, type: V5_4, uuid: UUID_A });
    await sim.service.assignDevices({ domain: 'vm1', devices: [KEY_A] });
    await sim.host.kernel.write(`/sys/bus/mdev/devices/${UUID_A}/remove`, '1');
    const status = await sim.service.status();
    expect(status.devices).toEqual([]);
    expect(status.prunedDevices).toEqual([{ key: KEY_A, usedBy: expect.objectContaining({ vm: 'vm1' }), awaited: true }]);
    expect(status.departedDevices).toMatchObject([{ entry: { key: KEY_A }, prunedBy: 'status', back: false }]);
    // made again with its UUID (what mdevctl's definitions do at boot): reported as back
    await sim.service.mdevCreate({ parent: GPU, type: V5_4, uuid: UUID_A });
    expect((await sim.service.status()).departedDevices).toMatchObject([{ entry: { key: KEY_A }, back: true }]);
    const released = await sim.service.release({ domain: 'vm1' });
    expect(released.devices).toMatchObject({ released: [], pruned: [KEY_A] });
    expect((await sim.service.status()).departedDevices).toBeUndefined();
  });

  it('a release names a vanished mdev it holds: pruned in the same commit, not awaited back', async () => {
    await sim.service.mdevCreate({ parent: GPU, type: V5_4, uuid: UUID_A });
    await sim.service.assignDevices({ domain: 'vm1', devices: [KEY_A] });
    await sim.host.kernel.write(`/sys/bus/mdev/devices/${UUID_A}/remove`, '1');
    const released = await sim.service.releaseDevices({ domain: 'vm1', devices: [KEY_A] });
    expect(released).toMatchObject({ released: [], pruned: [KEY_A] });
    expect((await sim.service.status()).departedDevices).toBeUndefined();
  });
});

describe('USB assign, select by vendor:product, unplug and replug', () => {
  it('assigns usb:1-1.2 (ownership only: its interfaces keep their drivers), gives QEMU usb-host with bus and port', async () => {
    const dry = await sim.service.assignDevices({ domain: 'vm1', devices: ['usb:1-1.2'], dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, assigned: ['usb:1-1.2'] });
    expect((await sim.service.status()).devices).toBeUndefined();
    await sim.service.assignDevices({ domain: 'vm1', devices: ['usb:1050:0407'] });
    const listed = (await sim.service.listKind('usb')).report.find((d) => d.key === 'usb:1-1.2')!;
    expect(listed).toMatchObject({ interfaceDrivers: ['usbhid', 'usbhid', null], table: 'active', owner: { vm: 'vm1' } });
    const args = await sim.service.qemuArgs({ domain: 'vm1' });
    expect(args.argv).toEqual(['-device', 'qemu-xhci,id=hostdev-xhci', '-device', 'usb-host,hostbus=1,hostport=1.2,id=hostdev-usb-1-1_2,bus=hostdev-xhci.0']);
    await expect(sim.service.assignDevices({ domain: 'vm2', devices: ['usb:1-1.2'] })).rejects.toMatchObject({
      code: 'HOSTDEV_IN_USE',
      message: 'USB device usb:1-1.2 is in use by driver qemu, domain vm1',
    });
  });

  it("refuses a vendor:product two devices share with libvirt's message, and one no device has", async () => {
    await expect(sim.service.assignDevices({ domain: 'vm1', devices: ['usb:0781:5581'] })).rejects.toMatchObject({
      code: 'HOSTDEV_AMBIGUOUS_DEVICE',
      message: 'Multiple USB devices for 781:5581, use <address> to specify one',
      details: { keys: ['usb:1-1.3', 'usb:1-2'] },
    });
    await expect(sim.service.assignDevices({ domain: 'vm1', devices: ['usb:dead:beef'] })).rejects.toMatchObject({ code: 'HOSTDEV_DEVICE_NOT_FOUND' });
    await expect(sim.service.assignDevices({ domain: 'vm1', devices: ['usb:1-3'] })).rejects.toMatchObject({ code: 'HOSTDEV_DEVICE_NOT_FOUND' });
    // a PCI function is assign's (its driver changes), not a device assign's
    await expect(sim.service.assignDevices({ domain: 'vm1', devices: ['pci:0000:00:19.0'] })).rejects.toMatchObject({ code: 'HOSTDEV_BAD_ADDRESS' });
    // all or nothing: the good key of a refused request is not taken
    await expect(sim.service.assignDevices({ domain: 'vm1', devices: ['usb:1-4', 'usb:1-3'] })).rejects.toMatchObject({ code: 'HOSTDEV_DEVICE_NOT_FOUND' });
    expect((await sim.service.status()).devices).toBeUndefined();
  });

  it('unplugged while assigned: pruned and departed; plugged back on the same port with the same vendor:product: back', async () => {
    await sim.service.assignDevices({ domain: 'vm1', devices: ['usb:1-4'] });
    await sim.host.kernel.write('/sys/bus/usb/devices/1-4/remove', '1');
    const status = await sim.service.status();
    expect(status.prunedDevices).toMatchObject([{ key: 'usb:1-4', awaited: true }]);
    expect(status.departedDevices).toMatchObject([{ entry: { key: 'usb:1-4', identity: { vendor: '046d', product: 'c31c' } }, back: false }]);
    // another device on that port is not it
    sim.host.kernel.plugUsb(1, { port: '4', vendor: '1050', product: '0407' });
    expect((await sim.service.status()).departedDevices).toMatchObject([{ back: false }]);
    await sim.host.kernel.write('/sys/bus/usb/devices/1-4/remove', '1');
    sim.host.kernel.plugUsb(1, { port: '4', vendor: '046d', product: 'c31c' });
    expect((await sim.service.status()).departedDevices).toMatchObject([{ entry: { key: 'usb:1-4' }, back: true }]);
    const released = await sim.service.release({ domain: 'vm1' });
    expect(released.devices).toMatchObject({ pruned: ['usb:1-4'] });
  });
});

describe('PCI reports stay as they were', () => {
  it('status has no device fields while no entry of another kind exists; a domain with both kinds releases both', async () => {
    await sim.service.assign({ domain: 'vm1', addresses: ['0000:00:19.0'] });
    const status = await sim.service.status();
    expect(Object.keys(status)).not.toContain('devices');
    await sim.service.assignDevices({ domain: 'vm1', devices: ['usb:1-4'] });
    const released = await sim.service.release({ domain: 'vm1' });
    expect(released.released).toEqual(['0000:00:19.0']);
    expect(released.devices).toMatchObject({ released: ['usb:1-4'] });
    await expect(sim.service.release({ domain: 'vm1' })).rejects.toMatchObject({ code: 'HOSTDEV_DOMAIN_NOT_FOUND' });
    await sim.reopen();
    expect(Object.keys(await sim.service.status())).not.toContain('devices');
  });
});
