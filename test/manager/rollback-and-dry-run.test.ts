import { readlinkSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AssignRequest } from '../../src/manager/hostdev-manager.js';
import { pci, RecordingKernel, simManagerHost, treeSnapshot, type SimManagerHost } from '../support/sim-manager.js';

const GPU = pci('0000:01:00.0');
const PF = pci('0000:02:00.0');

let host: SimManagerHost;
beforeEach(async () => {
  host = simManagerHost('workstation');
  // Loading a module is not undone by a rollback (as on Linux): start with vfio-pci loaded.
  await host.kernel.loadModule('vfio-pci');
});
afterEach(() => host.cleanup());

function request(): AssignRequest {
  const vfs = [0, 1].map((n) => pci(path.basename(readlinkSync(path.join(host.root, 'sys/bus/pci/devices', PF, `virtfn${n}`)))));
  return { domain: 'vm1', addresses: [...vfs, GPU], withGroup: true };
}

describe('assign is all or nothing', () => {
  it('a failure injected at every write, one run per write, leaves host tree, tables and journal exactly as before', async () => {
    const kernel = new RecordingKernel(host.kernel);
    const manager = await host.open({ kernel });
    try {
      const writes = (await manager.planAssign(request())).groups.flatMap((group) => group.steps).filter((step) => step.kind === 'write');
      expect(writes.length).toBeGreaterThan(10);
      const before = treeSnapshot(host.root);
      for (let failAt = 1; failAt <= writes.length; failAt++) {
        kernel.writes.length = 0;
        kernel.failAt = failAt;
        await expect(manager.assign(request()), `failure at write ${failAt}`).rejects.toMatchObject({ code: 'HOSTDEV_KERNEL_WRITE' });
        expect(treeSnapshot(host.root), `host after a failure at write ${failAt}`).toEqual(before);
        expect(manager.tables(), `tables after a failure at write ${failAt}`).toEqual({ active: [], inactive: [] });
        expect(manager.store.readJournal()).toEqual([]);
      }
      kernel.failAt = null;
      await manager.assign(request());
      expect(manager.tables().active).toHaveLength(4);
    } finally {
      manager.close();
    }
  });

  it('a device that does not bind to the stub fails the assign naming it and its driver, and everything is undone', async () => {
    const manager = await host.open();
    try {
      // A host with an IOMMU group missing for one device is hard to build; a stub the device refuses does the same.
      const before = treeSnapshot(host.root);
      await expect(manager.assign({ ...request(), stubDriver: 'pci-stub' })).rejects.toMatchObject({
        code: expect.stringMatching(/HOSTDEV_BIND_FAILED|HOSTDEV_DRIVER_UNAVAILABLE/),
      });
      expect(treeSnapshot(host.root)).toEqual(before);
      expect(manager.tables()).toEqual({ active: [], inactive: [] });
    } finally {
      manager.close();
    }
  });
});

describe('--dry-run', () => {
  it('changes nothing, and its ordered writes are exactly the writes a real run makes', async () => {
    const kernel = new RecordingKernel(host.kernel);
    const manager = await host.open({ kernel });
    try {
      const before = treeSnapshot(host.root);
      const dry = await manager.assign({ ...request(), dryRun: true });
      expect(dry.dryRun).toBe(true);
      expect(treeSnapshot(host.root)).toEqual(before);
      expect(manager.tables()).toEqual({ active: [], inactive: [] });
      expect(kernel.writes).toEqual([]);

      await manager.assign(request());
      const planned = dry.plan.groups.flatMap((group) => group.steps).filter((step) => step.kind === 'write');
      expect(kernel.writes).toEqual(planned.map((step) => ({ hostPath: step.hostPath, value: step.value })));

      kernel.writes.length = 0;
      const dryRelease = await manager.release({ domain: 'vm1', dryRun: true });
      expect(kernel.writes).toEqual([]);
      await manager.release({ domain: 'vm1' });
      const plannedRelease = dryRelease.plan.groups.flatMap((group) => group.steps).filter((step) => step.kind === 'write');
      expect(kernel.writes).toEqual(plannedRelease.map((step) => ({ hostPath: step.hostPath, value: step.value })));
      expect(treeSnapshot(host.root)).toEqual(before);
    } finally {
      manager.close();
    }
  });
});
