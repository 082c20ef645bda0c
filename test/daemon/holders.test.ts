import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import type { EventJson } from '../../src/daemon/schemas.js';
import type { RunningDaemon } from '../../src/daemon/run.js';
import { QmpClient } from '../../src/qmp/qmp-client.js';
import { startFakeQmp, type FakeQmp } from '../support/fake-qmp.js';
import { qemuMissing, startQemu, type RunningQemu } from '../support/qemu.js';
import { cleanUpAfterEach, daemonHost, startTestDaemon } from './daemon-host.js';
import { jsonOf, runCliAsync } from '../support/cli.js';

cleanUpAfterEach();

const VF0 = '0000:01:10.0' as PciAddress;
const VF1 = '0000:01:10.1' as PciAddress;

/** The first event `match` accepts, from now on (bounded). */
function nextEvent(daemon: RunningDaemon, match: (event: EventJson) => boolean, timeoutMs = 15_000): Promise<EventJson> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`no matching event within ${timeoutMs} ms`));
    }, timeoutMs);
    const stop = daemon.events.subscribe((event) => {
      if (!match(event)) return;
      clearTimeout(timer);
      stop();
      resolve(event);
    });
  });
}

describe('the daemon watches the holders of domains', () => {
  let child: ChildProcess | null = null;
  let fake: FakeQmp | null = null;
  let qemu: RunningQemu | null = null;
  afterEach(async () => {
    if (child !== null && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    child = null;
    await fake?.close();
    fake = null;
    await qemu?.stop();
    qemu = null;
  });

  it('a holder process that is killed: its domain is released at once and announced', async () => {
    const daemon = await startTestDaemon(daemonHost());
    child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    await new Promise((resolve) => child!.once('spawn', resolve));
    await daemon.service.assign({ domain: 'vm1', addresses: [VF0, VF1], holderPid: child.pid! });
    const released = nextEvent(daemon, (event) => event.type === 'holder');
    child.kill('SIGKILL');
    const event = await released;
    expect(event).toMatchObject({ action: 'released', key: `pci:${VF0}`, owner: { hypervisor: 'qemu', vm: 'vm1' } });
    expect(event.details).toMatchObject({ released: [VF0, VF1], holder: { kind: 'pid', pid: child.pid } });
    expect(String(event.details['reason'])).toMatch(/exited/);
    expect((await daemon.service.status()).active).toEqual([]);
  });

  it('QEMU announcing DEVICE_DELETED on its own releases that device; its socket closing releases the rest', async () => {
    const host = daemonHost();
    const daemon = await startTestDaemon(host);
    fake = await startFakeQmp(path.join(host.base, 'vm1.qmp'));
    await daemon.service.assign({ domain: 'vm1', addresses: [VF0, VF1], qmp: fake.socket });
    // The daemon keeps its connection (the holder check made it).
    expect(fake.clients.size).toBe(1);
    const deleted = nextEvent(daemon, (event) => event.type === 'qmp');
    fake.emit('DEVICE_DELETED', { device: 'hostdev-0000_01_10_0', path: '/machine/peripheral/hostdev-0000_01_10_0' });
    expect(await deleted).toMatchObject({ action: 'device-deleted', key: `pci:${VF0}`, details: { socket: fake.socket, released: [VF0] } });
    expect((await daemon.service.status()).active.map((entry) => entry.address)).toEqual([VF1]);

    const gone = nextEvent(daemon, (event) => event.type === 'holder');
    await fake.close();
    fake = null;
    expect(await gone).toMatchObject({ action: 'released', details: { released: [VF1], holder: { kind: 'qmp' } } });
    expect((await daemon.service.status()).active).toEqual([]);
  });

  it('DEVICE_DELETED for a VF the kernel removed meanwhile (sriov_numvfs shrank): pruned, and announced as such', async () => {
    const host = daemonHost();
    const daemon = await startTestDaemon(host);
    fake = await startFakeQmp(path.join(host.base, 'vm1.qmp'));
    await daemon.service.assign({ domain: 'vm1', addresses: [VF0], qmp: fake.socket });
    const shrink = await runCliAsync(['sim', 'write', '/sys/bus/pci/devices/0000:01:00.0/sriov_numvfs', '0', '--root', host.root]);
    expect(shrink.code, shrink.stderr).toBe(0);
    const deleted = nextEvent(daemon, (event) => event.type === 'qmp');
    fake.emit('DEVICE_DELETED', { device: 'hostdev-0000_01_10_0', path: '/machine/peripheral/hostdev-0000_01_10_0' });
    expect(await deleted).toMatchObject({ action: 'device-deleted', key: `pci:${VF0}`, details: { socket: fake.socket, released: [], pruned: [VF0] } });
    expect((await daemon.service.status()).active).toEqual([]);
  });

  it.skipIf(qemuMissing !== null)('a real QEMU: device_del from the QMP side (not from hostdev) -> DEVICE_DELETED -> released', async () => {
    const host = daemonHost();
    const daemon = await startTestDaemon(host);
    qemu = await startQemu({ rootPorts: ['rp1', 'rp2'], secondQmp: true });
    await daemon.service.assign({ domain: 'vm1', addresses: [VF0, VF1], qmp: qemu.socket });
    // This machine has no VF to give QEMU: an emulated NIC stands in, with hostdev's id for VF0.
    const other = await QmpClient.connect(qemu.socket2!);
    try {
      await other.execute('device_add', { driver: 'e1000e', id: 'hostdev-0000_01_10_0', bus: 'rp1' });
      const deleted = nextEvent(daemon, (event) => event.type === 'qmp');
      await other.execute('device_del', { id: 'hostdev-0000_01_10_0' });
      expect(await deleted).toMatchObject({ action: 'device-deleted', key: `pci:${VF0}`, details: { socket: qemu.socket, released: [VF0] } });
      expect((await daemon.service.status()).active.map((entry) => entry.address)).toEqual([VF1]);
      expect((await daemon.service.domains())[0]!.holder).toMatchObject({ holder: { kind: 'qmp', socket: qemu.socket }, alive: true });

      const gone = nextEvent(daemon, (event) => event.type === 'holder');
      await other.execute('quit').catch(() => undefined);
      expect(await gone).toMatchObject({ action: 'released', details: { released: [VF1] } });
    } finally {
      other.close();
    }
  });

  it.skipIf(qemuMissing !== null)('hostdev unplug goes through the daemon, which holds the VM\'s only QMP connection on that socket', async () => {
    const host = daemonHost();
    const daemon = await startTestDaemon(host);
    qemu = await startQemu({ rootPorts: ['rp1', 'rp2'], secondQmp: true });
    await daemon.service.assign({ domain: 'vm1', addresses: [VF0], qmp: qemu.socket });
    const other = await QmpClient.connect(qemu.socket2!);
    try {
      await other.execute('device_add', { driver: 'e1000e', id: 'hostdev-0000_01_10_0', bus: 'rp1' });
    } finally {
      other.close();
    }
    const global = ['--root', host.root, '--state-dir', host.stateDir, '--simulate', '--socket-dir', host.socketDir];
    const run = await runCliAsync([...global, 'unplug', '--qmp', qemu.socket, '--domain', 'vm1', VF0, '--json'], { timeoutMs: 60_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(jsonOf<{ unplugged: string[]; released: string[] }>(run)).toMatchObject({ unplugged: [VF0], released: [VF0] });
    expect((await daemon.service.status()).active).toEqual([]);
    // The daemon's own operation, not a direct connection (QEMU would not have greeted a second client).
    expect((await daemon.service.status()).holders).toEqual([]);
  });
});
