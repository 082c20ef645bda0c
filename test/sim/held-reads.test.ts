import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isBlocked, writeFaultsFile } from '../../src/sim/faults.js';
import { background, killBackgroundAfterEach, waitFor, type Background } from '../support/background.js';
import { CLI_BIN, runCli, runCliAsync } from '../support/cli.js';
import { cleanupRoots, dev, driverOf, presetRoot, readAttr } from './helpers.js';

/**
 * Linux 6.1 facts (drivers/pci/iov.c, pci-sysfs.c; measured under QEMU in scenario s5): while
 * `echo 0 > PF/sriov_numvfs` waits in vfio-pci's remove for the VM to let go of VF0, the PF's and
 * VF0's device locks are held, and reading an attribute whose show() takes that lock blocks for as
 * long. The simulated tree plays it with FIFOs (src/sim/held-files.ts), seen by plain readers.
 */
const PF = '0000:01:00.0';
const [VF0, VF1] = ['0000:01:10.0', '0000:01:10.2'];
const NUMVFS = `/sys/bus/pci/devices/${PF}/sriov_numvfs`;
const BLOCK_ID = 'vm-holds-vf0';

killBackgroundAfterEach();
afterAll(cleanupRoots);

/** A plain read in another process (cat), given `ms` to answer: null when it is still blocked. */
async function readWithin(file: string, ms: number): Promise<string | null> {
  const r = background('cat', [file]);
  const answer = await Promise.race([r.done, new Promise<null>((resolve) => setTimeout(() => resolve(null), ms))]);
  if (answer === null) {
    r.child.kill('SIGKILL');
    return null;
  }
  return answer.stdout.trim();
}

/** A tree with 2 VFs, VF0 on vfio-pci, and `echo 0 > PF/sriov_numvfs` blocked on it (in a child). */
async function blockedRelease(): Promise<{ root: string; writer: Background }> {
  const root = presetRoot('sriov-nic');
  for (const [p, v] of [
    [`/sys/bus/pci/devices/${VF0}/driver_override`, 'vfio-pci'],
    [`/sys/bus/pci/devices/${VF0}/driver/unbind`, VF0],
    ['/sys/bus/pci/drivers_probe', VF0],
  ] as const) {
    expect(runCli(['--root', root, 'sim', 'write', p, v]).code).toBe(0);
  }
  writeFaultsFile(root, [{ action: 'block', match: 'sriov_numvfs', id: BLOCK_ID, stage: 'vfio-release' }]);
  const writer = background(process.execPath, [CLI_BIN, '--root', root, 'sim', 'write', NUMVFS, '0']);
  await waitFor(() => isBlocked(root, BLOCK_ID));
  return { root, writer };
}

/**
 * `other`, started during the block, is still running after `ms`; once the block is released the
 * writer and `other` both finish with exit 0.
 */
async function waitsForRelease(root: string, writer: Background, other: Background, ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
  expect(other.finished()).toBe(false);
  runCli(['--root', root, 'sim', 'release', BLOCK_ID]);
  expect((await writer.done).code).toBe(0);
  const done = await other.done;
  expect(done.code, done.stderr).toBe(0);
}

describe('kernel facts: reads that block while vfio-pci waits for the VF user (seed outcome 2)', () => {
  it("the PF's sriov_numvfs and driver_override and VF0's driver_override block; sriov_totalvfs, vendor and VF1's files do not", async () => {
    const { root, writer } = await blockedRelease();
    const reads = await Promise.all(
      [
        [PF, 'sriov_numvfs'],
        [PF, 'driver_override'],
        [VF0, 'driver_override'],
        [PF, 'sriov_totalvfs'],
        [PF, 'vendor'],
        [VF0, 'vendor'],
        [VF1, 'driver_override'],
      ].map(async ([a, f]) => [`${a}/${f}`, await readWithin(dev(root, a!, f!), 4_000)] as const),
    );
    expect(Object.fromEntries(reads)).toEqual({
      [`${PF}/sriov_numvfs`]: null,
      [`${PF}/driver_override`]: null,
      [`${VF0}/driver_override`]: null,
      [`${PF}/sriov_totalvfs`]: '7',
      [`${PF}/vendor`]: '0x8086',
      [`${VF0}/vendor`]: '0x8086',
      [`${VF1}/driver_override`]: '(null)',
    });
    expect(writer.finished()).toBe(false);
    expect(runCli(['--root', root, 'sim', 'release', BLOCK_ID]).code).toBe(0);
    expect((await writer.done).code).toBe(0);
  });

  it("SR-IOV disable drops VF0's virtfn0 and physfn links before it waits; VF0 stays, off its driver, VF1 untouched", async () => {
    const { root, writer } = await blockedRelease();
    const exists = (address: string, file = '') => fs.existsSync(dev(root, address, file));
    expect({
      vf0: exists(VF0),
      vf0Driver: driverOf(root, VF0),
      vf0Physfn: fs.existsSync(dev(root, VF0, 'physfn')),
      virtfn0: exists(PF, 'virtfn0'),
      virtfn1: exists(PF, 'virtfn1'),
      vf1Driver: driverOf(root, VF1),
    }).toEqual({ vf0: true, vf0Driver: null, vf0Physfn: false, virtfn0: false, virtfn1: true, vf1Driver: 'igbvf' });
    runCli(['--root', root, 'sim', 'release', BLOCK_ID]);
    expect((await writer.done).code).toBe(0);
    expect([exists(VF0), exists(VF1), exists(PF, 'virtfn0'), exists(PF, 'virtfn1')]).toEqual([false, false, false, false]);
  });

  it('a blocked read returns when the write completes, with the value the attribute holds then', async () => {
    const { root, writer } = await blockedRelease();
    const reader = background('cat', [dev(root, PF, 'sriov_numvfs')]);
    await new Promise((r) => setTimeout(r, 500));
    expect(reader.finished()).toBe(false);
    runCli(['--root', root, 'sim', 'release', BLOCK_ID]);
    expect((await reader.done).stdout).toBe('0\n');
    expect((await writer.done).code).toBe(0);
    expect(readAttr(root, PF, 'sriov_numvfs')).toBe('0');
    expect(fs.lstatSync(dev(root, PF, 'sriov_numvfs')).isFile()).toBe(true);
    expect(fs.existsSync(dev(root, VF0))).toBe(false);
  });

  it("a write that needs a held lock (the PF's driver_override store) waits for it; other writes go on", async () => {
    const { root, writer } = await blockedRelease();
    const override = background(process.execPath, [CLI_BIN, '--root', root, 'sim', 'write', `/sys/bus/pci/devices/${PF}/driver_override`, 'igb']);
    expect(runCli(['--root', root, 'sim', 'write', `/sys/bus/pci/devices/${VF1}/driver_override`, 'vfio-pci']).code).toBe(0);
    await new Promise((r) => setTimeout(r, 500));
    expect(override.finished()).toBe(false);
    runCli(['--root', root, 'sim', 'release', BLOCK_ID]);
    expect((await writer.done).code).toBe(0);
    expect((await override.done).code).toBe(0);
    expect(readAttr(root, PF, 'driver_override')).toBe('igb');
  });

  it("removing the PF (or anything above it) waits too: its driver's release needs the PF's lock", async () => {
    const { root, writer } = await blockedRelease();
    const remove = background(process.execPath, [CLI_BIN, '--root', root, 'sim', 'write', '/sys/bus/pci/devices/0000:00:01.0/remove', '1']);
    await waitsForRelease(root, writer, remove, 500);
    expect(fs.existsSync(dev(root, PF))).toBe(false);
  });

  it('a writer killed while it holds the locks leaves a sane tree: regular files with their values, nothing blocked', async () => {
    const { root, writer } = await blockedRelease();
    writer.child.kill('SIGKILL');
    await writer.done;
    await waitFor(() => fs.lstatSync(dev(root, PF, 'sriov_numvfs')).isFile() && !isBlocked(root, BLOCK_ID));
    expect(readAttr(root, PF, 'sriov_numvfs')).toBe('2');
    expect(readAttr(root, VF0, 'driver_override')).toBe('vfio-pci');
    expect(fs.lstatSync(dev(root, VF0, 'driver_override')).isFile()).toBe(true);
    expect(fs.existsSync(dev(root, PF, 'virtfn0')) && fs.existsSync(dev(root, VF0, 'physfn'))).toBe(true);
    // the write never completed: VF0 stays, off vfio-pci's links as the remove had begun
    expect(driverOf(root, VF0)).toBeNull();
    expect(fs.readdirSync(path.join(root, '.hostdev-sim/held'))).toEqual([]);
    expect(runCli(['--root', root, 'sim', 'write', NUMVFS, '0']).code).toBe(0);
  });
});

describe('hostdev list during the block (its inventory code reads the tree as is)', () => {
  it('answers within a few seconds however long its read bound, showing the held PF and VF0 with a warning each', async () => {
    const { root, writer } = await blockedRelease();
    const started = Date.now();
    const list = await runCliAsync(['list', '--json', '--root', root, '--simulate'], { env: { HOSTDEV_READ_TIMEOUT_MS: '600000' } });
    const ms = Date.now() - started;
    expect(list.code, list.stderr).toBe(0);
    expect(ms).toBeLessThan(5_000);
    const devices = JSON.parse(list.stdout) as Array<{ address: string; driverOverride: string | null; vendor: string | null; physfn: string | null }>;
    const byAddress = new Map(devices.map((device) => [device.address, device]));
    expect(byAddress.get(PF)).toMatchObject({ vendor: '8086', driverOverride: null });
    expect(byAddress.get(VF0)).toMatchObject({ vendor: '8086', driverOverride: null });
    expect(byAddress.get(VF1)).toMatchObject({ vendor: '8086', physfn: PF });
    for (const held of [PF, VF0]) expect(list.stderr).toContain(`warning: ${held}: the kernel holds this device`);
    expect(list.stderr).not.toContain(`${VF1}: the kernel holds`);
    expect(writer.finished()).toBe(false);
    runCli(['--root', root, 'sim', 'release', BLOCK_ID]);
    expect((await writer.done).code).toBe(0);
    const after = runCli(['list', '--json', '--root', root, '--simulate']);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stderr).not.toContain('the kernel holds');
  });

  it('with the bound shorter than the stalls, list still fails with HOSTDEV_TIMEOUT instead of hanging', async () => {
    const { root, writer } = await blockedRelease();
    const list = await runCliAsync(['list', '--json', '--root', root, '--simulate'], { env: { HOSTDEV_READ_TIMEOUT_MS: '300' } });
    expect(list.code).not.toBe(0);
    expect(list.stderr).toContain('HOSTDEV_TIMEOUT');
    expect(writer.finished()).toBe(false);
    runCli(['--root', root, 'sim', 'release', BLOCK_ID]);
    expect((await writer.done).code).toBe(0);
  });
});
