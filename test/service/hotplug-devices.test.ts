import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeviceKey } from '../../src/core/device-key.js';
import { isHostdevError } from '../../src/core/errors.js';
import { QmpClient, type QmpPort } from '../../src/qmp/qmp-client.js';
import { HostdevService } from '../../src/service/hostdev-service.js';
import { createSimulatedHost, simulatedHost } from '../../src/sim-entry.js';
import { qemuMissing, startQemu, withExecute, type RunningQemu } from '../support/qemu.js';

// Hot-plug of mediated, USB, NVMe and SCSI devices into a real QEMU (TCG, no guest) over QMP, from
// the virt-host simulated host. QEMU 10 here takes a usb-host whose hostbus/hostport does not
// exist (it waits for the device), so USB goes through for real. It refuses what needs the host
// device: vfio-pci of an mdev path that does not exist, blockdev-add of an nvme controller (no
// /dev/vfio/vfio) and of a host_device on a /dev/sgN that does not exist: those are the rollback
// cases. Where the whole sequence must go through, a wrapper of the real client sends the block
// node as one QEMU can open (null-co for NVMe, /dev/null for SCSI) under the same node-name;
// everything else goes to QEMU as hostdev sent it.
const MDEV = 'mdev:4b20d080-1b54-4048-85b3-a6a62d165c01' as DeviceKey;
const USB = 'usb:1-1.2' as DeviceKey;
const NVME = 'nvme:0000:01:00.0/1' as DeviceKey;
const TAPE = 'scsi:2:0:1:0' as DeviceKey;
const CONTROLLER = '0000:01:00.0';

// Never a device of this machine: the simulated ones must not exist here.
const realHostHas = [`/sys/bus/pci/devices/${CONTROLLER}`, '/sys/bus/mdev/devices/4b20d080-1b54-4048-85b3-a6a62d165c01', '/dev/sg1'].filter((p) => existsSync(p));
const skip = qemuMissing ?? (realHostHas.length > 0 ? `this machine has ${realHostHas.join(', ')}` : null);
if (skip !== null) console.warn(`skipping hot-plug of other kinds against a real QEMU: ${skip}`);

interface Sent {
  readonly command: string;
  readonly args: Readonly<Record<string, unknown>> | undefined;
}

/** The real client; records what hostdev sent, and with `openable` sends the block nodes as nodes QEMU can open. */
function recording(client: QmpClient, sent: Sent[], openable = false): QmpPort {
  return withExecute(client, <T,>(command: string, args?: Readonly<Record<string, unknown>>) => {
    sent.push({ command, args });
    if (openable && command === 'blockdev-add' && args?.['driver'] === 'nvme') return client.execute<T>(command, { driver: 'null-co', 'node-name': args['node-name'] });
    if (openable && command === 'blockdev-add' && args?.['driver'] === 'host_device') return client.execute<T>(command, { ...args, filename: '/dev/null' });
    return client.execute<T>(command, args);
  });
}

describe.skipIf(skip !== null)('HostdevService.hotplug and unplug of mdev, USB, NVMe and SCSI keys with a real QEMU', () => {
  let base = '';
  let root = '';
  let qemu: RunningQemu | null = null;
  let service: HostdevService | null = null;
  let sent: Sent[] = [];

  const open = async (openable = false): Promise<HostdevService> => {
    service?.close();
    service = await HostdevService.open({
      ...simulatedHost(root),
      stateDir: path.join(base, 'state'),
      connectQmp: async (socket) => recording(await QmpClient.connect(socket), sent, openable),
    });
    return service;
  };
  const ask = async <T,>(command: string, args?: Record<string, unknown>): Promise<T> => {
    const client = await QmpClient.connect(qemu!.socket);
    try {
      return await client.execute<T>(command, args);
    } finally {
      client.close();
    }
  };
  const hostdevIds = async (): Promise<string[]> =>
    (await ask<{ name: string; type: string }[]>('qom-list', { path: '/machine/peripheral' }))
      .map((child) => child.name)
      .filter((name) => name.startsWith('hostdev-') && name !== 'hostdev-xhci' && name !== 'hostdev-scsi')
      .sort();
  const nodes = async (): Promise<string[]> => (await ask<{ 'node-name': string }[]>('query-named-block-nodes')).map((n) => n['node-name']).sort();
  const held = async (): Promise<string[]> => ((await service!.status()).devices ?? []).map((entry) => entry.key).sort();
  const commands = (): string[] => sent.filter((s) => !s.command.startsWith('qom-') && s.command !== 'qmp_capabilities').map((s) => s.command);
  const caught = (promise: Promise<unknown>): Promise<unknown> => promise.then(() => null, (error: unknown) => error);

  beforeEach(() => {
    base = mkdtempSync(path.join(tmpdir(), 'hostdev-hotplug-kinds-'));
    root = path.join(base, 'host');
    createSimulatedHost(root, { preset: 'virt-host' });
    sent = [];
  });
  afterEach(async () => {
    service?.close();
    service = null;
    await qemu?.stop();
    qemu = null;
    rmSync(base, { recursive: true, force: true });
  });

  it('USB: usb-host with hostbus/hostport on the VM xHCI, as qemu-args gives it; unplug takes it out (DEVICE_DELETED) and releases it', async () => {
    qemu = await startQemu({ rootPorts: ['rp1'], devices: ['qemu-xhci,id=hostdev-xhci,bus=rp1'] });
    const svc = await open();
    const report = await svc.hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [USB] });
    expect(report.devices?.plugged).toEqual([
      {
        key: USB,
        id: 'hostdev-usb-1-1_2',
        at: 'hostdev-xhci.0',
        blockdev: null,
        device: { driver: 'usb-host', hostbus: 1, hostport: '1.2', id: 'hostdev-usb-1-1_2', bus: 'hostdev-xhci.0' },
      },
    ]);
    expect(report.devices?.assign?.assigned).toEqual([USB]);
    expect(await hostdevIds()).toEqual(['hostdev-usb-1-1_2']);
    expect(await held()).toEqual([USB]);
    // the VM's QMP socket holds the domain, as for a hot-plugged PCI function: when QEMU goes, so does the USB device
    expect((await svc.domains()).find((d) => d.domain === 'vm1')?.holder).toMatchObject({ holder: { kind: 'qmp', socket: qemu.socket }, alive: true });

    const again = await svc.hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [USB] });
    expect(again.devices).toEqual({ assign: null, plugged: [], present: [USB] });

    const out = await svc.unplug({ qmp: qemu.socket, domain: 'vm1', addresses: [USB] });
    expect(out.devices).toEqual({ unplugged: [USB], absent: [] });
    expect(out.release.devices?.released).toEqual([USB]);
    expect(await hostdevIds()).toEqual([]);
    expect(await held()).toEqual([]);
  });

  it('USB onto a bus the caller names; without a USB controller in the VM it is refused before anything changes', async () => {
    qemu = await startQemu({ rootPorts: ['rp1'], devices: ['qemu-xhci,id=xhci,bus=rp1'] });
    const svc = await open();
    const report = await svc.hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [USB], usbBus: 'xhci.0' });
    expect(report.devices?.plugged.map((p) => p.at)).toEqual(['xhci.0']);
    await svc.unplug({ qmp: qemu.socket, domain: 'vm1', addresses: [USB] });
    // Found without being named: the VM's only USB controller.
    expect((await svc.hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [USB], dryRun: true })).devices?.plugged.map((p) => p.at)).toEqual(['xhci.0']);
    await qemu.stop();

    qemu = await startQemu({ rootPorts: ['rp1'] });
    sent = [];
    const error = await caught((await open()).hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [USB] }));
    expect(isHostdevError(error) && error.code).toBe('HOSTDEV_NO_CONTROLLER');
    expect(isHostdevError(error) && error.exitCode).toBe(4);
    expect(isHostdevError(error) && error.hint).toMatch(/-device qemu-xhci,id=hostdev-xhci/);
    expect(await held()).toEqual([]);
    expect(commands()).toEqual([]);
  });

  it('mdev: QEMU refuses vfio-pci of a sysfsdev that is not there; the assign is rolled back', async () => {
    qemu = await startQemu({ rootPorts: ['rp1'] });
    const svc = await open();
    const error = await caught(svc.hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [MDEV] }));
    expect(isHostdevError(error) && error.code).toBe('HOSTDEV_QMP');
    expect(isHostdevError(error) && error.message).toMatch(/hot-plug of mdev:4b20d080-\S+ into vm1 failed \(QEMU refused device_add: .*no such host device.*\); the assign was rolled back$/);
    expect(sent.find((s) => s.command === 'device_add')?.args).toEqual({
      driver: 'vfio-pci',
      sysfsdev: '/sys/bus/mdev/devices/4b20d080-1b54-4048-85b3-a6a62d165c01',
      id: 'hostdev-mdev-4b20d080-1b54-4048-85b3-a6a62d165c01',
      bus: 'rp1',
    });
    expect(await held()).toEqual([]);
    expect(await hostdevIds()).toEqual([]);
  });

  it('NVMe: QEMU refuses blockdev-add of the controller here; the namespace and its controller are given back', async () => {
    qemu = await startQemu({ rootPorts: ['rp1'] });
    const svc = await open();
    const error = await caught(svc.hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [NVME] }));
    expect(isHostdevError(error) && error.message).toMatch(/hot-plug of nvme:0000:01:00\.0\/1 into vm1 failed \(QEMU refused blockdev-add: .*\); the assign was rolled back$/);
    expect(commands()).toEqual(['blockdev-add']);
    expect(await held()).toEqual([]);
    expect((await svc.show(CONTROLLER)).report.driver).toBe('nvme');
  });

  it('NVMe: blockdev-add, then virtio-blk-pci on a root port; unplug is device_del, DEVICE_DELETED, blockdev-del, and the controller goes back to nvme', async () => {
    qemu = await startQemu({ rootPorts: ['rp1'] });
    const svc = await open(true);
    const report = await svc.hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [NVME] });
    const node = 'hd-nvme-0000_01_00_0-1';
    expect(sent.find((s) => s.command === 'blockdev-add')?.args).toEqual({
      driver: 'nvme',
      device: CONTROLLER,
      namespace: 1,
      'node-name': node,
      'auto-read-only': true,
      discard: 'unmap',
    });
    expect(report.devices?.plugged[0]?.device).toEqual({ driver: 'virtio-blk-pci', drive: node, id: 'hostdev-nvme-0000_01_00_0-1', bus: 'rp1' });
    expect(commands()).toEqual(['blockdev-add', 'device_add']);
    expect(await hostdevIds()).toEqual(['hostdev-nvme-0000_01_00_0-1']);
    expect(await nodes()).toContain(node);
    expect(await held()).toEqual([NVME]);
    expect((await svc.show(CONTROLLER)).report.driver).toBe('vfio-pci');

    sent = [];
    const out = await svc.unplug({ qmp: qemu.socket, domain: 'vm1', addresses: [NVME] });
    expect(out.devices).toEqual({ unplugged: [NVME], absent: [] });
    expect(commands()).toEqual(['device_del', 'blockdev-del']);
    expect(await hostdevIds()).toEqual([]);
    expect(await nodes()).not.toContain(node);
    expect(await held()).toEqual([]);
    expect((await svc.show(CONTROLLER)).report.driver).toBe('nvme');
  });

  it('SCSI: QEMU refuses blockdev-add of a /dev/sgN that is not there; the assign is rolled back', async () => {
    qemu = await startQemu({ rootPorts: ['rp1'], devices: ['virtio-scsi-pci,id=hostdev-scsi,bus=rp1'] });
    const svc = await open();
    const error = await caught(svc.hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [TAPE] }));
    expect(isHostdevError(error) && error.message).toMatch(/hot-plug of scsi:2:0:1:0 into vm1 failed \(QEMU refused blockdev-add: Could not open '\/dev\/sg1'.*\); the assign was rolled back$/);
    expect(await held()).toEqual([]);
  });

  it('SCSI: node added, scsi-generic refused (no SG_IO on it): the node is deleted again and the assign rolled back; --readonly opens it read-only', async () => {
    qemu = await startQemu({ rootPorts: ['rp1'], devices: ['virtio-scsi-pci,id=hostdev-scsi,bus=rp1'] });
    const svc = await open(true);
    const error = await caught(svc.hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [TAPE], readOnly: [TAPE] }));
    expect(isHostdevError(error) && error.message).toMatch(/hot-plug of scsi:2:0:1:0 into vm1 failed \(QEMU refused device_add: .*SG_IO.*\); the assign was rolled back$/);
    const node = 'hostdev-scsi-2_0_1_0-backend';
    expect(sent.find((s) => s.command === 'blockdev-add')?.args).toEqual({ driver: 'host_device', filename: '/dev/sg1', 'node-name': node, 'read-only': true });
    expect(sent.find((s) => s.command === 'device_add')?.args).toEqual({
      driver: 'scsi-generic',
      bus: 'hostdev-scsi.0',
      channel: 0,
      'scsi-id': 0,
      lun: 0,
      drive: node,
      id: 'hostdev-scsi-2_0_1_0',
    });
    expect(commands()).toEqual(['blockdev-add', 'device_add', 'blockdev-del']);
    expect(await nodes()).not.toContain(node);
    expect(await held()).toEqual([]);
  });

  it('SCSI: takes the next LUN the controller has free, and refuses a VM without a virtio-scsi controller', async () => {
    qemu = await startQemu({ rootPorts: ['rp1'], devices: ['virtio-scsi-pci,id=hostdev-scsi,bus=rp1'] });
    await ask('blockdev-add', { driver: 'null-co', 'node-name': 'other' });
    await ask('device_add', { driver: 'scsi-hd', drive: 'other', bus: 'hostdev-scsi.0', channel: 0, 'scsi-id': 0, lun: 0, id: 'disk0' });
    const svc = await open(true);
    const plan = await svc.hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [TAPE], dryRun: true });
    expect(plan.devices?.plugged[0]?.at).toEqual({ bus: 'hostdev-scsi.0', channel: 0, scsiId: 0, lun: 1 });
    expect(await held()).toEqual([]);
    await qemu.stop();

    qemu = await startQemu({ rootPorts: ['rp1'] });
    const error = await caught((await open()).hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [TAPE] }));
    expect(isHostdevError(error) && error.code).toBe('HOSTDEV_NO_CONTROLLER');
    expect(isHostdevError(error) && error.hint).toMatch(/virtio-scsi-pci,id=hostdev-scsi/);
  });

  it('refuses PCI functions and other kinds in one hotplug or unplug, and an unplug of a device the domain does not hold', async () => {
    qemu = await startQemu({ rootPorts: ['rp1'], devices: ['qemu-xhci,id=hostdev-xhci,bus=rp1'] });
    const svc = await open();
    expect(await caught(svc.hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: ['0000:00:19.0', USB] }))).toMatchObject({ code: 'HOSTDEV_USAGE' });
    await svc.assignDevices({ domain: 'vm2', devices: [USB] });
    const error = await caught(svc.unplug({ qmp: qemu.socket, domain: 'vm1', addresses: [USB] }));
    expect(isHostdevError(error) && error.code).toBe('HOSTDEV_NOT_OWNED');
    expect(isHostdevError(error) && error.message).toMatch(/usb:1-1\.2 is not held by domain vm1 \(qemu\): usb:1-1\.2 is in use by driver qemu, domain vm2/);
  });
});
