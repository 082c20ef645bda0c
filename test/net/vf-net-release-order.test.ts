import { afterEach, describe, expect, it } from 'vitest';
import { netPortFor } from '../../src/manager/vf-net-port.js';
import type { NetPort } from '../../src/net/net-port.js';
import type { SimNetPort } from '../../src/net/sim-net.js';
import { describeSetting } from '../../src/net/vf-net-config.js';
import type { KernelPort } from '../../src/sysfs/kernel-port.js';
import { SysfsLayout } from '../../src/sysfs/paths.js';
import { pci, simManagerHost, type SimManagerHost } from '../support/sim-manager.js';

// libvirt's order at release: the VF's saved admin MAC/VLAN go back to the PF BEFORE the VF is
// rebound to its host driver, so the VF driver starts with the host's MAC, not the domain's.
const VF = pci('0000:01:10.0');
let host: SimManagerHost | null = null;
afterEach(() => host?.cleanup());

describe('VF network config at release', () => {
  it('is restored before the VF leaves vfio-pci, and its saved row is dropped with the release', async () => {
    host = simManagerHost('sriov-nic');
    const log: string[] = [];
    const layout = new SysfsLayout(host.root);
    const inner = netPortFor(layout);
    const net: NetPort = {
      show: (ifname) => inner.show(ifname),
      setVf: async (ifname, vf, setting) => {
        log.push(`ip ${ifname} vf ${vf} ${describeSetting(setting)}`);
        await inner.setVf(ifname, vf, setting);
      },
    };
    const sim = host.kernel;
    const kernel: KernelPort = {
      write: async (hostPath, value) => {
        log.push(`write ${hostPath}`);
        await sim.write(hostPath, value);
      },
      loadModule: (name) => sim.loadModule(name),
    };
    const manager = await host.open({ kernel, net });
    try {
      const warn = (line: string): void => void log.push(`warning ${line}`);
      await manager.assign({
        domain: 'vm1',
        addresses: [VF],
        vf: new Map([[VF, { vlan: 42, mac: '52:54:00:00:00:42' }]]),
        onWarning: warn,
      });
      log.length = 0;
      await manager.release({ domain: 'vm1', onWarning: warn });
      const firstIp = log.findIndex((line) => line.startsWith('ip '));
      const unbind = log.findIndex((line) => line === 'write /sys/bus/pci/drivers/vfio-pci/unbind');
      expect(firstIp).toBeGreaterThanOrEqual(0);
      expect(unbind).toBeGreaterThan(firstIp);
      // once, in the order Intel NICs need (VLAN, trust, MAC, spoofchk)
      expect(log.filter((line) => line.startsWith('ip '))).toEqual([
        'ip enp1s0f0 vf 0 vlan 0',
        'ip enp1s0f0 vf 0 trust off',
        'ip enp1s0f0 vf 0 mac 00:00:00:00:00:00',
        'ip enp1s0f0 vf 0 spoofchk on',
      ]);
      expect(log.filter((line) => line.startsWith('warning'))).toEqual([]);
      expect(manager.store.readVfConfigs()).toEqual([]);
      expect(host.driverOf(VF)).toBe('igbvf');
      expect((await net.show('enp1s0f0')).vfs[0]).toMatchObject({ vlan: 0, mac: '00:00:00:00:00:00' });
    } finally {
      manager.close();
    }
  });

  it('with the PF down: kept and reported as pending, then restored by the recovery of the next open once the PF is up', async () => {
    host = simManagerHost('sriov-nic');
    const layout = new SysfsLayout(host.root);
    const net = netPortFor(layout) as SimNetPort;
    const warnings: string[] = [];
    const manager = await host.open();
    try {
      await manager.assign({ domain: 'vm1', addresses: [VF], vf: new Map([[VF, { vlan: 42 }]]), onWarning: (line) => warnings.push(line) });
      await net.setUp('enp1s0f0', false);
      const report = await manager.release({ domain: 'vm1', onWarning: (line) => warnings.push(line) });
      expect(report.reattached).toEqual([VF]);
      expect(warnings).toEqual([
        `VF network config of ${VF} not restored yet (kept for the next run): Unable to configure VF 0 of PF 'enp1s0f0' because the PF is not online. Please change host network config to put the PF online.`,
      ]);
      expect(manager.store.readVfConfigs()).toMatchObject([{ address: VF, vlan: 0 }]);
    } finally {
      manager.close();
    }

    const stillDown = await host.open();
    try {
      expect(stillDown.recovery.vfConfig).toEqual([{ key: `pci:${VF}`, address: VF, outcome: 'pending', reason: expect.stringContaining('the PF is not online') }]);
    } finally {
      stillDown.close();
    }
    await net.setUp('enp1s0f0', true);
    const next = await host.open();
    try {
      expect(next.recovery.vfConfig).toEqual([{ key: `pci:${VF}`, address: VF, outcome: 'restored', reason: null }]);
      expect(next.recovery.warnings).toContain(`restored the saved VF network config of ${VF} (left by an interrupted operation)`);
      expect(next.store.readVfConfigs()).toEqual([]);
      expect((await net.show('enp1s0f0')).vfs[0]).toMatchObject({ vlan: 0 });
    } finally {
      next.close();
    }
  });
});
