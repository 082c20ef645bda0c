import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSimulatedHost } from '../../src/sim-entry.js';
import { jsonOf, runCliAsync } from '../support/cli.js';
import { qemuMissing, startQemu, type RunningQemu } from '../support/qemu.js';

// `hostdev hotplug` and `unplug` from the command line, against a real QEMU over QMP (no guest).
if (qemuMissing !== null) console.warn(`skipping the hotplug CLI tests: ${qemuMissing}`);

const VF0 = '0000:01:10.0';

/** A simulated host of the preset and a QEMU with one root port (and `devices`), made before each test; `hs` runs hostdev on them. */
function hostAndQemu(preset: string, devices: readonly string[] = []) {
  const at = { base: '', qemu: null as RunningQemu | null };
  beforeEach(async () => {
    at.base = mkdtempSync(path.join(tmpdir(), 'hostdev-hotplug-cli-'));
    createSimulatedHost(path.join(at.base, 'host'), { preset });
    at.qemu = await startQemu({ rootPorts: ['rp1'], devices });
  });
  afterEach(async () => {
    await at.qemu?.stop();
    rmSync(at.base, { recursive: true, force: true });
  });
  return {
    at,
    hs: (...args: string[]) =>
      runCliAsync(['--root', path.join(at.base, 'host'), '--state-dir', path.join(at.base, 'state'), '--simulate', ...args], { timeoutMs: 60_000 }),
  };
}

describe.skipIf(qemuMissing !== null)('hostdev hotplug / unplug', () => {
  const { at, hs } = hostAndQemu('sriov-nic');

  it('prints the plan and the root port on a dry run, and changes nothing', async () => {
    const run = await hs('hotplug', '--qmp', at.qemu!.socket, '--domain', 'vm1', '--dry-run', VF0);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('assign plan (dry run: nothing was changed):');
    expect(run.stdout).toContain(`would hot-plug ${VF0} as hostdev-0000_01_10_0 on root port rp1`);
    expect((jsonOf(await hs('status', '--json')) as { active: unknown[] }).active).toEqual([]);
  });

  it('exits 10 with the rollback said when QEMU refuses the device, and leaves no entry', async () => {
    const run = await hs('hotplug', '--qmp', at.qemu!.socket, '--domain', 'vm1', VF0);
    expect(run.code).toBe(10);
    expect(run.stderr).toMatch(/error: hot-plug of 0000:01:10\.0 into vm1 failed \(QEMU refused device_add: .*\); the assign was rolled back/);
    expect(run.stderr).toMatch(/hint: .*Nothing is left assigned/);
    expect((jsonOf(await hs('status', '--json')) as { active: unknown[] }).active).toEqual([]);
  });

  it('releases an assigned device the VM does not have, and refuses a bad --wait and an unreachable socket', async () => {
    expect((await hs('assign', '--domain', 'vm1', VF0)).code).toBe(0);
    const run = await hs('unplug', '--qmp', at.qemu!.socket, '--domain', 'vm1', VF0, '--json');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ unplugged: [], absent: [VF0], reattached: [VF0] });
    expect((await hs('unplug', '--qmp', at.qemu!.socket, '--domain', 'vm1', '--wait', '5s', VF0)).code).toBe(2);
    // Above what a timer holds, Node.js would fire at once: refused like every --wait.
    const huge = await hs('unplug', '--qmp', at.qemu!.socket, '--domain', 'vm1', '--wait', '9999999999', VF0);
    expect(huge.code).toBe(2);
    expect(huge.stderr).toMatch(/--wait must be a whole number of milliseconds up to 2147483647/);
    const lost = await hs('hotplug', '--qmp', path.join(at.base, 'none.sock'), '--domain', 'vm1', VF0);
    expect(lost.code).toBe(10);
    expect(lost.stderr).toMatch(/cannot reach QEMU's monitor/);
  });
});

describe.skipIf(qemuMissing !== null)('hostdev hotplug / unplug of a USB key', () => {
  const { at, hs } = hostAndQemu('virt-host', ['qemu-xhci,id=xhci,bus=rp1']);

  it('plugs usb:1-1.2 onto the bus named with --usb-bus and takes it out again; --readonly is for scsi: keys', async () => {
    const run = await hs('hotplug', '--qmp', at.qemu!.socket, '--domain', 'vm1', '--usb-bus', 'xhci.0', 'usb:1-1.2', '--json');
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      dryRun: false,
      plugged: [],
      devices: { assign: { assigned: ['usb:1-1.2'] }, plugged: [{ key: 'usb:1-1.2', id: 'hostdev-usb-1-1_2', at: 'xhci.0' }], present: [] },
    });
    const out = await hs('unplug', '--qmp', at.qemu!.socket, '--domain', 'vm1', 'usb:1-1.2');
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toBe('asked vm1 to give back usb:1-1.2: done (DEVICE_DELETED)\nreleased from domain vm1 (qemu): usb:1-1.2\n');
    const readonly = await hs('hotplug', '--qmp', at.qemu!.socket, '--domain', 'vm1', '--readonly', 'usb:1-1.2');
    expect(readonly.code).toBe(2);
    expect(readonly.stderr).toMatch(/--readonly applies to scsi: keys only/);
  });
});
