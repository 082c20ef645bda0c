import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { isHostdevError } from '../../src/core/errors.js';
import { QmpClient, type QmpPort } from '../../src/qmp/qmp-client.js';
import { readVmSlots } from '../../src/qmp/vm-slots.js';
import { HostdevService } from '../../src/service/hostdev-service.js';
import { createSimulatedHost, simulatedHost } from '../../src/sim-entry.js';
import { qemuMissing, startQemu, withExecute, type RunningQemu } from '../support/qemu.js';
import { startFakeQmp } from '../support/fake-qmp.js';

// Hot-plug into a running VM: a simulated host, and a real QEMU (TCG, no guest) over QMP. This
// machine has no VF to give QEMU, so where a device must really be added, `device_add` of vfio-pci
// is sent as an emulated e1000e with the same id and root port (QEMU's real refusal of vfio-pci is
// the failure case).
if (qemuMissing !== null) console.warn(`skipping hot-plug against a real QEMU: ${qemuMissing}`);

const VF0 = '0000:01:10.0' as PciAddress;
const VF1 = '0000:01:10.1' as PciAddress;

/** The real client, with vfio-pci device_adds (those `only` accepts) sent as an emulated NIC. */
function emulating(client: QmpClient, only: (args: Readonly<Record<string, unknown>>) => boolean = () => true): QmpPort {
  return withExecute(client, <T,>(command: string, args?: Readonly<Record<string, unknown>>) =>
    command === 'device_add' && args?.['driver'] === 'vfio-pci' && only(args)
      ? client.execute<T>(command, { driver: 'e1000e', id: args['id'], ...(args['bus'] === undefined ? {} : { bus: args['bus'] }) })
      : client.execute<T>(command, args),
  );
}

describe.skipIf(qemuMissing !== null)('HostdevService.hotplug and unplug with a real QEMU', () => {
  let base = '';
  let root = '';
  let qemu: RunningQemu | null = null;
  let service: HostdevService | null = null;

  const open = async (connectQmp?: (socket: string) => Promise<QmpPort>): Promise<HostdevService> => {
    service?.close();
    service = await HostdevService.open({ ...simulatedHost(root), stateDir: path.join(base, 'state'), ...(connectQmp ? { connectQmp } : {}) });
    return service;
  };
  const driverOf = async (address: PciAddress): Promise<string | null> => (await service!.show(address)).report.driver;
  const inVm = async (): Promise<{ ids: string[]; occupied: string[] }> => {
    const client = await QmpClient.connect(qemu!.socket);
    try {
      const slots = await readVmSlots(client);
      return { ids: [...slots.deviceIds].filter((id) => id.startsWith('hostdev-')).sort(), occupied: slots.rootPorts.filter((p) => p.occupied).map((p) => p.id) };
    } finally {
      client.close();
    }
  };
  const caught = (promise: Promise<unknown>): Promise<unknown> => promise.then(() => null, (error: unknown) => error);

  beforeEach(() => {
    base = mkdtempSync(path.join(tmpdir(), 'hostdev-hotplug-'));
    root = path.join(base, 'host');
    createSimulatedHost(root, { preset: 'sriov-nic' });
  });
  afterEach(async () => {
    service?.close();
    service = null;
    await qemu?.stop();
    qemu = null;
    rmSync(base, { recursive: true, force: true });
  });

  it('assigns and plugs each device on a free root port with the qemu-args id, then unplugs and releases them', async () => {
    qemu = await startQemu({ rootPorts: ['rp1', 'rp2', 'rp3'] });
    const svc = await open(async (socket) => emulating(await QmpClient.connect(socket)));
    const report = await svc.hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [VF1, VF0], vf: { [VF0]: { mac: '52:54:00:00:00:10', vlan: 10 } } });
    expect(report.plugged).toEqual([
      { address: VF0, id: 'hostdev-0000_01_10_0', bus: 'rp1' },
      { address: VF1, id: 'hostdev-0000_01_10_1', bus: 'rp2' },
    ]);
    expect(report.assign?.vfConfig.join('\n')).toMatch(/mac 52:54:00:00:00:10/);
    expect(await inVm()).toEqual({ ids: ['hostdev-0000_01_10_0', 'hostdev-0000_01_10_1'], occupied: ['rp1', 'rp2'] });
    expect((await svc.status()).active.map((e) => [e.address, e.usedBy.domain])).toEqual([
      [VF0, 'vm1'],
      [VF1, 'vm1'],
    ]);
    expect(await driverOf(VF0)).toBe('vfio-pci');

    const again = await svc.hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [VF0] });
    expect(again).toMatchObject({ assign: null, plugged: [], present: [VF0] });

    const unplugged = await svc.unplug({ qmp: qemu.socket, domain: 'vm1', addresses: [VF0, VF1] });
    expect(unplugged.unplugged).toEqual([VF0, VF1]);
    expect(unplugged.release.reattached).toEqual([VF0, VF1]);
    expect(await inVm()).toEqual({ ids: [], occupied: [] });
    expect((await svc.status()).active).toEqual([]);
    expect(await driverOf(VF0)).toBe('igbvf');
  });

  it("hot-plugs a device another domain holds when that domain's QMP holder is gone (the assign's one holder check), not while it answers", async () => {
    qemu = await startQemu({ rootPorts: ['rp1'] });
    const gone = await startFakeQmp(path.join(base, 'vm0.qmp'));
    try {
      await (await open()).assign({ domain: 'vm0', addresses: [VF0], qmp: gone.socket });
      const svc = await open(async (socket) => emulating(await QmpClient.connect(socket)));
      const refused = await caught(svc.hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [VF0] }));
      expect(isHostdevError(refused) && refused.code).toBe('HOSTDEV_IN_USE');
    } finally {
      await gone.close();
    }
    const svc = await open(async (socket) => emulating(await QmpClient.connect(socket)));
    const report = await svc.hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [VF0] });
    expect(report.plugged.map((placement) => placement.address)).toEqual([VF0]);
    expect(svc.holdersEnded.map((end) => [end.holder.owner.vm, end.released])).toEqual([['vm0', [VF0]]]);
    expect((await svc.status()).active.map((e) => [e.address, e.usedBy.domain])).toEqual([[VF0, 'vm1']]);
    expect(await inVm()).toEqual({ ids: ['hostdev-0000_01_10_0'], occupied: ['rp1'] });
  });

  it('rolls the assign back when QEMU refuses the real vfio-pci device (no such host device here)', async () => {
    qemu = await startQemu({ rootPorts: ['rp1'] });
    const svc = await open();
    const error = await caught(svc.hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [VF0] }));
    expect(isHostdevError(error) && error.code).toBe('HOSTDEV_QMP');
    expect(isHostdevError(error) && error.message).toMatch(/hot-plug of 0000:01:10\.0 into vm1 failed \(QEMU refused device_add: .*vfio.*\); the assign was rolled back/);
    expect((await svc.status()).active).toEqual([]);
    expect(await driverOf(VF0)).toBe('igbvf');
    expect(await inVm()).toEqual({ ids: [], occupied: [] });
  });

  it('takes back the devices it plugged before a refused one, and releases them all', async () => {
    qemu = await startQemu({ rootPorts: ['rp1', 'rp2'] });
    const svc = await open(async (socket) => emulating(await QmpClient.connect(socket), (args) => args['host'] === VF0));
    const error = await caught(svc.hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [VF0, VF1] }));
    expect(isHostdevError(error) && error.message).toMatch(/hot-plug of 0000:01:10\.1 .*rolled back$/);
    expect(await inVm()).toEqual({ ids: [], occupied: [] });
    expect((await svc.status()).active).toEqual([]);
    expect([await driverOf(VF0), await driverOf(VF1)]).toEqual(['igbvf', 'igbvf']);
  });

  it('refuses before changing anything when the VM has too few free root ports', async () => {
    qemu = await startQemu({ rootPorts: ['rp1'] });
    const svc = await open(async (socket) => emulating(await QmpClient.connect(socket)));
    const error = await caught(svc.hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [VF0, VF1] }));
    expect(isHostdevError(error) && error.code).toBe('HOSTDEV_NO_FREE_SLOT');
    expect(isHostdevError(error) && error.exitCode).toBe(4);
    expect((await svc.status()).active).toEqual([]);
    expect(await driverOf(VF0)).toBe('igbvf');
  });

  it('a dry run plans the assign and the slots and changes nothing', async () => {
    qemu = await startQemu({ rootPorts: ['rp1'] });
    const svc = await open(async (socket) => emulating(await QmpClient.connect(socket)));
    const report = await svc.hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [VF0], dryRun: true });
    expect(report.dryRun).toBe(true);
    expect(report.plugged).toEqual([{ address: VF0, id: 'hostdev-0000_01_10_0', bus: 'rp1' }]);
    expect(report.assign?.steps.length).toBeGreaterThan(0);
    expect(await inVm()).toEqual({ ids: [], occupied: [] });
    expect((await svc.status()).active).toEqual([]);
  });

  it('leaves a device the guest does not give back assigned, and says so at the --wait bound', async () => {
    qemu = await startQemu({ rootPorts: ['rp1'], nativeHotplug: false });
    const svc = await open(async (socket) => emulating(await QmpClient.connect(socket)));
    await svc.hotplug({ qmp: qemu.socket, domain: 'vm1', addresses: [VF0] });
    const started = Date.now();
    const error = await caught(svc.unplug({ qmp: qemu.socket, domain: 'vm1', addresses: [VF0], timeoutMs: 500 }));
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(isHostdevError(error) && error.code).toBe('HOSTDEV_UNPLUG_TIMEOUT');
    expect(isHostdevError(error) && error.message).toMatch(/vm1 did not give back 0000:01:10\.0 within 500 ms/);
    expect((await svc.status()).active.map((e) => e.address)).toEqual([VF0]);
    expect(await driverOf(VF0)).toBe('vfio-pci');
  });

  it('refuses to unplug a device the domain does not hold, naming its owner', async () => {
    qemu = await startQemu({ rootPorts: ['rp1'] });
    const svc = await open(async (socket) => emulating(await QmpClient.connect(socket)));
    await svc.assign({ domain: 'vm2', addresses: [VF0] });
    const error = await caught(svc.unplug({ qmp: qemu.socket, domain: 'vm1', addresses: [VF0] }));
    expect(isHostdevError(error) && error.code).toBe('HOSTDEV_NOT_OWNED');
    expect(isHostdevError(error) && error.message).toMatch(/in use by driver qemu, domain vm2/);
  });

  it('releases a device that is no longer in the VM without waiting for it', async () => {
    qemu = await startQemu({ rootPorts: ['rp1'] });
    const svc = await open(async (socket) => emulating(await QmpClient.connect(socket)));
    await svc.assign({ domain: 'vm1', addresses: [VF0] });
    const report = await svc.unplug({ qmp: qemu.socket, domain: 'vm1', addresses: [VF0] });
    expect(report).toMatchObject({ unplugged: [], absent: [VF0] });
    expect(report.release.reattached).toEqual([VF0]);
  });
});
