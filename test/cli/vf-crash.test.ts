import { readlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StateStore } from '../../src/state/store.js';
import { jsonOf } from '../support/cli.js';
import { simHostCopies } from '../support/sim-host-per-test.js';

// A crash in the middle of `assign --vlan --mac`: the VF's config was saved (durably) and applied,
// then the process died (the simulated kernel SIGKILLs it at one of its sysfs writes). The next
// hostdev command's recovery rolls the device back AND puts the saved VF config back, reporting
// both the same way (a warning, and `recovery` in `status --json`).
const PF = '0000:01:00.0';
const VF = '0000:01:10.0';
const ASSIGN = ['assign', '--domain', 'vm1', VF, '--vlan', '77', '--mac', '52:54:00:00:00:77'];
const SAVED = { address: VF, pf: 'enp1s0f0', vfIndex: 0, mac: '00:00:00:00:00:00', vlan: 0, spoofchk: true, trust: false };
const freshHost = simHostCopies('hostdev-cli-vf-crash-', 'sriov-nic');

function crashAssign(cli: ReturnType<typeof freshHost>['cli'], fault: object): void {
  const crashed = cli(ASSIGN, { HOSTDEV_SIM_FAULTS: JSON.stringify([{ action: 'crash', ...fault }]) });
  expect(crashed.code, crashed.stderr).not.toBe(0);
}

function expectClean(stateDir: string): void {
  const store = StateStore.open(stateDir);
  try {
    expect(store.readVfConfigs()).toEqual([]);
    expect(store.readJournal()).toEqual([]);
    expect(store.readTables()).toEqual({ active: [], inactive: [] });
  } finally {
    store.close();
  }
}

describe('VF network config and a crash mid-assign', () => {
  it('is restored by the next command, and the saved row is gone', () => {
    const { stateDir, cli } = freshHost('first-write');
    crashAssign(cli, { afterWrites: 1 });
    const store = StateStore.open(stateDir);
    try {
      expect(store.readVfConfigs()).toEqual([{ ...SAVED, requested: { vlan: 77, mac: '52:54:00:00:00:77' } }]);
      expect(store.readTables().active).toEqual([]);
    } finally {
      store.close();
    }

    const status = cli(['status']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stderr).toContain(`restored the saved VF network config of ${VF}`);
    expect(status.stdout).toMatch(/Repaired at open \(2\)/);
    expect(status.stdout).toMatch(new RegExp(`${VF} +assign left unfinished, rolled-back +on igbvf, in no table`));
    expect(status.stdout).toMatch(new RegExp(`${VF} +VF network config +saved MAC/VLAN put back`));

    const next = cli(['--json', 'vf', 'list', PF]);
    expect(next.code, next.stderr).toBe(0);
    expect(jsonOf<{ vfs: Array<Record<string, unknown>> }>(next).vfs[0]).toMatchObject({
      address: VF,
      driver: 'igbvf',
      owner: null,
      mac: '00:00:00:00:00:00',
      vlan: 0,
    });
    expectClean(stateDir);
  });

  // Kill points: after the VF config was applied and before the first sysfs write, then after each
  // of the assign's 4 writes (driver_override, unbind, drivers_probe, reset).
  const KILL_POINTS = [{ afterWrites: 1, when: 'before' }, { afterWrites: 1 }, { afterWrites: 2 }, { afterWrites: 3 }, { afterWrites: 4 }];
  it.each(KILL_POINTS)('killed at %o: recovery on open rolls the VF back and restores its config, reported in status', (fault) => {
    const { stateDir, cli } = freshHost(`kill-${fault.afterWrites}-${fault.when ?? 'after'}`);
    crashAssign(cli, fault);
    const status = cli(['--json', 'status']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stderr).toContain(`warning: restored the saved VF network config of ${VF} (left by an interrupted operation)`);
    const json = jsonOf<{ recovery: { vfConfig: unknown[] } }>(status);
    expect(json.recovery.vfConfig).toEqual([{ key: `pci:${VF}`, address: VF, outcome: 'restored', reason: null }]);
    const list = jsonOf<{ vfs: Array<Record<string, unknown>> }>(cli(['--json', 'vf', 'list', PF]));
    expect(list.vfs[0]).toMatchObject({ address: VF, driver: 'igbvf', owner: null, mac: '00:00:00:00:00:00', vlan: 0 });
    expectClean(stateDir);
    // The assign works again afterwards, with the host's config saved (not the half-applied one).
    const again = cli(ASSIGN);
    expect(again.code, again.stderr).toBe(0);
    const store = StateStore.open(stateDir);
    try {
      expect(store.readVfConfigs()).toMatchObject([SAVED]);
    } finally {
      store.close();
    }
  });

  // Kill points inside the VF network config steps themselves: instead of the first `ip link set`
  // (the saved row is all there is), after the VLAN, after the MAC. No sysfs write was made yet.
  const NET_KILL_POINTS = [{ afterSets: 1, when: 'before' }, { afterSets: 1 }, { afterSets: 2 }];
  it.each(NET_KILL_POINTS)('killed during the VF network config at %o: recovery puts the host config back', (fault) => {
    const { stateDir, cli } = freshHost(`net-kill-${fault.afterSets}-${fault.when ?? 'after'}`);
    const crashed = cli(ASSIGN, { HOSTDEV_SIM_NET_FAULTS: JSON.stringify([{ action: 'crash', ...fault }]) });
    expect(crashed.code, crashed.stderr).not.toBe(0);
    const store = StateStore.open(stateDir);
    try {
      expect(store.readVfConfigs()).toEqual([{ ...SAVED, requested: { vlan: 77, mac: '52:54:00:00:00:77' } }]);
      expect(store.readJournal()).toEqual([]);
    } finally {
      store.close();
    }
    const status = cli(['--json', 'status']);
    expect(status.code, status.stderr).toBe(0);
    expect(jsonOf<{ recovery: { vfConfig: unknown[] } }>(status).recovery.vfConfig).toEqual([{ key: `pci:${VF}`, address: VF, outcome: 'restored', reason: null }]);
    const list = jsonOf<{ vfs: Array<Record<string, unknown>> }>(cli(['--json', 'vf', 'list', PF]));
    expect(list.vfs[0]).toMatchObject({ address: VF, driver: 'igbvf', owner: null, mac: '00:00:00:00:00:00', vlan: 0 });
    expectClean(stateDir);
  });

  // A release killed at each of its 4 writes (reset, driver_override, unbind, drivers_probe) is
  // rolled forward by the next command's recovery: the VF ends on igbvf with the host's config.
  it.each([1, 2, 3, 4])('release killed after write %i: rolled forward, VF config back, saved row gone', (afterWrites) => {
    const { stateDir, cli } = freshHost(`release-kill-${afterWrites}`);
    expect(cli(ASSIGN).code).toBe(0);
    const crashed = cli(['release', '--domain', 'vm1'], { HOSTDEV_SIM_FAULTS: JSON.stringify([{ action: 'crash', afterWrites }]) });
    expect(crashed.code).not.toBe(0);
    const status = cli(['--json', 'status']);
    expect(status.code, status.stderr).toBe(0);
    expect(jsonOf<{ recovery: { repaired: unknown[] } }>(status).recovery.repaired).toEqual([
      expect.objectContaining({ address: VF, operation: 'release', direction: 'rolled-forward', outcome: 'ok', driver: 'igbvf', table: null }),
    ]);
    const list = jsonOf<{ vfs: Array<Record<string, unknown>> }>(cli(['--json', 'vf', 'list', PF]));
    expect(list.vfs[0]).toMatchObject({ address: VF, driver: 'igbvf', owner: null, mac: '00:00:00:00:00:00', vlan: 0 });
    expectClean(stateDir);
  });
});

// `vf set-count` killed at each of its writes (before and after it), down and up, with and without
// --force. Whatever the kill point, the next command's recovery leaves no table entry naming a VF
// that is not on its recorded stub (a VF made anew at a pruned VF's address is another device), an
// empty journal, and qemu-args passes only devices on vfio-pci; the PF is rolled forward.

interface Case {
  readonly name: string;
  /** Commands run first (no fault). */
  readonly setup: string[][];
  readonly args: string[];
}

const CASES: Case[] = [
  { name: 'down-force-assigned', setup: [['assign', '--domain', 'vm1', VF]], args: ['vf', 'set-count', PF, '0', '--force'] },
  { name: 'change-force-assigned', setup: [['assign', '--domain', 'vm1', VF]], args: ['vf', 'set-count', PF, '3', '--force'] },
  { name: 'change-force-detached', setup: [['detach', VF]], args: ['vf', 'set-count', PF, '1', '--force'] },
  { name: 'down', setup: [], args: ['vf', 'set-count', PF, '0'] },
  { name: 'up', setup: [['vf', 'set-count', PF, '0']], args: ['vf', 'set-count', PF, '3', '--autoprobe', 'off'] },
  { name: 'change', setup: [], args: ['vf', 'set-count', PF, '3'] },
];
const KILLS = [
  { afterWrites: 1, when: 'before' },
  { afterWrites: 1, when: 'after' },
  { afterWrites: 2, when: 'before' },
  { afterWrites: 2, when: 'after' },
  { afterWrites: 3, when: 'before' },
];

const driverLink = (root: string, address: string): string | null => {
  try {
    return path.basename(readlinkSync(path.join(root, 'sys/bus/pci/devices', address, 'driver')));
  } catch {
    return null;
  }
};

let tried = 0;
let crashed = 0;

describe('vf set-count killed at each write point', () => {
  for (const c of CASES) {
    it.each(KILLS)(`${c.name}: killed %o, recovery leaves consistent tables`, (kill) => {
      const { root, stateDir, cli } = freshHost(`set-count-${c.name}-${kill.afterWrites}-${kill.when}`);
      for (const args of c.setup) expect(cli(args).code, args.join(' ')).toBe(0);
      const run = cli(c.args, { HOSTDEV_SIM_FAULTS: JSON.stringify([{ action: 'crash', ...kill }]) });
      tried++;
      if (run.code !== 0) crashed++;

      const status = cli(['--json', 'status']);
      expect(status.code, status.stderr).toBe(0);
      const json = jsonOf<{
        active: Array<{ address: string; stubDriver: string }>;
        inactive: Array<{ address: string; stubDriver: string }>;
        drift: unknown[];
        recovery: { repaired: Array<{ address: string; operation: string; direction: string }> } | null;
      }>(status);
      for (const entry of [...json.active, ...json.inactive]) {
        expect(driverLink(root, entry.address), `${entry.address} in the tables`).toBe(entry.stubDriver);
      }
      for (const repaired of json.recovery?.repaired ?? []) {
        if (repaired.operation === 'vf-set-count') expect(repaired.direction).toBe('rolled-forward');
      }
      const store = StateStore.open(stateDir);
      try {
        expect(store.readJournal()).toEqual([]);
      } finally {
        store.close();
      }
      const qemu = cli(['--json', 'qemu-args', '--domain', 'vm1']);
      if (qemu.code === 0) {
        for (const arg of jsonOf<string[]>(qemu)) {
          const host = /host=([0-9a-f:.]+)/.exec(arg)?.[1];
          if (host !== undefined) expect(driverLink(root, host), `qemu-args passes ${host}`).toBe('vfio-pci');
        }
      }
    });
  }
  afterAll(() => console.log(`vf set-count kill points: ${tried} tried, ${crashed} killed, all recovered consistent`));
});
