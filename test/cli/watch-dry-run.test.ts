import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonOf, runCli, runCliAsync } from '../support/cli.js';
import { simHostPerTest } from '../support/sim-host-per-test.js';
import { logicalDump, treeDigest } from '../support/state-digest.js';
import { startWatch as startWatchIn, until, type Watching } from '../support/watch-process.js';

// `watch --reclaim --dry-run` says what reclaim (and each prune) would do and changes nothing:
// the simulated host, the state directory and the database's content are as they were.
const PF = '0000:01:00.0';
const VF0 = '0000:01:10.0';
const VF1 = '0000:01:10.2';

const host = simHostPerTest('hostdev-watch-dry-run-', 'sriov-nic');
const cli = (...args: string[]) => runCli(['--root', host.root, '--state-dir', host.stateDir, '--simulate', ...args]);
const simWrite = (value: string) => runCliAsync(['--root', host.root, 'sim', 'write', `/sys/bus/pci/devices/${PF}/sriov_numvfs`, value]);
const startWatch = (args: readonly string[]): Watching => startWatchIn(host.root, host.stateDir, ['--simulate', '--source', 'sim', ...args]);
const dump = (): string => logicalDump(path.join(host.stateDir, 'state.db'));

async function stop(watch: Watching): Promise<void> {
  watch.child.kill('SIGINT');
  expect(await watch.exited, watch.stderr).toBe(0);
}

describe('watch --reclaim --dry-run', () => {
  it('prints what reclaim would do for a returned VF and changes nothing', async () => {
    expect(cli('assign', '--domain', 'vm1', VF0, '--vlan', '33').code).toBe(0);
    // VF0 leaves while vm1 holds it (status records it as departed), then comes back on its host driver.
    expect((await simWrite('0')).code).toBe(0);
    const departed = jsonOf<{ departed: Array<Record<string, unknown>> }>(cli('--json', 'status')).departed;
    expect(departed).toEqual([expect.objectContaining({ key: `pci:${VF0}`, address: VF0, awaited: true })]);
    expect((await simWrite('2')).code).toBe(0);

    const tree = treeDigest(host.root);
    const state = treeDigest(host.stateDir);
    const before = dump();

    const text = startWatch(['--reclaim', '--dry-run']);
    try {
      const line = await until(() => text.lines.find((l) => l.includes(`returned ${VF0}`)), 'the returned VF');
      expect(line).toContain(`returned ${VF0} (VF 0 of ${PF}), formerly driver qemu, domain vm1 [would-ready]`);
      expect(line).toContain('would be ready again for driver qemu, domain vm1 on vfio-pci (managed');
      expect(line).toContain('dry run: nothing was changed');
      expect(text.stderr).toContain('returned VFs would be readied for their former domain; dry run: nothing is changed');
    } finally {
      await stop(text);
    }

    // The record is still awaited: a second dry run sees the same, as JSON.
    const json = startWatch(['--json', '--reclaim', '--dry-run']);
    try {
      const event = await until(
        () => json.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e['kind'] === 'returned'),
        'the returned VF (JSON)',
      );
      expect(event).toMatchObject({
        key: `pci:${VF0}`,
        address: VF0,
        outcome: 'would-ready',
        dryRun: true,
        formerOwner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' },
      });
    } finally {
      await stop(json);
    }

    expect(treeDigest(host.root)).toEqual(tree);
    expect(treeDigest(host.stateDir)).toEqual(state);
    expect(dump()).toEqual(before);
    // VF0 is still on its host driver: nothing was readied.
    expect(cli('--json', 'vf', 'list', PF).stdout).toContain('"igbvf"');
  });

  it('says a removed VF would be pruned and leaves the tables as they were', async () => {
    expect(cli('assign', '--domain', 'vm2', VF1).code).toBe(0);
    const before = dump();
    const watch = startWatch(['--json', '--reclaim', '--dry-run']);
    try {
      await until(() => watch.stderr.includes('watching PCI devices'), 'watch to start');
      expect((await simWrite('0')).code).toBe(0);
      const events = () => watch.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      const removed = await until(() => events().find((e) => e['kind'] === 'remove' && e['address'] === VF1), 'the remove event');
      expect(removed).toMatchObject({ key: `pci:${VF1}`, pruned: 'active', dryRun: true, owner: { driver: 'qemu', domain: 'vm2', hypervisor: 'qemu', vm: 'vm2' } });
    } finally {
      await stop(watch);
    }
    expect(dump()).toEqual(before);
  });
});
