import { afterEach, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { HostdevError } from '../../src/core/errors.js';
import { vfNetAssignSteps, vfNetTargetOf } from '../../src/core/plan-vf-net.js';
import type { Plan, RestorePoint, Step } from '../../src/core/plan-types.js';
import type { VfNetTarget } from '../../src/core/vf-net-config.js';
import { executePlan, type ExecutorPorts } from '../../src/manager/executor.js';
import { HostReader } from '../../src/manager/host-reader.js';
import { vfNetLookup } from '../../src/manager/host-view.js';
import { recover } from '../../src/manager/recovery.js';
import { VfNetConfigurator } from '../../src/manager/vf-net.js';
import { netPortFor } from '../../src/manager/vf-net-port.js';
import type { NetPort } from '../../src/net/net-port.js';
import { SimNetPort } from '../../src/net/sim-net.js';
import { describeSetting } from '../../src/net/vf-net-config.js';
import type { KernelPort } from '../../src/sysfs/kernel-port.js';
import { SysfsLayout } from '../../src/sysfs/paths.js';
import type { StateStore } from '../../src/state/store.js';
import { miniHost, type MiniTree } from '../events/mini-tree.js';

// VF network config as plan steps, run by the one executor: save (a durable row), set, restore.
let tree: MiniTree;
let store: StateStore;
let cleanup = (): void => undefined;
afterEach(() => cleanup());

const NO_RESTORE: RestorePoint = { driver: null, driverOverride: null };
/** These steps write no sysfs file: a kernel port that fails the test if they do. */
const NO_KERNEL: KernelPort = {
  write: (hostPath) => Promise.reject(new Error(`unexpected sysfs write to ${hostPath}`)),
  loadModule: (name) => Promise.reject(new Error(`unexpected module load ${name}`)),
};

function setup(): { configurator: VfNetConfigurator; net: NetPort; calls: string[]; vf: PciAddress; ports: ExecutorPorts; reader: HostReader } {
  ({ tree, store, cleanup } = miniHost());
  tree.setNumVfs(2);
  const layout = new SysfsLayout(tree.root);
  const inner = netPortFor(layout);
  const calls: string[] = [];
  const net: NetPort = {
    show: (ifname) => inner.show(ifname),
    setVf: async (ifname, vf, setting) => {
      calls.push(`${ifname} vf ${vf} ${describeSetting(setting)}`);
      await inner.setVf(ifname, vf, setting);
    },
  };
  const configurator = new VfNetConfigurator(net);
  const reader = new HostReader(layout);
  return { configurator, net, calls, vf: tree.vf(1) as PciAddress, ports: { kernel: NO_KERNEL, reader, net: configurator }, reader };
}

async function targetOf(reader: HostReader, vf: PciAddress): Promise<VfNetTarget> {
  return vfNetTargetOf(vf, await vfNetLookup(reader, vf));
}

/** A release plan with nothing but the VF's restore group (what planVfNetRelease gives it). */
function restorePlan(vf: PciAddress, saved: Step & { kind: 'net-restore' }): Plan {
  return {
    operation: 'release',
    onFailure: 'continue',
    fallbacks: [],
    groups: [{ address: vf, phase: 'vf-net', restore: NO_RESTORE, steps: [saved] }],
    changes: [],
    pruned: [],
    resets: [],
    notes: [],
  };
}

/** An assign plan with nothing but the VF's network group (what planVfNetAssign gives it). */
function assignPlan(vf: PciAddress, steps: readonly Step[]): Plan {
  const groups = [{ address: vf, phase: 'vf-net' as const, restore: NO_RESTORE, steps }];
  return { operation: 'assign', onFailure: 'rollback', fallbacks: [], groups, changes: [], pruned: [], resets: [], notes: [] };
}

const REQUEST = { mac: '52:54:00:00:00:42', vlan: 100, spoofchk: false, trust: true };

describe('VF network config across assign and release', () => {
  it('saves the VF config in the state database, then applies VLAN, trust, MAC, spoofchk in that order', async () => {
    const { net, calls, vf, ports, reader } = setup();
    const target = await targetOf(reader, vf);
    await store.exclusive('assign', (op) => executePlan(assignPlan(vf, vfNetAssignSteps(target, REQUEST)), op, ports));
    expect(calls).toEqual(['eth1 vf 1 vlan 100', 'eth1 vf 1 trust on', 'eth1 vf 1 mac 52:54:00:00:00:42', 'eth1 vf 1 spoofchk off']);
    expect(store.readVfConfigs()).toEqual([
      { address: vf, pf: 'eth1', vfIndex: 1, mac: '00:00:00:00:00:00', vlan: 0, spoofchk: true, trust: false, requested: REQUEST },
    ]);
    expect((await net.show('eth1')).vfs[1]).toMatchObject({ mac: '52:54:00:00:00:42', vlan: 100, spoofchk: false, trust: true });
  });

  it('restores the saved values at release and drops the saved row in the release commit', async () => {
    const { net, vf, ports, reader } = setup();
    const target = await targetOf(reader, vf);
    await store.exclusive('assign', (op) => executePlan(assignPlan(vf, vfNetAssignSteps(target, REQUEST)), op, ports));
    const saved = store.readVfConfigs()[0]!;
    await store.exclusive('release', (op) => executePlan(restorePlan(vf, { kind: 'net-restore', address: vf, saved }), op, ports));
    expect((await net.show('eth1')).vfs[1]).toMatchObject({ mac: '00:00:00:00:00:00', vlan: 0, spoofchk: true, trust: false });
    expect(store.readVfConfigs()).toEqual([]);
  });

  it('after a crash mid-assign (saved, applied, never committed to the active table), recovery restores the VF', async () => {
    const { configurator, net, vf, ports, reader } = setup();
    const target = await targetOf(reader, vf);
    // The assign's VF group ran and committed only the cleared journal: its set-active never came (a killed assign).
    await store.exclusive('assign', (op) => executePlan(assignPlan(vf, vfNetAssignSteps(target, REQUEST)), op, ports));
    const report = await recover(store, NO_KERNEL, reader, configurator);
    expect(report.vfConfig).toEqual([{ key: `pci:${vf}`, address: vf, outcome: 'restored', reason: null }]);
    expect((await net.show('eth1')).vfs[1]).toMatchObject({ mac: '00:00:00:00:00:00', vlan: 0 });
    expect(store.readVfConfigs()).toEqual([]);
  });

  it('drops the saved config of a VF that vanished instead of leaking it', async () => {
    const { configurator, vf, ports, reader } = setup();
    const target = await targetOf(reader, vf);
    await store.exclusive('assign', (op) => executePlan(assignPlan(vf, vfNetAssignSteps(target, REQUEST)), op, ports));
    tree.setNumVfs(0);
    expect((await recover(store, NO_KERNEL, reader, configurator)).vfConfig).toEqual([{ key: `pci:${vf}`, address: vf, outcome: 'dropped', reason: null }]);
    expect(store.readVfConfigs()).toEqual([]);
  });

  it("refuses a PF that is down with libvirt's wording, before saving or changing anything", async () => {
    const { calls, vf, ports, reader } = setup();
    const target = await targetOf(reader, vf);
    await new SimNetPort(tree.root, async () => ({ numVfs: 2, generation: null })).setUp('eth1', false);
    await expect(
      store.exclusive('assign', (op) => executePlan(assignPlan(vf, vfNetAssignSteps(target, REQUEST)), op, ports)),
    ).rejects.toMatchObject({
      code: 'HOSTDEV_PF_DOWN',
      message: "Unable to configure VF 1 of PF 'eth1' because the PF is not online. Please change host network config to put the PF online.",
    });
    expect(calls).toEqual([]);
    expect(store.readVfConfigs()).toEqual([]);
  });

  it('refuses --mac on a device that is not a VF', async () => {
    const { reader } = setup();
    await expect(targetOf(reader, '0000:03:00.0' as PciAddress)).rejects.toMatchObject({
      code: 'HOSTDEV_NOT_SRIOV',
      message: expect.stringMatching(/is not an SR-IOV VF/),
    });
  });
});

describe('a driver that refuses the all-zero MAC', () => {
  it('gets 02:00:00:00:00:00 at restore, as libvirt does; any other refusal still fails the restore', async () => {
    const { net, calls, vf, ports, reader } = setup();
    // As the iproute2 port reports a netlink EINVAL from the PF driver: the errno in details, whatever the words.
    const refusing = (refuse: (mac: string) => boolean): NetPort => ({
      show: (ifname) => net.show(ifname),
      setVf: async (ifname, index, setting) => {
        if (setting.kind === 'mac' && refuse(setting.mac)) {
          calls.push(`${ifname} vf ${index} ${describeSetting(setting)} (refused)`);
          throw new HostdevError('HOSTDEV_NET_CONFIG', `cannot set mac ${setting.mac} on VF ${index} of PF ${ifname}: refused`, {
            hint: 'test',
            details: { ifname, vf: index, errno: 'EINVAL' },
          });
        }
        await net.setVf(ifname, index, setting);
      },
    });
    const target = await targetOf(reader, vf);
    await store.exclusive('assign', (op) => executePlan(assignPlan(vf, vfNetAssignSteps(target, { mac: '52:54:00:00:00:42' })), op, ports));
    const saved = store.readVfConfigs()[0]!;
    calls.length = 0;
    await new VfNetConfigurator(refusing((mac) => mac === '00:00:00:00:00:00')).restore(saved);
    expect(calls.filter((call) => call.includes(' mac '))).toEqual(['eth1 vf 1 mac 00:00:00:00:00:00 (refused)', 'eth1 vf 1 mac 02:00:00:00:00:00']);
    expect((await net.show('eth1')).vfs[1]?.mac).toBe('02:00:00:00:00:00');

    await expect(new VfNetConfigurator(refusing(() => true)).restore(saved)).rejects.toThrow(/refused/);
  });
});
