import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { RebootedEntry, RecoveryReport } from '../../src/manager/recovery.js';
import { jsonOf, runCli } from '../support/cli.js';
import { simHostCli, simHostPerTest } from '../support/sim-host-per-test.js';

/** Boot awareness: entries record their boot; the first command after a (simulated) reboot reconciles them. */

const host = simHostPerTest('hostdev-reboot-', 'workstation');
const VF = '0000:02:10.0'; // a VF of 0000:02:00.0 (igbvf), gone after a reboot
const NIC = '0000:06:00.0'; // igb, managed assign
const NIC2 = '0000:07:00.0'; // igb, same group as NIC
const ONBOARD = '0000:00:19.0'; // e1000e, detached (inactive)

const { cli, ok } = simHostCli(host);
function driverOf(address: string): string | null {
  try {
    return path.basename(fs.readlinkSync(path.join(host.root, 'sys/bus/pci/devices', address, 'driver')));
  } catch {
    return null;
  }
}
function bootId(): string {
  return fs.readFileSync(path.join(host.root, 'proc/sys/kernel/random/boot_id'), 'utf8').trim();
}
interface Status {
  active: Array<{ address: string; bootId: string | null }>;
  inactive: Array<{ address: string; bootId: string | null }>;
  recovery: RecoveryReport;
  departed: Array<{ address: string; owner: { domain: string } | null; prunedBy: string }>;
}
const status = (...extra: string[]): Status => jsonOf<Status>(ok(...extra, '--json', 'status'));
const byAddress = (entries: readonly RebootedEntry[]) => Object.fromEntries(entries.map(({ steps: _s, ...e }) => [e.address, e]));

function prepare(): void {
  ok('assign', '--domain', 'vm1', VF);
  ok('assign', '--domain', 'vm2', NIC, NIC2);
  ok('detach', ONBOARD);
  const before = status();
  expect(before.active.map((e) => e.bootId)).toEqual([bootId(), bootId(), bootId()]);
  expect(before.inactive.map((e) => e.bootId)).toEqual([bootId()]);
}

describe('after a reboot', () => {
  it('sim reboot gives a new boot id, puts every device back on its host driver and removes the VFs', () => {
    prepare();
    const first = bootId();
    const run = jsonOf<{ bootId: string; vfsRemoved: string[] }>(runCli(['--json', 'sim', 'reboot', host.root]));
    expect(run.bootId).toBe(bootId());
    expect(run.bootId).not.toBe(first);
    expect(run.vfsRemoved).toEqual(['0000:02:00.0']);
    expect(fs.existsSync(path.join(host.root, 'sys/bus/pci/devices', VF))).toBe(false);
    expect([driverOf(NIC), driverOf(NIC2), driverOf(ONBOARD)]).toEqual(['igb', 'igb', 'e1000e']);
    expect(fs.readFileSync(path.join(host.root, 'sys/bus/pci/devices', NIC, 'driver_override'), 'utf8')).toBe('(null)\n');
  });

  it('the first command releases active entries of the earlier boot (with their former owner), re-applies inactive ones, prunes vanished VFs', () => {
    prepare();
    ok('sim', 'reboot', host.root);
    const after = status();
    expect(after.active).toEqual([]);
    expect(after.inactive.map((e) => [e.address, e.bootId])).toEqual([[ONBOARD, bootId()]]);
    const rebooted = byAddress(after.recovery.rebooted);
    expect(rebooted[NIC]).toMatchObject({ formerTable: 'active', formerOwner: { hypervisor: 'qemu', vm: 'vm2' }, action: 'released', outcome: 'ok', driver: 'igb', table: null });
    expect(rebooted[NIC2]).toMatchObject({ action: 'released', driver: 'igb', table: null });
    expect(rebooted[ONBOARD]).toMatchObject({ formerTable: 'inactive', formerOwner: null, action: 'reapplied', outcome: 'ok', driver: 'vfio-pci', table: 'inactive' });
    expect(driverOf(ONBOARD)).toBe('vfio-pci');
    expect(driverOf(NIC)).toBe('igb');
    // The VF did not come back (sriov_numvfs is 0): the vanished-device rule, with its former owner.
    expect(after.recovery.pruned).toEqual([expect.objectContaining({ address: VF, table: 'active', usedBy: expect.objectContaining({ vm: 'vm1' }) })]);
    expect(after.departed).toEqual([expect.objectContaining({ address: VF, owner: expect.objectContaining({ domain: 'vm1' }), prunedBy: 'recover' })]);
    // Done once: the next command finds this boot's entries only.
    expect(status().recovery.rebooted).toEqual([]);
  });

  it('status says what the reboot reconcile did, and the release of the former domain finds nothing left', () => {
    prepare();
    ok('sim', 'reboot', host.root);
    const run = ok('status');
    expect(run.stderr).toContain(`${NIC} was used by driver qemu, domain vm2 before the host rebooted: released to igb, in no table`);
    expect(run.stdout).toMatch(new RegExp(`${ONBOARD.replace(/\./g, '\\.')}\\s+host rebooted \\(detached\\): reapplied`));
    expect(run.stdout).toMatch(new RegExp(`${NIC.replace(/\./g, '\\.')}\\s+host rebooted \\(owner qemu/vm2\\): released`));
  });

  it('a dry run after a reboot shows what the reconcile would do and changes nothing', () => {
    prepare();
    ok('sim', 'reboot', host.root);
    const db = path.join(host.stateDir, 'state.db');
    const before = fs.readFileSync(db);
    const report = jsonOf<{ recovery?: RecoveryReport }>(ok('--json', 'detach', '0000:03:00.0', '--dry-run'));
    const rebooted = byAddress(report.recovery?.rebooted ?? []);
    expect(rebooted[ONBOARD]).toMatchObject({ action: 'reapplied', driver: 'vfio-pci' });
    expect(report.recovery?.rebooted.find((e) => e.address === ONBOARD)?.steps).toEqual(
      expect.arrayContaining([expect.stringContaining('driver_override')]),
    );
    expect(rebooted[NIC]).toMatchObject({ action: 'released', formerOwner: expect.objectContaining({ vm: 'vm2' }) });
    expect(driverOf(ONBOARD)).toBe('e1000e');
    expect(driverOf('0000:03:00.0')).toBe('nvme');
    expect(fs.readFileSync(db).equals(before)).toBe(true);
    // ... and the real run afterwards still has it all to do.
    expect(status().recovery.rebooted.map((e) => e.address).sort()).toEqual([ONBOARD, NIC, NIC2].sort());
  });

  it('--detached-after-reboot reattach gives detached devices back to the host instead', () => {
    prepare();
    ok('sim', 'reboot', host.root);
    const after = status('--detached-after-reboot', 'reattach');
    expect(after.inactive).toEqual([]);
    expect(byAddress(after.recovery.rebooted)[ONBOARD]).toMatchObject({ action: 'reattached', driver: 'e1000e', table: null });
    expect(driverOf(ONBOARD)).toBe('e1000e');
    const bad = cli('--detached-after-reboot', 'forget', 'status');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--detached-after-reboot is "forget", not one of reapply, reattach');
  });

  it('an unmanaged device of an earlier boot is released but stays detached, back on its stub', () => {
    ok('detach', ONBOARD);
    ok('assign', '--domain', 'vm3', '--unmanaged', ONBOARD);
    ok('sim', 'reboot', host.root);
    const after = status();
    expect(after.active).toEqual([]);
    expect(after.inactive.map((e) => e.address)).toEqual([ONBOARD]);
    expect(byAddress(after.recovery.rebooted)[ONBOARD]).toMatchObject({ formerOwner: expect.objectContaining({ vm: 'vm3' }), action: 'released', table: 'inactive', driver: 'vfio-pci' });
    expect(driverOf(ONBOARD)).toBe('vfio-pci');
  });

  it('entries written before hostdev recorded boots are taken as this boot (no release on upgrade), then follow boots', () => {
    ok('assign', '--domain', 'vm2', NIC, NIC2);
    const db = new Database(path.join(host.stateDir, 'state.db'));
    db.exec('UPDATE active SET boot_id = NULL');
    db.close();
    const upgraded = status();
    expect(upgraded.recovery.rebooted).toEqual([]);
    expect(upgraded.active.map((e) => [e.address, e.bootId])).toEqual([[NIC, bootId()], [NIC2, bootId()]]);
    ok('sim', 'reboot', host.root);
    expect(status().recovery.rebooted.map((e) => e.action)).toEqual(['released', 'released']);
  });
});
