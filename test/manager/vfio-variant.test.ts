import { existsSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HostdevManager } from '../../src/manager/hostdev-manager.js';
import { readVfioAliases } from '../../src/host/modules-alias.js';
import { hostdevRejectionOf } from '../support/errors.js';
import { pci, simManagerHost, type SimManagerHost } from '../support/sim-manager.js';

// libvirt >= 10.0: a managed device with no driver named goes to the vfio-pci variant driver that
// modules.alias names for it (fewest wildcards), else to vfio-pci. The mlx5-vfio preset has a
// ConnectX-6 Dx whose VFs have mlx5_vfio_pci (known, not loaded) and an igb port whose VFs have none.
const MLX5_VF = pci('0000:01:00.1');
const MLX5_VF2 = pci('0000:01:00.2');
const IGB_VF = pci('0000:02:10.0');
let host: SimManagerHost;
let manager: HostdevManager;

beforeEach(async () => {
  host = simManagerHost('mlx5-vfio');
  manager = await host.open();
});
afterEach(() => {
  manager.close();
  host.cleanup();
});

const stubsOf = (m: HostdevManager) => Object.fromEntries(m.tables().active.map((e) => [e.address, e.stubDriver]));

describe('vfio-pci variant drivers from modules.alias', () => {
  it('the simulated host has a modules.alias with the variant and the catch-all', () => {
    const table = readVfioAliases(host.root);
    expect(table?.file).toBe(path.join(host.root, 'lib/modules/6.1.0-hostdev-sim/modules.alias'));
    expect(table?.aliases.map((a) => a.module)).toEqual(['mlx5_vfio_pci', 'vfio_pci']);
  });

  it('assign without --driver: the mlx5 VF goes to mlx5_vfio_pci (loaded for it), the igb VF to vfio-pci, each said', async () => {
    const plan = await manager.planAssign({ domain: 'vm1', addresses: [MLX5_VF, IGB_VF] });
    expect(plan.notes).toContain(
      `${MLX5_VF} goes to mlx5_vfio_pci, the vfio-pci variant driver modules.alias names for it (--driver vfio-pci to override)`,
    );
    expect(plan.groups[0]!.steps[0]).toEqual({ kind: 'load-module', module: 'mlx5_vfio_pci', driver: 'mlx5_vfio_pci' });

    await manager.assign({ domain: 'vm1', addresses: [MLX5_VF, IGB_VF] });
    expect(host.driverOf(MLX5_VF)).toBe('mlx5_vfio_pci');
    expect(host.driverOf(IGB_VF)).toBe('vfio-pci');
    expect(stubsOf(manager)).toEqual({ [MLX5_VF]: 'mlx5_vfio_pci', [IGB_VF]: 'vfio-pci' });
    // A variant is a VFIO driver: the group's /dev/vfio node is there for QEMU.
    const group = path.basename(readlinkSync(path.join(host.root, 'sys/bus/pci/devices', MLX5_VF, 'iommu_group')));
    expect(existsSync(path.join(host.root, 'dev/vfio', group))).toBe(true);

    await manager.release({ domain: 'vm1' });
    expect(host.driverOf(MLX5_VF)).toBe('mlx5_core');
    expect(host.driverOf(IGB_VF)).toBe('igbvf');
    expect(manager.tables()).toEqual({ active: [], inactive: [] });
  });

  it('--driver vfio-pci is kept as asked, with no note', async () => {
    const plan = await manager.planAssign({ domain: 'vm1', addresses: [MLX5_VF], stubDriver: 'vfio-pci' });
    expect(plan.notes.filter((note) => note.includes('variant'))).toEqual([]);
    await manager.assign({ domain: 'vm1', addresses: [MLX5_VF], stubDriver: 'vfio-pci' });
    expect(host.driverOf(MLX5_VF)).toBe('vfio-pci');
    expect(stubsOf(manager)).toEqual({ [MLX5_VF]: 'vfio-pci' });
  });

  it('detach without --driver parks on the variant; a later assign keeps the inactive entry\'s stub', async () => {
    await manager.detach(MLX5_VF2);
    expect(host.driverOf(MLX5_VF2)).toBe('mlx5_vfio_pci');
    expect(manager.tables().inactive).toMatchObject([{ address: MLX5_VF2, stubDriver: 'mlx5_vfio_pci', originalDriver: 'mlx5_core' }]);
    await manager.assign({ domain: 'vm2', addresses: [MLX5_VF2], managed: false });
    expect(stubsOf(manager)).toEqual({ [MLX5_VF2]: 'mlx5_vfio_pci' });
    await manager.release({ domain: 'vm2' });
    await manager.reattach(MLX5_VF2);
    expect(host.driverOf(MLX5_VF2)).toBe('mlx5_core');
  });

  it('without modules.alias (no modules for this kernel) every device goes to vfio-pci', async () => {
    rmSync(path.join(host.root, 'lib/modules'), { recursive: true });
    await manager.assign({ domain: 'vm1', addresses: [MLX5_VF] });
    expect(host.driverOf(MLX5_VF)).toBe('vfio-pci');
  });

  it('a release that does not say which kernel it is has no modules.alias', () => {
    writeFileSync(path.join(host.root, 'proc/sys/kernel/osrelease'), '../../etc\n');
    expect(readVfioAliases(host.root)).toBeNull();
  });
});

describe('stub driver spellings', () => {
  it('--driver vfio_pci (the module name) means the vfio-pci driver, as libvirt takes either', async () => {
    await manager.assign({ domain: 'vm1', addresses: [IGB_VF], stubDriver: 'vfio_pci' });
    expect(host.driverOf(IGB_VF)).toBe('vfio-pci');
    expect(host.read(`/sys/bus/pci/devices/${IGB_VF}/driver_override`)).toBe('vfio-pci');
    expect(stubsOf(manager)).toEqual({ [IGB_VF]: 'vfio-pci' });
  });

  it('--driver takes only a stub: a host driver is refused (exit 2) naming the accepted ones, and nothing changes', async () => {
    for (const driver of ['igbvf', 'e1000e']) {
      const refused = await hostdevRejectionOf(manager.detach(MLX5_VF2, { stubDriver: driver }));
      expect(refused).toMatchObject({ code: 'HOSTDEV_USAGE', exitCode: 2 });
      expect(refused.message).toBe(
        `--driver ${driver} is not a stub driver: a device can be parked only on vfio-pci, a vfio-pci variant driver ` +
          "(*_vfio_pci), pci-stub or xen-pciback (this host's modules.alias names mlx5_vfio_pci)",
      );
    }
    await expect(manager.assign({ domain: 'vm1', addresses: [MLX5_VF2], stubDriver: 'igbvf' })).rejects.toMatchObject({ code: 'HOSTDEV_USAGE' });
    expect(manager.tables()).toEqual({ active: [], inactive: [] });
    expect(host.driverOf(MLX5_VF2)).toBe('mlx5_core');

    const detached = await manager.detach(MLX5_VF2, { stubDriver: 'mlx5_vfio_pci', dryRun: true });
    expect(detached.changes).toMatchObject([{ kind: 'set-inactive', entry: { stubDriver: 'mlx5_vfio_pci' } }]);
    const xen = await manager.detach(IGB_VF, { stubDriver: 'xen-pciback', dryRun: true });
    expect(xen.changes).toMatchObject([{ kind: 'set-inactive', entry: { stubDriver: 'pciback' } }]);
  });
});
