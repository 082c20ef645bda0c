import { readlinkSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { pciKey } from '../../src/core/device-key.js';
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
const VM2 = { driver: 'qemu', domain: 'vm2', hypervisor: 'qemu', vm: 'vm2' };

let host: SimManagerHost;
let gone: PciAddress; // vm2's VF of PF0: leaves
let parkedGone: PciAddress; // a detached VF of PF0: leaves with it
let held: PciAddress; // vm1's VF of PF1, stays
let parked: PciAddress; // a detached VF of PF1, stays

const virtfn = (pf: string, n: number): PciAddress =>
  path.basename(readlinkSync(path.join(host.root, 'sys/bus/pci/devices', pf, `virtfn${n}`))) as PciAddress;
const open = (): Promise<HostdevService> => HostdevService.open({ ...simulatedHost(host.root), stateDir: host.stateDir });
const vanish = (): Promise<void> => host.kernel.write(`/sys/bus/pci/devices/${PF0}/sriov_numvfs`, '0');

beforeEach(async () => {
  host = simManagerHost('sriov-nic');
  await host.kernel.write(`/sys/bus/pci/devices/${PF0}/sriov_numvfs`, '2');
  [gone, parkedGone, held, parked] = [virtfn(PF0, 0), virtfn(PF0, 1), virtfn(PF1, 0), virtfn(PF1, 1)];
  const service = await open();
  try {
    await service.assign({ domain: 'vm2', addresses: [gone], vf: { [gone]: { mac: '52:54:00:00:00:02', vlan: 20 } } });
    await service.assign({ domain: 'vm1', addresses: [held] });
    await service.detach({ device: parked });
    await service.detach({ device: parkedGone });
  } finally {
    service.close();
  }
});
afterEach(() => host.cleanup());

/** The tables and the departed records (without their time and pruner) after the path ran, read without recovery. */
async function outcome(): Promise<{ active: unknown[]; inactive: unknown[]; vfConfigs: string[]; departed: Map<string, unknown>; prunedBy: Map<string, string> }> {
  const manager = await HostdevManager.open({
    root: host.root,
    stateDir: host.stateDir,
    kernel: host.kernel,
    hostUsage: new SimHostUsage(host.root),
    recover: async () => ({ repaired: [], pruned: [], drift: [], vfConfig: [], warnings: [] }),
  });
  try {
    const tables = manager.store.readTables();
    const records = manager.store.readDeparted();
    return {
      active: tables.active.map((entry) => [entry.address, entry.usedBy.domain]),
      inactive: tables.inactive.map((entry) => entry.address),
      vfConfigs: manager.store.readVfConfigs().map((row) => row.address),
      departed: new Map(records.map(({ departedAt: _at, prunedBy: _by, ...record }) => [record.address, record])),
      prunedBy: new Map(records.map((record) => [record.address, record.prunedBy])),
    };
  } finally {
    manager.close();
  }
}

/** The departed record every path that prunes the VF must leave (its time and pruner aside). */
function expectedRecord(address: PciAddress): unknown {
  if (address === gone) {
    return {
      address: gone,
      pf: PF0,
      vfIndex: 0,
      former: { table: 'active', entry: { key: pciKey(gone), address: gone, usedBy: VM2, managed: true, stubDriver: 'vfio-pci', originalDriver: 'igbvf' } },
      owner: VM2,
      vfConfig: { address: gone, pf: 'enp1s0f0', vfIndex: 0, mac: '00:00:00:00:00:00', vlan: 0, spoofchk: true, trust: false },
      domainConfig: { vlan: 20, mac: '52:54:00:00:00:02' },
    };
  }
  return {
    address: parkedGone,
    pf: PF0,
    vfIndex: 1,
    former: { table: 'inactive', entry: { key: pciKey(parkedGone), address: parkedGone, managed: false, stubDriver: 'vfio-pci', originalDriver: 'igbvf' } },
    owner: null,
    vfConfig: null,
    domainConfig: null,
  };
}

interface PathCase {
  readonly prunedBy: string;
  /** The vanished VFs this path meets: every path that looks at the whole tables meets both. */
  readonly meets: 'both' | 'gone' | 'parkedGone';
  /** Whether what it prunes is awaited back (not when its own domain lets go of it). */
  readonly awaited: boolean;
  readonly run: () => Promise<void>;
}

const withService = async (fn: (service: HostdevService) => Promise<unknown>): Promise<void> => {
  const service = await open();
  try {
    await vanish();
    await fn(service);
  } finally {
    service.close();
  }
};

const PATHS: Record<string, PathCase> = {
  'the next open (recovery)': {
    prunedBy: 'recover',
    meets: 'both',
    awaited: true,
    run: async () => {
      await vanish();
      (await open()).close();
    },
  },
  status: { prunedBy: 'status', meets: 'both', awaited: true, run: () => withService((service) => service.status()) },
  'vf set-count of another PF': {
    prunedBy: 'vf-set-count',
    meets: 'both',
    awaited: true,
    run: () => withService((service) => service.vf.setCount({ pf: PF1 as PciAddress, count: 2, waitMs: 5_000 })),
  },
  'a running watch': {
    prunedBy: 'watch',
    meets: 'both',
    awaited: true,
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
  'a reattach of another device (it looks at the inactive table)': {
    prunedBy: 'reattach',
    meets: 'parkedGone',
    awaited: true,
    run: () => withService((service) => service.reattach({ device: parked })),
  },
  "its own domain's release (it looks at the domain's devices; a domain that lets go awaits nothing)": {
    prunedBy: 'release',
    meets: 'gone',
    awaited: false,
    run: () => withService((service) => service.release({ domain: 'vm2' })),
  },
};

describe('one reconcile: every path records the same thing for the same vanished VF', () => {
  it.each(Object.keys(PATHS))('%s', async (name) => {
    const spec = PATHS[name]!;
    await spec.run();
    const result = await outcome();
    const met = spec.meets === 'both' ? [gone, parkedGone] : spec.meets === 'gone' ? [gone] : [parkedGone];
    const left = [gone, parkedGone].filter((address) => !met.includes(address));
    const stays = (address: PciAddress): boolean => left.includes(address);
    const byAddress = (a: unknown[], b: unknown[]): number => String(a[0]).localeCompare(String(b[0]));
    expect(result.active).toEqual([[held, 'vm1'], ...(stays(gone) ? [[gone, 'vm2']] : [])].sort(byAddress));
    const reattached = spec.prunedBy === 'reattach';
    expect(result.inactive).toEqual([...(reattached ? [] : [parked]), ...(stays(parkedGone) ? [parkedGone] : [])].sort());
    expect(result.vfConfigs).toEqual(stays(gone) ? [gone] : []);
    for (const address of met) {
      if (spec.awaited) {
        expect(result.departed.get(address)).toEqual(expectedRecord(address));
        expect(result.prunedBy.get(address)).toBe(spec.prunedBy);
      } else {
        expect(result.departed.has(address)).toBe(false);
      }
    }
    for (const address of left) expect(result.departed.has(address)).toBe(false);
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
    expect(result.active).toEqual([[held, 'vm1']]);
    expect(result.vfConfigs).toEqual([]);
    expect(result.departed.has(gone)).toBe(false);
  });
});
