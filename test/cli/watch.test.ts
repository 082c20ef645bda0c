import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { StateStore } from '../../src/state/store.js';
import { jsonOf, runCli, runCliAsync } from '../support/cli.js';
import { simHostPerTest } from '../support/sim-host-per-test.js';
import { startWatch as startWatchIn, until, type Watching } from '../support/watch-process.js';

// `hostdev watch` in one process, the simulated kernel driven from others: the seed's scenario
// (an admin shrinks the PF's VFs while domains hold them), handled live.
const PF = '0000:01:00.0';
const VF0 = '0000:01:10.0';
const VF1 = '0000:01:10.2';
const INTERVAL_MS = 300;

const host = simHostPerTest('hostdev-cli-watch-', 'sriov-nic');

const startWatch = (args: readonly string[]): Watching => startWatchIn(host.root, host.stateDir, args);

function activeAddresses(): string[] {
  const store = StateStore.open(host.stateDir);
  try {
    return store.readTables().active.map((entry) => entry.address);
  } finally {
    store.close();
  }
}

const simWrite = (value: string) => runCliAsync(['--root', host.root, 'sim', 'write', `/sys/bus/pci/devices/${PF}/sriov_numvfs`, value]);

describe('hostdev watch across processes (simulated kernel)', () => {
  it('prunes assigned VFs within one poll interval of their removal, naming their domains; reports them "returned"', async () => {
    const cli = (...args: string[]) => runCli(['--root', host.root, '--state-dir', host.stateDir, '--simulate', ...args]);
    expect(cli('assign', '--domain', 'vm1', VF0).code).toBe(0);
    expect(cli('assign', '--domain', 'vm2', VF1).code).toBe(0);

    const watch = startWatch(['--json', '--source', 'poll', '--interval', String(INTERVAL_MS)]);
    try {
      await until(() => watch.stderr.includes('watching PCI devices'), 'watch to start');
      const writer = simWrite('0');
      const vfDir = path.join(host.root, 'sys/bus/pci/devices', VF0);
      await until(() => !existsSync(vfDir), 'the VFs to leave the host');
      const removedAt = Date.now();
      await until(() => activeAddresses().length === 0, 'the tables to be clean');
      const cleanAfterMs = Date.now() - removedAt;
      expect((await writer).code).toBe(0);
      // Pruned by the running watch, with no other hostdev call in between. The latency itself (one poll
      // interval) is measured by `npm run bench -- prune-latency`; here the bound only tells "live" from
      // "never", with room for a loaded CI machine.
      expect(cleanAfterMs).toBeLessThanOrEqual(INTERVAL_MS + 10_000);

      const events = () => watch.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      await until(() => events().filter((e) => e['kind'] === 'remove').length === 2, 'two remove events');
      expect(events().filter((e) => e['kind'] === 'remove')).toEqual([
        expect.objectContaining({ kind: 'remove', address: VF0, pf: PF, vfIndex: 0, owner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' }, pruned: 'active' }),
        expect.objectContaining({ kind: 'remove', address: VF1, pf: PF, vfIndex: 1, owner: { driver: 'qemu', domain: 'vm2', hypervisor: 'qemu', vm: 'vm2' }, pruned: 'active' }),
      ]);
      // The count change can come in a later poll than the removals (the poller may read the PF mid-change).
      await until(() => events().some((e) => e['kind'] === 'vf-count-change' && e['to'] === 0), 'the VF count change');
      expect(events()).toContainEqual(expect.objectContaining({ kind: 'vf-count-change', address: PF, from: 2, to: 0 }));

      expect((await simWrite('2')).code).toBe(0);
      await until(() => events().filter((e) => e['kind'] === 'returned').length === 2, 'two returned events');
      expect(events().filter((e) => e['kind'] === 'returned')).toEqual([
        expect.objectContaining({ address: VF0, pf: PF, vfIndex: 0, formerOwner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' }, outcome: 'reported' }),
        expect.objectContaining({ address: VF1, pf: PF, vfIndex: 1, formerOwner: { driver: 'qemu', domain: 'vm2', hypervisor: 'qemu', vm: 'vm2' }, outcome: 'reported' }),
      ]);
    } finally {
      watch.child.kill('SIGTERM');
    }
    expect(await watch.exited).toBe(0);
    const status = jsonOf<{ active: unknown[]; inactive: unknown[] }>(
      runCli(['--root', host.root, '--state-dir', host.stateDir, '--json', 'status']),
    );
    expect([status.active, status.inactive]).toEqual([[], []]);
    // The returned VF can be given to a domain again (the seed's last step).
    expect(runCli(['--root', host.root, '--state-dir', host.stateDir, '--simulate', 'assign', '--domain', 'vm3', VF0]).code).toBe(0);
    expect(runCli(['--root', host.root, '--state-dir', host.stateDir, '--simulate', 'release', '--domain', 'vm3']).code).toBe(0);
  });

  it('prints one text line per event with the simulator source, and stops cleanly on SIGINT', async () => {
    const watch = startWatch(['--source', 'sim']);
    try {
      await until(() => watch.stderr.includes('watching PCI devices'), 'watch to start');
      expect(watch.stderr).toContain('(sim + poll every');
      expect((await runCliAsync(['--root', host.root, 'sim', 'write', `/sys/bus/pci/devices/${VF1}/driver/unbind`, VF1])).code).toBe(0);
      await until(() => watch.lines.length > 0, 'an event line');
      expect(watch.lines[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z unbind 0000:01:10\.2 \(VF 1 of 0000:01:00\.0\) from igbvf$/);
    } finally {
      watch.child.kill('SIGINT');
    }
    expect(await watch.exited).toBe(0);
  });

  it('with --reclaim, makes a returned VF ready for its former domain again, with the VF config it had', async () => {
    const cli = (...args: string[]) => runCli(['--root', host.root, '--state-dir', host.stateDir, '--simulate', ...args]);
    expect(cli('assign', '--domain', 'vm1', VF0, '--vlan', '33', '--trust', 'on').code).toBe(0);
    const watch = startWatch(['--simulate', '--json', '--reclaim', '--source', 'sim']);
    try {
      await until(() => watch.stderr.includes('watching PCI devices'), 'watch to start');
      expect((await simWrite('0')).code).toBe(0);
      await until(() => activeAddresses().length === 0, 'the prune');
      expect((await simWrite('2')).code).toBe(0);
      const events = () => watch.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      await until(() => events().some((e) => e['kind'] === 'returned' && e['address'] === VF0), 'the returned event');
      expect(events().find((e) => e['kind'] === 'returned' && e['address'] === VF0)).toMatchObject({
        formerOwner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' },
        outcome: 'readied',
      });
    } finally {
      watch.child.kill('SIGTERM');
    }
    expect(await watch.exited).toBe(0);
    const list = jsonOf<{ vfs: Array<Record<string, unknown>> }>(cli('--json', 'vf', 'list', PF));
    expect(list.vfs[0]).toMatchObject({ driver: 'vfio-pci', owner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' }, vlan: 33, trust: true });
    expect(cli('release', '--domain', 'vm1').code).toBe(0);
    expect(jsonOf<{ vfs: Array<Record<string, unknown>> }>(cli('--json', 'vf', 'list', PF)).vfs[0]).toMatchObject({
      driver: 'igbvf', owner: null, vlan: 0, trust: false,
    });
  });
});
