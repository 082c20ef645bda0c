import { afterEach, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { listVfs, setVfCount, type SetCountRequest } from '../../src/manager/vf-lifecycle.js';
import { SysfsLayout } from '../../src/sysfs/paths.js';
import type { StateStore } from '../../src/state/store.js';
import { KernelWriteError } from '../../src/sysfs/kernel-port.js';
import { miniHost, miniKernel, type MiniTree } from '../events/mini-tree.js';
import { pciKey } from '../../src/core/device-key.js';
import { makeOwner } from '../../src/core/tables.js';

// The library side of `hostdev vf set-count` on a hand-made tree whose kernel port enforces
// Linux's sriov_numvfs rules (N -> M with both non-zero is EINVAL; above totalvfs is ERANGE).
let tree: MiniTree;
let store: StateStore;
let cleanup = (): void => undefined;
afterEach(() => cleanup());

function setup(numVfs: number) {
  ({ tree, store, cleanup } = miniHost());
  const kernel = miniKernel(tree);
  void kernel.write(`/sys/bus/pci/devices/${tree.pf}/sriov_numvfs`, String(numVfs));
  kernel.writes.length = 0;
  const layout = new SysfsLayout(tree.root);
  const run = (extra: Partial<SetCountRequest>) =>
    setVfCount({ layout, store, kernel }, { pf: tree.pf as PciAddress, count: 2, force: false, dryRun: false, autoprobe: null, waitMs: 2_000, ...extra });
  return { kernel, layout, run };
}

async function assignVf(address: string, domain: string): Promise<void> {
  await store.exclusive('assign', async (op) => {
    op.commit([
      { kind: 'set-active', entry: { key: pciKey(address as PciAddress), address: address as PciAddress, usedBy: makeOwner('qemu', domain), managed: true, stubDriver: 'vfio-pci', originalDriver: 'igbvf' } },
      { kind: 'save-vf-config', config: { address: address as PciAddress, pf: 'eth1', vfIndex: 0, mac: null, vlan: null, spoofchk: null, trust: null } },
    ]);
  });
}

describe('hostdev vf set-count (library)', () => {
  it('goes 4 -> 0 -> 2 and waits for the new VFs and their driver', async () => {
    const { kernel, run, layout } = setup(4);
    const report = await run({});
    expect(kernel.writes).toEqual([`/sys/bus/pci/devices/${tree.pf}/sriov_numvfs=0`, `/sys/bus/pci/devices/${tree.pf}/sriov_numvfs=2`]);
    expect(report.vfs).toEqual([
      { address: '0000:03:10.0', driver: 'igbvf' },
      { address: '0000:03:10.1', driver: 'igbvf' },
    ]);
    expect((await listVfs(layout, store.readTables(), null, tree.pf as PciAddress)).vfs.map((vf) => vf.index)).toEqual([0, 1]);
    expect(store.readJournal()).toEqual([]);
  });

  it('refuses while a VF is assigned, naming it and its domain, and changes nothing', async () => {
    const { kernel, run } = setup(4);
    await assignVf(tree.vf(0), 'vm1');
    await expect(run({})).rejects.toMatchObject({
      code: 'HOSTDEV_VF_BUSY',
      message: expect.stringContaining('VF 0 0000:03:10.0 is in use by driver qemu, domain vm1'),
    });
    expect(kernel.writes).toEqual([]);
    expect(store.readTables().active).toHaveLength(1);
  });

  it('with --force prunes the assigned VF from the tables and its saved config, reporting the owner', async () => {
    const { run } = setup(4);
    await assignVf(tree.vf(0), 'vm1');
    const report = await run({ force: true });
    expect(report.pruned).toEqual([{ address: '0000:03:10.0', vfIndex: 0, table: 'active', owner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' } }]);
    expect(store.readTables()).toEqual({ active: [], inactive: [] });
    expect(store.readVfConfigs()).toEqual([]);
  });

  it('refuses more than sriov_totalvfs with HOSTDEV_VF_RANGE before writing', async () => {
    const { kernel, run } = setup(0);
    await expect(run({ count: 8 })).rejects.toMatchObject({ code: 'HOSTDEV_VF_RANGE' });
    expect(kernel.writes).toEqual([]);
  });

  it('--dry-run lists the writes and the prunes and changes nothing', async () => {
    const { kernel, run } = setup(4);
    await assignVf(tree.vf(1), 'vm1');
    const report = await run({ force: true, dryRun: true, autoprobe: false });
    expect(report.steps).toEqual([
      `write 0 > /sys/bus/pci/devices/${tree.pf}/sriov_drivers_autoprobe`,
      `write 0 > /sys/bus/pci/devices/${tree.pf}/sriov_numvfs`,
      `write 2 > /sys/bus/pci/devices/${tree.pf}/sriov_numvfs`,
    ]);
    expect(report.pruned.map((vf) => vf.address)).toEqual(['0000:03:10.1']);
    expect(kernel.writes).toEqual([]);
    expect(store.readTables().active).toHaveLength(1);
  });

  it('times out with HOSTDEV_TIMEOUT when the VFs never bind, saying how far it got', async () => {
    const { run } = setup(0);
    const original = tree.setNumVfs.bind(tree);
    tree.setNumVfs = (count: number) => {
      original(count);
      for (let i = 0; i < count; i++) tree.setDriver(tree.vf(i), null);
    };
    const progress: string[] = [];
    await expect(run({ waitMs: 200, onProgress: (line) => progress.push(line) })).rejects.toMatchObject({
      code: 'HOSTDEV_TIMEOUT',
      message: expect.stringContaining('2/2 present, 0/2 bound'),
    });
    expect(progress[0]).toBe(`waiting for the VFs of ${tree.pf}: 2/2 present, 0/2 bound`);
  });
});

describe('hostdev vf set-count --force when the kernel refuses', () => {
  it('keeps the VF in the tables when sriov_numvfs 0 failed (nothing left the host)', async () => {
    const { kernel, run } = setup(4);
    await assignVf(tree.vf(0), 'vm1');
    const write = kernel.write.bind(kernel);
    kernel.write = async (hostPath: string, value: string) => {
      if (hostPath.endsWith('sriov_numvfs')) throw new KernelWriteError(hostPath, value, 'EBUSY');
      return write(hostPath, value);
    };
    await expect(run({ force: true })).rejects.toMatchObject({ code: 'HOSTDEV_KERNEL_WRITE' });
    expect(store.readTables().active.map((entry) => entry.address)).toEqual([tree.vf(0)]);
    expect(store.readJournal()).toEqual([]);
  });
});
