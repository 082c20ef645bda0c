import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import type { DeviceKey } from '../../src/core/device-key.js';
import { holderCell } from '../../src/cli/status-view.js';
import { HostdevManager } from '../../src/manager/hostdev-manager.js';
import { pidHolderLife, qmpHolderLife } from '../../src/manager/holders.js';
import { processStartTime } from '../../src/platform/process-alive.js';
import { HostdevService } from '../../src/service/hostdev-service.js';
import { createSimulatedHost, simulatedHost } from '../../src/sim-entry.js';
import { startFakeQmp, type FakeQmp } from '../support/fake-qmp.js';

// Which commands probe which holders, holders of domains of every kind, the check and the release
// under one lock, and pid holders /proc does not show (hidepid=2).
let base = '';
let root = '';
let children: ChildProcess[] = [];
let qmp: FakeQmp | null = null;
let service: HostdevService | null = null;

const stateDir = (): string => path.join(base, 'state');
const sleeper = async (): Promise<ChildProcess> => {
  const started = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await new Promise((resolve) => started.once('spawn', resolve));
  children.push(started);
  return started;
};
const killed = async (child: ChildProcess): Promise<void> => {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
};
const open = async (options: Partial<Parameters<typeof HostdevService.open>[0]> = {}): Promise<HostdevService> => {
  service?.close();
  service = await HostdevService.open({ ...simulatedHost(root), stateDir: stateDir(), ...options });
  return service;
};

function setUp(preset: string): void {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-holder-scope-'));
  root = path.join(base, 'host');
  createSimulatedHost(root, { preset });
}
afterEach(async () => {
  service?.close();
  service = null;
  for (const child of children) await killed(child);
  children = [];
  await qmp?.close();
  qmp = null;
  rmSync(base, { recursive: true, force: true });
});

describe('holder probes are scoped: a QMP monitor that never answers holds up no unrelated command', () => {
  const VF0 = '0000:01:10.0' as PciAddress;
  const VF2 = '0000:01:10.2' as PciAddress;
  beforeEach(() => setUp('sriov-nic'));

  it('list, show and a one-device assign of another domain probe no QMP holder; status and domains do', async () => {
    // vm1's holder: a QMP socket that answered at assign, then one that accepts and never greets.
    qmp = await startFakeQmp(path.join(base, 'vm1.qmp'));
    await (await open()).assign({ domain: 'vm1', addresses: [VF0], qmp: qmp.socket });
    await qmp.close();
    qmp = await startFakeQmp(path.join(base, 'vm1.qmp'), { greet: false });

    const probed: string[] = [];
    const probeQmp = (socket: string): ReturnType<typeof qmpHolderLife> => {
      probed.push(socket);
      return qmpHolderLife(socket, 200);
    };
    for (const reader of [true, false]) {
      const svc = await open({ probeQmp, reader });
      await svc.list();
      await svc.show(VF0);
      if (!reader) await svc.assign({ domain: 'vm2', addresses: [VF2] });
    }
    expect(probed).toEqual([]);

    const svc = await open({ probeQmp, reader: true });
    expect((await svc.status()).holders).toEqual([expect.objectContaining({ holder: { kind: 'qmp', socket: qmp.socket }, alive: null })]);
    expect((await svc.domains()).find((d) => d.domain === 'vm1')?.holder).toMatchObject({ alive: null });
    expect(probed).toEqual([qmp.socket, qmp.socket]);
    expect((await svc.status()).active.map((e) => `${e.usedBy.vm} ${e.address}`)).toEqual([`vm1 ${VF0}`, `vm2 ${VF2}`]);
  });

  it('a changing command still releases the domain of a pid holder that is gone (a /proc read)', async () => {
    const child = await sleeper();
    await (await open()).assign({ domain: 'vm1', addresses: [VF0], holderPid: child.pid! });
    await killed(child);
    const svc = await open();
    expect(svc.holdersEnded.map((end) => [end.holder.owner.vm, end.released])).toEqual([['vm1', [VF0]]]);
  });

  it("an assign refused because a domain holds the device probes that domain's QMP holder: gone, the domain is released and the assign goes on; alive, it is refused", async () => {
    qmp = await startFakeQmp(path.join(base, 'vm1.qmp'));
    await (await open()).assign({ domain: 'vm1', addresses: [VF0], qmp: qmp.socket });
    const answering = await open();
    await expect(answering.assign({ domain: 'vm2', addresses: [VF0] })).rejects.toMatchObject({ code: 'HOSTDEV_IN_USE' });
    expect(answering.holdersEnded).toEqual([]);

    await qmp.close();
    qmp = null;
    const svc = await open();
    expect(svc.holdersEnded).toEqual([]);
    const assigned = await svc.assign({ domain: 'vm2', addresses: [VF0] });
    expect(assigned.failures).toEqual([]);
    expect(svc.holdersEnded.map((end) => [end.holder.owner.vm, end.released])).toEqual([['vm1', [VF0]]]);
    expect((await svc.status()).active.map((e) => `${e.usedBy.vm} ${e.address}`)).toEqual([`vm2 ${VF0}`]);
  });

  it('a reader open releases nothing; its status does', async () => {
    const child = await sleeper();
    await (await open()).assign({ domain: 'vm1', addresses: [VF0], holderPid: child.pid! });
    await killed(child);
    const svc = await open({ reader: true });
    expect(svc.holdersEnded).toEqual([]);
    expect((await svc.status()).active).toEqual([]);
    expect(svc.holdersEnded.map((end) => [end.holder.owner.vm, end.released])).toEqual([['vm1', [VF0]]]);
    expect(svc.warnings.join('\n')).toMatch(/holder of domain vm1 .* is gone .*: released 0000:01:10\.0/);
  });

  it('the dead-holder check and its release are under one lock: a holder registered in between keeps its devices', async () => {
    const first = await sleeper();
    await (await open()).assign({ domain: 'vm1', addresses: [VF0], holderPid: first.pid! });
    service?.close();
    service = null;
    await killed(first);

    const host = simulatedHost(root);
    const manager = await HostdevManager.open({ root, stateDir: stateDir(), kernel: host.kernel, hostUsage: host.hostUsage, holders: 'none' });
    try {
      const probed = await manager.holders();
      expect(probed.map((held) => held.alive)).toEqual([false]);
      // Between the probe and the release: the VM manager re-registers vm1 with its new process.
      const second = await sleeper();
      const startTime = (await processStartTime(second.pid!))!;
      await manager.adopt({ owner: { hypervisor: 'qemu', vm: 'vm1', driver: 'qemu', domain: 'vm1' }, addresses: [VF0], managed: true, holder: { kind: 'pid', pid: second.pid!, startTime } });
      expect(await manager.releaseEndedHolders(probed)).toEqual([]);
      expect(manager.tables().active.map((e) => `${e.usedBy.vm} ${e.address}`)).toEqual([`vm1 ${VF0}`]);
      expect(manager.store.readHolders().map((held) => held.holder)).toEqual([{ kind: 'pid', pid: second.pid!, startTime }]);
    } finally {
      manager.close();
    }
  });
});

describe('holder end for domains of every kind', () => {
  const NIC = '0000:00:19.0' as PciAddress;
  const EXISTING = 'mdev:4b20d080-1b54-4048-85b3-a6a62d165c01' as DeviceKey;
  beforeEach(() => setUp('virt-host'));

  it('a domain left holding an mdev only is released when its (real, killed) holder ends, and not tried again', async () => {
    const child = await sleeper();
    let svc = await open();
    await svc.assign({ domain: 'vm1', addresses: [NIC], holderPid: child.pid! });
    await svc.assignDevices({ domain: 'vm1', devices: [EXISTING] });
    await svc.release({ domain: 'vm1', addresses: [NIC] });
    expect((await svc.status()).holders).toEqual([expect.objectContaining({ owner: expect.objectContaining({ vm: 'vm1' }), alive: true })]);
    await killed(child);

    svc = await open();
    expect(svc.holdersEnded.map((end) => [end.holder.owner.vm, end.released, end.releasedDevices, end.error])).toEqual([['vm1', [], [EXISTING], null]]);
    expect(svc.warnings.join('\n')).toMatch(new RegExp(`is gone \\(pid ${child.pid} exited\\): released ${EXISTING}`));
    const status = await svc.status();
    expect(status.devices ?? []).toEqual([]);
    expect(status.holders).toEqual([]);
    // What the daemon's 200 ms watch calls: nothing left to retry.
    expect(await svc.releaseEndedHolders()).toEqual([]);
  });

  it('a mixed domain (PCI and mdev) gives back both', async () => {
    const child = await sleeper();
    let svc = await open();
    await svc.assign({ domain: 'vm1', addresses: [NIC], holderPid: child.pid! });
    await svc.assignDevices({ domain: 'vm1', devices: [EXISTING] });
    await killed(child);
    svc = await open();
    expect(svc.holdersEnded.map((end) => [end.released, end.releasedDevices, end.error])).toEqual([[[NIC], [EXISTING], null]]);
    const status = await svc.status();
    expect([status.active, status.devices ?? [], status.holders]).toEqual([[], [], []]);
  });
});

describe('the dead-holder check on every assign: keys of every kind', () => {
  const NIC = '0000:00:19.0' as PciAddress;
  const MDEV = 'mdev:4b20d080-1b54-4048-85b3-a6a62d165c01' as DeviceKey;
  beforeEach(() => setUp('virt-host'));

  it("an mdev key refused because a domain whose QMP holder is gone holds it: that domain is released and the assign goes on; alive, it is refused", async () => {
    qmp = await startFakeQmp(path.join(base, 'vm1.qmp'));
    await (await open()).assign({ domain: 'vm1', addresses: [NIC, MDEV], qmp: qmp.socket });
    await expect((await open()).assign({ domain: 'vm2', addresses: [MDEV] })).rejects.toMatchObject({ code: 'HOSTDEV_IN_USE' });

    await qmp.close();
    qmp = null;
    const svc = await open();
    const assigned = await svc.assign({ domain: 'vm2', addresses: [MDEV] });
    expect(assigned.devices?.assigned).toEqual([MDEV]);
    expect(svc.holdersEnded.map((end) => [end.holder.owner.vm, end.released, end.releasedDevices])).toEqual([['vm1', [NIC], [MDEV]]]);
    const status = await svc.status();
    expect(status.active).toEqual([]);
    expect(status.devices?.map((entry) => `${entry.usedBy.vm} ${entry.key}`)).toEqual([`vm2 ${MDEV}`]);
  });

  it('assignDevices and a mixed assign take the same path: the USB key of a gone holder\'s domain is taken over', async () => {
    qmp = await startFakeQmp(path.join(base, 'vm1.qmp'));
    await (await open()).assign({ domain: 'vm1', addresses: ['usb:1-1.2', MDEV], qmp: qmp.socket });
    await qmp.close();
    qmp = null;
    let svc = await open();
    expect((await svc.assignDevices({ domain: 'vm2', devices: ['usb:1-1.2'] })).assigned).toEqual(['usb:1-1.2']);
    expect(svc.holdersEnded.map((end) => [end.holder.owner.vm, end.releasedDevices])).toEqual([['vm1', [MDEV, 'usb:1-1.2']]]);

    qmp = await startFakeQmp(path.join(base, 'vm2.qmp'));
    await (await open()).assign({ domain: 'vm2', addresses: [MDEV], qmp: qmp.socket });
    await qmp.close();
    qmp = null;
    svc = await open();
    const mixed = await svc.assign({ domain: 'vm3', addresses: [NIC, MDEV] });
    expect([mixed.changes.map((change) => change.kind), mixed.devices?.assigned]).toEqual([['set-active'], [MDEV]]);
    expect((await svc.status()).devices?.map((entry) => `${entry.usedBy.vm} ${entry.key}`)).toEqual([`vm3 ${MDEV}`]);
  });

  it('an assign of mdev and USB keys only names a holder (pid or QMP): registered with the devices, and when it ends they are released', async () => {
    const child = await sleeper();
    let svc = await open();
    await svc.assign({ domain: 'vm1', addresses: [MDEV, 'usb:1-1.2'], holderPid: child.pid! });
    expect((await svc.status()).holders).toEqual([expect.objectContaining({ owner: expect.objectContaining({ vm: 'vm1' }), holder: expect.objectContaining({ kind: 'pid', pid: child.pid }), alive: true })]);
    await killed(child);
    svc = await open();
    expect(svc.holdersEnded.map((end) => [end.holder.owner.vm, end.releasedDevices, end.error])).toEqual([['vm1', [MDEV, 'usb:1-1.2'], null]]);
    expect((await svc.status()).devices ?? []).toEqual([]);

    qmp = await startFakeQmp(path.join(base, 'vm2.qmp'));
    await svc.assign({ domain: 'vm2', addresses: ['usb:1-1.2'], qmp: qmp.socket });
    expect((await svc.status()).holders.map((held) => [held.owner.vm, held.holder])).toEqual([['vm2', { kind: 'qmp', socket: qmp.socket }]]);
  });
});

describe('pid holders hidden by /proc hidepid=2', () => {
  beforeEach(() => {
    base = mkdtempSync(path.join(tmpdir(), 'hostdev-hidepid-'));
  });

  it('a pid /proc does not show: ESRCH from kill(pid, 0) is gone, EPERM alive with its start time unknown', async () => {
    const proc = path.join(base, 'proc');
    mkdirSync(proc);
    const hidden = await pidHolderLife(4242, '100', { proc, signal: () => 'present' });
    expect(hidden).toEqual({ alive: true, reason: expect.stringMatching(/pid 4242 runs, hidden from \/proc .*start time is unknown/), startTimeUnknown: true });
    expect(await pidHolderLife(4242, '100', { proc, signal: () => 'absent' })).toEqual({ alive: false, reason: 'pid 4242 exited' });
    // With the real kill(pid, 0): a killed child is ESRCH.
    const child = await sleeper();
    const pid = child.pid!;
    await killed(child);
    expect(await pidHolderLife(pid, '100', { proc })).toMatchObject({ alive: false });
  });

  it("a holder another user's process is, hidden from /proc, is not released; status says its start time is unknown", async () => {
    root = path.join(base, 'host');
    createSimulatedHost(root, { preset: 'sriov-nic' });
    const child = await sleeper();
    await (await open()).assign({ domain: 'vm1', addresses: ['0000:01:10.0'], holderPid: child.pid! });
    const proc = path.join(base, 'proc');
    mkdirSync(proc);
    const svc = await open({ probeProcess: { proc, signal: () => 'present' } });
    expect(svc.holdersEnded).toEqual([]);
    const status = await svc.status();
    expect(status.active).toHaveLength(1);
    expect(status.holders).toEqual([expect.objectContaining({ alive: true, startTimeUnknown: true, reason: expect.stringMatching(/start time is unknown/) })]);
    expect(holderCell(status.holders[0]!)).toBe(`pid ${child.pid} (alive, start time unknown)`);
  });
});
