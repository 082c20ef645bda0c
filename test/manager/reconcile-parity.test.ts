import { readlinkSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { PollSource } from '../../src/events/poll-source.js';
import { ChildSnapshotReader } from '../../src/events/snapshot-reader.js';
import { Watcher } from '../../src/events/watcher.js';
import { HostdevManager } from '../../src/manager/hostdev-manager.js';
import { LiveWatch } from '../../src/manager/watch-live.js';
import { HostdevService } from '../../src/service/hostdev-service.js';
import { simulatedHost } from '../../src/sim-entry.js';
import { SimHostUsage } from '../../src/host/sim-host-usage.js';
import { simManagerHost, type SimManagerHost } from '../support/sim-manager.js';

// The same situation for every path that can find it: vm2 holds a VF (its MAC and VLAN set, the
// host's config saved), and the VF leaves the host with its PF's sriov_numvfs. Whichever path
// meets it first (the next open, a status, another domain's release, a reattach, a watch, a
// forced VF count change) must leave the same tables and record the same departed VF.
const PF0 = '0000:01:00.0';
const PF1 = '0000:01:00.1';
const VM2 = { driver: 'qemu', domain: 'vm2' };

let host: SimManagerHost;
let gone: PciAddress; // vm2's VF of PF0, the one that leaves
let held: PciAddress; // vm1's VF of PF1, stays
let parked: PciAddress; // a detached VF of PF1, stays

const virtfn = (pf: string, n: number): PciAddress =>
  path.basename(readlinkSync(path.join(host.root, 'sys/bus/pci/devices', pf, `virtfn${n}`))) as PciAddress;
const open = (): Promise<HostdevService> => HostdevService.open({ ...simulatedHost(host.root), stateDir: host.stateDir });
const vanish = (): Promise<void> => host.kernel.write(`/sys/bus/pci/devices/${PF0}/sriov_numvfs`, '0');

beforeEach(async () => {
  host = simManagerHost('sriov-nic');
  await host.kernel.write(`/sys/bus/pci/devices/${PF0}/sriov_numvfs`, '2');
  [gone, held, parked] = [virtfn(PF0, 0), virtfn(PF1, 0), virtfn(PF1, 1)];
  const service = await open();
  try {
    await service.assign({ domain: 'vm2', addresses: [gone], vf: { [gone]: { mac: '52:54:00:00:00:02', vlan: 20 } } });
    await service.assign({ domain: 'vm1', addresses: [held] });
    await service.detach(parked);
  } finally {
    service.close();
  }
});
afterEach(() => host.cleanup());

/** The tables, and what the state says about the VF that left, after the path ran (read without recovery). */
async function outcome(): Promise<Record<string, unknown>> {
  const manager = await HostdevManager.open({ root: host.root, stateDir: host.stateDir, kernel: host.kernel, hostUsage: new SimHostUsage(host.root), recover: async () => ({ repaired: [], pruned: [], drift: [], vfConfig: [], warnings: [] }) });
  try {
    const tables = manager.store.readTables();
    return {
      active: tables.active.map((entry) => [entry.address, entry.usedBy.domain]),
      inactive: tables.inactive.map((entry) => entry.address),
      vfConfigs: manager.store.readVfConfigs().map((row) => row.address),
      departed: manager.store.readDeparted().filter((record) => record.address === gone).map(({ departedAt: _at, prunedBy: _by, ...record }) => record),
      prunedBy: manager.store.readDeparted().filter((record) => record.address === gone).map((record) => record.prunedBy),
    };
  } finally {
    manager.close();
  }
}

const PATHS: Record<string, { prunedBy: string; tables: { active: unknown[]; inactive: unknown[] }; run: () => Promise<void> }> = {
  'the next open (recovery)': {
    prunedBy: 'recover',
    tables: { active: [['HELD', 'vm1']], inactive: ['PARKED'] },
    run: async () => {
      await vanish();
      (await open()).close();
    },
  },
  status: {
    prunedBy: 'status',
    tables: { active: [['HELD', 'vm1']], inactive: ['PARKED'] },
    run: async () => {
      const service = await open();
      await vanish();
      expect((await service.status()).pruned).toEqual([gone]);
      service.close();
    },
  },
  "another domain's release": {
    prunedBy: 'release',
    tables: { active: [], inactive: ['PARKED'] },
    run: async () => {
      const service = await open();
      await vanish();
      await service.release({ domain: 'vm1' });
      service.close();
    },
  },
  'a reattach of another device': {
    prunedBy: 'reattach',
    tables: { active: [['HELD', 'vm1']], inactive: [] },
    run: async () => {
      const service = await open();
      await vanish();
      await service.reattach(parked);
      service.close();
    },
  },
  'vf set-count --force of another PF': {
    prunedBy: 'vf-set-count',
    tables: { active: [], inactive: [] },
    run: async () => {
      const service = await open();
      await vanish();
      await service.vf.setCount({ pf: PF1 as PciAddress, count: 1, force: true, waitMs: 5_000 });
      service.close();
    },
  },
  'a running watch': {
    prunedBy: 'watch',
    tables: { active: [['HELD', 'vm1']], inactive: ['PARKED'] },
    run: async () => {
      const manager = await HostdevManager.open({ root: host.root, stateDir: host.stateDir, kernel: host.kernel, hostUsage: new SimHostUsage(host.root) });
      const live = new LiveWatch({ store: manager.store, emit: () => undefined });
      await live.capture();
      const watcher = new Watcher({
        sources: [new PollSource(50)],
        reader: new ChildSnapshotReader(host.root),
        onBatch: (batch) => live.handle(batch),
        onError: (error) => {
          throw error;
        },
      });
      try {
        const started = await watcher.start();
        await live.start(started.snapshot);
        await vanish();
        const until = Date.now() + 10_000;
        while (manager.store.readTables().active.some((entry) => entry.address === gone)) {
          if (Date.now() > until) throw new Error('the watch did not prune the VF');
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      } finally {
        await watcher.stop();
        manager.close();
      }
    },
  },
};

describe('one reconcile: every path records the same thing for the same vanished VF', () => {
  it.each(Object.keys(PATHS))('%s', async (name) => {
    const spec = PATHS[name]!;
    await spec.run();
    const place = (value: unknown): unknown => (value === 'HELD' ? held : value === 'PARKED' ? parked : value);
    const result = await outcome();
    expect({ active: result['active'], inactive: result['inactive'] }).toEqual({
      active: spec.tables.active.map((row) => (row as unknown[]).map(place)),
      inactive: spec.tables.inactive.map(place),
    });
    expect(result['vfConfigs']).toEqual([]);
    expect(result['departed']).toEqual([
      {
        address: gone,
        pf: PF0,
        vfIndex: 0,
        former: { table: 'active', entry: { address: gone, usedBy: VM2, managed: true, stubDriver: 'vfio-pci', originalDriver: 'igbvf' } },
        owner: VM2,
        vfConfig: { address: gone, pf: 'enp1s0f0', vfIndex: 0, mac: '00:00:00:00:00:00', vlan: 0, spoofchk: true, trust: false },
        domainConfig: { vlan: 20, mac: '52:54:00:00:00:02' },
      },
    ]);
    expect(result['prunedBy']).toEqual([spec.prunedBy]);
  });
});

describe('release reconciles after its own writes', () => {
  it('a VF that leaves the host during its own release is pruned by that release: reported, in no table, not awaited', async () => {
    const sim = simulatedHost(host.root);
    let pulled = false;
    // The admin's `echo 0 > sriov_numvfs` lands just as the release starts on vm2's VF.
    const kernel = {
      loadModule: (name: string) => sim.kernel.loadModule(name),
      write: async (hostPath: string, value: string) => {
        if (!pulled && hostPath.includes(gone)) {
          pulled = true;
          await vanish();
        }
        return sim.kernel.write(hostPath, value);
      },
    };
    const service = await HostdevService.open({ ...sim, kernel, stateDir: host.stateDir });
    try {
      const report = await service.release({ domain: 'vm2' });
      expect(pulled).toBe(true);
      expect(report.pruned).toEqual([gone]);
      expect(report.failures).toEqual([]);
      expect(report.released).toEqual([]);
    } finally {
      service.close();
    }
    const result = await outcome();
    expect(result['active']).toEqual([[held, 'vm1']]);
    expect(result['vfConfigs']).toEqual([]);
    expect(result['departed']).toEqual([]);
  });
});
