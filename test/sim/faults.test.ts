import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FAULTS_ENV, isBlocked, writeFaultsFile } from '../../src/sim/faults.js';
import { SimKernel } from '../../src/sim/kernel.js';
import { KernelWriteError } from '../../src/sysfs/kernel-port.js';
import { runCli, runCliAsync } from '../support/cli.js';
import { cleanupRoots, driverOf, presetRoot, readAttr } from './helpers.js';

afterAll(cleanupRoots);

const OVERRIDE = '/sys/bus/pci/devices/0000:01:00.0/driver_override';
const UNBIND = '/sys/bus/pci/devices/0000:01:00.0/driver/unbind';

async function waitFor(check: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('fault injection, in-process', () => {
  it('fail: the next write matching the pattern fails with the chosen errno and changes nothing; the one after succeeds', async () => {
    const root = presetRoot('nvme');
    const k = new SimKernel(root);
    k.inject({ action: 'fail', match: '/driver\\/unbind$/', errno: 'EIO' });
    await k.write(OVERRIDE, 'vfio-pci');
    const error = await k.write(UNBIND, '0000:01:00.0').catch((e: unknown) => e);
    expect((error as KernelWriteError).errno).toBe('EIO');
    expect(driverOf(root, '0000:01:00.0')).toBe('nvme');
    await k.write(UNBIND, '0000:01:00.0');
    expect(driverOf(root, '0000:01:00.0')).toBeNull();
    expect(k.writes.map((w) => w.errno)).toEqual([null, 'EIO', null]);
    k.close();
  });

  it('block: a matching write waits, untouched, until released', async () => {
    const root = presetRoot('nvme');
    const k = new SimKernel(root);
    k.inject({ action: 'block', match: 'driver/unbind', id: 'b1' });
    let done = false;
    const pending = k.write(UNBIND, '0000:01:00.0').then(() => (done = true));
    await waitFor(() => isBlocked(root, 'b1'));
    await new Promise((r) => setTimeout(r, 50));
    expect(done).toBe(false);
    expect(driverOf(root, '0000:01:00.0')).toBe('nvme');
    k.release('b1');
    await pending;
    expect(driverOf(root, '0000:01:00.0')).toBeNull();
    expect(isBlocked(root, 'b1')).toBe(false);
    k.close();
  });

  it("block at stage 'vfio-release': sriov_numvfs 0 waits with VF0 off vfio-pci's links but present, VF1 untouched (seed outcome 2)", async () => {
    const root = presetRoot('sriov-nic');
    const k = new SimKernel(root);
    const [vf0, vf1] = ['0000:01:10.0', '0000:01:10.2'];
    await k.write(`/sys/bus/pci/devices/${vf0}/driver_override`, 'vfio-pci');
    await k.write(`/sys/bus/pci/devices/${vf0}/driver/unbind`, vf0);
    await k.write('/sys/bus/pci/drivers_probe', vf0);
    const group = fs.readlinkSync(path.join(root, 'sys/bus/pci/devices', vf0, 'iommu_group')).split('/').pop()!;
    k.inject({ action: 'block', match: 'sriov_numvfs', id: 'held', stage: 'vfio-release' });
    const pending = k.write('/sys/bus/pci/devices/0000:01:00.0/sriov_numvfs', '0');
    await waitFor(() => isBlocked(root, 'held'));
    expect(fs.existsSync(path.join(root, 'sys/bus/pci/devices', vf0))).toBe(true);
    expect(driverOf(root, vf0)).toBeNull();
    expect(fs.existsSync(path.join(root, 'dev/vfio', group))).toBe(true);
    expect(driverOf(root, vf1)).toBe('igbvf');
    // reading it would block like on Linux (held-reads.test.ts): the PF's sriov_numvfs is held
    expect(fs.lstatSync(path.join(root, 'sys/bus/pci/devices/0000:01:00.0/sriov_numvfs')).isFIFO()).toBe(true);
    k.release('held');
    await pending;
    expect(fs.existsSync(path.join(root, 'sys/bus/pci/devices', vf0))).toBe(false);
    expect(fs.existsSync(path.join(root, 'dev/vfio', group))).toBe(false);
    expect(k.events().some((e) => e.action === 'unbind' && e.address === vf0 && e.driver === 'vfio-pci')).toBe(true);
    k.close();
  });
});

describe('fault injection across processes', () => {
  it('faults.json: a fail fault is consumed once, by whichever process writes first', () => {
    const root = presetRoot('nvme');
    writeFaultsFile(root, [{ action: 'fail', match: 'sriov_numvfs', errno: 'EBUSY' }, { action: 'fail', match: 'driver_override', errno: 'ENOMEM', times: 2 }]);
    const first = runCli(['--root', root, 'sim', 'write', OVERRIDE, 'vfio-pci']);
    expect(first.code).not.toBe(0);
    expect(first.stderr).toContain('ENOMEM');
    expect(runCli(['--root', root, 'sim', 'write', OVERRIDE, 'vfio-pci']).stderr).toContain('ENOMEM');
    expect(runCli(['--root', root, 'sim', 'write', OVERRIDE, 'vfio-pci']).code).toBe(0);
    expect(readAttr(root, '0000:01:00.0', 'driver_override')).toBe('vfio-pci');
    expect(JSON.parse(fs.readFileSync(path.join(root, '.hostdev-sim/faults.json'), 'utf8'))).toHaveLength(1);
  });

  it(`${FAULTS_ENV}: crash after the Nth write kills the process abruptly, that write applied`, () => {
    const root = presetRoot('nvme');
    const run = runCli(['--root', root, 'sim', 'write', UNBIND, '0000:01:00.0'], {
      env: { [FAULTS_ENV]: JSON.stringify([{ action: 'crash', afterWrites: 1 }]) },
    });
    expect(run.code).not.toBe(0);
    expect(run.stdout).toBe('');
    expect(driverOf(root, '0000:01:00.0')).toBeNull();
    const before = runCli(['--root', root, 'sim', 'write', OVERRIDE, 'x'], {
      env: { [FAULTS_ENV]: JSON.stringify([{ action: 'crash', afterWrites: 1, when: 'before' }]) },
    });
    expect(before.code).not.toBe(0);
    expect(readAttr(root, '0000:01:00.0', 'driver_override')).toBe('(null)');
  });

  it(`${FAULTS_ENV}: a blocked write in a child process is released through the tree`, async () => {
    const root = presetRoot('sriov-nic');
    const child = runCliAsync(['--root', root, 'sim', 'write', '/sys/bus/pci/devices/0000:01:00.0/sriov_numvfs', '0'], {
      env: { [FAULTS_ENV]: JSON.stringify([{ action: 'block', match: 'sriov_numvfs', id: 'numvfs' }]) },
    });
    await waitFor(() => isBlocked(root, 'numvfs'));
    // Other writers are not held up by a blocked write.
    expect(runCli(['--root', root, 'sim', 'write', '/sys/bus/pci/devices/0000:01:00.1/driver_override', 'vfio-pci']).code).toBe(0);
    expect(readAttr(root, '0000:01:00.0', 'sriov_numvfs')).toBe('2');
    expect(runCli(['--root', root, 'sim', 'release', 'numvfs']).code).toBe(0);
    expect((await child).code).toBe(0);
    expect(readAttr(root, '0000:01:00.0', 'sriov_numvfs')).toBe('0');
  });
});
