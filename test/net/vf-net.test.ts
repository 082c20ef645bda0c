import { afterEach, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { repairVfConfigs, restoreVfNet, saveAndApplyVfNet, VfNetConfigurator } from '../../src/manager/vf-net.js';
import { netPortFor } from '../../src/manager/vf-net-port.js';
import type { NetPort } from '../../src/net/net-port.js';
import { SimNetPort } from '../../src/net/sim-net.js';
import { describeSetting } from '../../src/net/vf-net-config.js';
import { SysfsLayout } from '../../src/sysfs/paths.js';
import type { StateStore } from '../../src/state/store.js';
import { miniHost, type MiniTree } from '../events/mini-tree.js';

let tree: MiniTree;
let store: StateStore;
let cleanup = (): void => undefined;
afterEach(() => cleanup());

function setup(): { configurator: VfNetConfigurator; net: NetPort; calls: string[]; vf: PciAddress } {
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
  return { configurator: new VfNetConfigurator(net, layout), net, calls, vf: tree.vf(1) as PciAddress };
}

const REQUEST = { mac: '52:54:00:00:00:42', vlan: 100, spoofchk: false, trust: true };

describe('VF network config across assign and release', () => {
  it('saves the VF config in the state database, then applies VLAN, trust, MAC, spoofchk in that order', async () => {
    const { configurator, net, calls, vf } = setup();
    await store.exclusive('assign', async (op) => {
      await saveAndApplyVfNet(op, configurator, vf, REQUEST);
      op.commit([]);
    });
    expect(calls).toEqual(['eth1 vf 1 vlan 100', 'eth1 vf 1 trust on', 'eth1 vf 1 mac 52:54:00:00:00:42', 'eth1 vf 1 spoofchk off']);
    expect(store.readVfConfigs()).toEqual([
      { address: vf, pf: 'eth1', vfIndex: 1, mac: '00:00:00:00:00:00', vlan: 0, spoofchk: true, trust: false, requested: REQUEST },
    ]);
    expect((await net.show('eth1')).vfs[1]).toMatchObject({ mac: '52:54:00:00:00:42', vlan: 100, spoofchk: false, trust: true });
  });

  it('restores the saved values at release and drops the saved row in the release commit', async () => {
    const { configurator, net, vf } = setup();
    await store.exclusive('assign', async (op) => {
      await saveAndApplyVfNet(op, configurator, vf, REQUEST);
    });
    await store.exclusive('release', async (op) => {
      op.commit(await restoreVfNet(op, configurator, vf, false));
    });
    expect((await net.show('eth1')).vfs[1]).toMatchObject({ mac: '00:00:00:00:00:00', vlan: 0, spoofchk: true, trust: false });
    expect(store.readVfConfigs()).toEqual([]);
  });

  it('after a crash mid-assign (saved, applied, never committed to the active table), repair restores the VF', async () => {
    const { configurator, net, vf } = setup();
    await store.exclusive('assign', async (op) => {
      await saveAndApplyVfNet(op, configurator, vf, REQUEST);
      // the process dies here: no set-active commit
    });
    const report = await store.exclusive('recover', (op) => repairVfConfigs(op, configurator, () => true));
    expect(report).toEqual({ restored: [vf], dropped: [], pending: [] });
    expect((await net.show('eth1')).vfs[1]).toMatchObject({ mac: '00:00:00:00:00:00', vlan: 0 });
    expect(store.readVfConfigs()).toEqual([]);
  });

  it('drops the saved config of a VF that vanished instead of leaking it', async () => {
    const { configurator, vf } = setup();
    await store.exclusive('assign', async (op) => {
      await saveAndApplyVfNet(op, configurator, vf, REQUEST);
    });
    tree.setNumVfs(0);
    expect(await store.exclusive('recover', (op) => repairVfConfigs(op, configurator, () => false))).toEqual({ restored: [], dropped: [vf], pending: [] });
    expect(store.readVfConfigs()).toEqual([]);
  });

  it("refuses a PF that is down with libvirt's wording, before saving or changing anything", async () => {
    const { configurator, calls, vf } = setup();
    await new SimNetPort(tree.root, async () => ({ numVfs: 2, generation: null })).setUp('eth1', false);
    await expect(
      store.exclusive('assign', (op) => saveAndApplyVfNet(op, configurator, vf, REQUEST)),
    ).rejects.toMatchObject({
      code: 'HOSTDEV_PF_DOWN',
      message: "Unable to configure VF 1 of PF 'eth1' because the PF is not online. Please change host network config to put the PF online.",
    });
    expect(calls).toEqual([]);
    expect(store.readVfConfigs()).toEqual([]);
  });

  it('refuses --mac on a device that is not a VF', async () => {
    const { configurator } = setup();
    expect(() => configurator.target('0000:03:00.0' as PciAddress)).toThrow(/is not an SR-IOV VF/);
  });
});

describe('a driver that refuses the all-zero MAC', () => {
  it('gets 02:00:00:00:00:00 at restore, as libvirt does; any other refusal still fails the restore', async () => {
    const { configurator, net, calls, vf } = setup();
    // As the ip command reports a netlink EINVAL from the PF driver.
    const refusing = (refuse: (mac: string) => boolean): NetPort => ({
      show: (ifname) => net.show(ifname),
      setVf: async (ifname, index, setting) => {
        if (setting.kind === 'mac' && refuse(setting.mac)) {
          calls.push(`${ifname} vf ${index} ${describeSetting(setting)} (refused)`);
          throw new Error(`cannot set mac ${setting.mac} on VF ${index} of PF ${ifname}: RTNETLINK answers: Invalid argument`);
        }
        await net.setVf(ifname, index, setting);
      },
    });
    await store.exclusive('assign', async (op) => {
      await saveAndApplyVfNet(op, configurator, vf, { mac: '52:54:00:00:00:42' });
      op.commit([]);
    });
    const saved = store.readVfConfigs()[0]!;
    calls.length = 0;
    const layout = new SysfsLayout(tree.root);
    await new VfNetConfigurator(refusing((mac) => mac === '00:00:00:00:00:00'), layout).restore(saved);
    expect(calls.filter((call) => call.includes(' mac '))).toEqual(['eth1 vf 1 mac 00:00:00:00:00:00 (refused)', 'eth1 vf 1 mac 02:00:00:00:00:00']);
    expect((await net.show('eth1')).vfs[1]?.mac).toBe('02:00:00:00:00:00');

    await expect(new VfNetConfigurator(refusing(() => true), layout).restore(saved)).rejects.toThrow(/Invalid argument/);
  });
});
