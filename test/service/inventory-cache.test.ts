import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { HostdevService } from '../../src/service/hostdev-service.js';
import { createSimulatedHost, simulatedHost } from '../../src/sim-entry.js';
import { runCli } from '../support/cli.js';

// cacheInventory (the daemon's service): reads answer from the last inventory until this service
// changes something, its watch() sees an event, or invalidateInventory() is called.
const VF = '0000:01:10.0' as PciAddress;
let base = '';
let root = '';
let stateDir = '';
let service: HostdevService;
const driverOf = async (): Promise<string | null> => (await service.show(VF)).report.driver;
/** Another process unbinds the VF: nothing in this service hears of it. */
const unbindElsewhere = (): void => {
  expect(runCli(['--root', root, 'sim', 'write', `/sys/bus/pci/drivers/igbvf/unbind`, VF]).code).toBe(0);
};

beforeEach(async () => {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-inventory-cache-'));
  root = path.join(base, 'host');
  stateDir = path.join(base, 'state');
  createSimulatedHost(root, { preset: 'sriov-nic' });
  service = await HostdevService.open({ ...simulatedHost(root), stateDir, cacheInventory: true });
});
afterEach(() => {
  service.close();
  rmSync(base, { recursive: true, force: true });
});

describe('the inventory cache', () => {
  it('answers from the last read until invalidateInventory()', async () => {
    expect(await driverOf()).toBe('igbvf');
    unbindElsewhere();
    expect(await driverOf()).toBe('igbvf');
    service.invalidateInventory();
    expect(await driverOf()).toBe(null);
  });

  it('is invalidated by an operation of the service, a dry run excepted', async () => {
    expect(await driverOf()).toBe('igbvf');
    await service.detach({ device: VF, dryRun: true });
    expect(await driverOf()).toBe('igbvf');
    await service.detach({ device: VF });
    expect(await driverOf()).toBe('vfio-pci');
  });

  it("is invalidated by the events of the service's watch()", async () => {
    expect(await driverOf()).toBe('igbvf');
    const stop = new AbortController();
    let started = (): void => undefined;
    const watching = new Promise<void>((resolve) => (started = resolve));
    const events: string[] = [];
    const loop = (async () => {
      for await (const event of service.watch({ signal: stop.signal, onStarted: started })) events.push(event.kind);
    })();
    await watching;
    unbindElsewhere();
    const deadline = Date.now() + 10_000;
    while (events.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(events).toContain('unbind');
    expect(await driverOf()).toBe(null);
    stop.abort();
    await loop;
  });

  it('gives back the same whole list while neither the read nor the tables changed, a new one with the owner after an assign', async () => {
    const first = await service.list();
    expect(await service.list()).toBe(first);
    expect(await service.list({ driver: 'igbvf' })).not.toBe(first);
    // Another process changes only the tables: a detached device goes to a domain unmanaged.
    expect(runCli(['--root', root, '--state-dir', stateDir, '--simulate', 'detach', VF]).code).toBe(0);
    service.invalidateInventory();
    const detached = await service.list();
    expect(detached.report.find((d) => d.address === VF)).toMatchObject({ driver: 'vfio-pci', table: 'inactive', owner: null });
    expect(runCli(['--root', root, '--state-dir', stateDir, '--simulate', 'assign', '--unmanaged', '--domain', 'vm1', VF]).code).toBe(0);
    const assigned = await service.list();
    expect(assigned).not.toBe(detached);
    expect(assigned.report.find((d) => d.address === VF)).toMatchObject({ table: 'active', owner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' } });
  });

  it('an operation reads again only the functions it touched (with their PF and group): the next list does not rescan sysfs', async () => {
    const plain = await HostdevService.open({ ...simulatedHost(root), stateDir });
    try {
      await service.list();
      expect(service.inventoryReads).toEqual({ whole: 1, functions: 0 });
      await service.assign({ domain: 'vm1', addresses: [VF] });
      await service.detach({ device: '0000:01:10.2' });
      const after = await service.list();
      await service.show(VF);
      await service.groups();
      // VF, its PF and its group (VF alone in group 4) for the assign, the same for the detach: 2 x 2.
      expect(service.inventoryReads).toEqual({ whole: 1, functions: 4 });
      // What a full read of sysfs (a service without the cache) answers.
      expect(after.report).toEqual((await plain.list()).report);
      expect(after.report.find((d) => d.address === VF)).toMatchObject({ driver: 'vfio-pci', vendorName: 'Intel Corporation', table: 'active' });
      expect(plain.inventoryReads).toEqual({ whole: 1, functions: 0 });
    } finally {
      plain.close();
    }
  });

  it('a failed operation and a VF count change make the next read a whole one', async () => {
    await service.list();
    await expect(service.detach({ device: '0000:09:00.0' })).rejects.toThrow(expect.objectContaining({ code: 'HOSTDEV_DEVICE_NOT_FOUND' }));
    await service.list();
    expect(service.inventoryReads.whole).toBe(2);
    await service.vf.setCount({ pf: '0000:01:00.0', count: 4 });
    const listed = await service.list();
    expect(service.inventoryReads.whole).toBe(3);
    expect(listed.report.filter((d) => d.physfn === '0000:01:00.0')).toHaveLength(4);
  });

  it('is off by default: every read sees sysfs as it is', async () => {
    const plain = await HostdevService.open({ ...simulatedHost(root), stateDir });
    try {
      expect((await plain.show(VF)).report.driver).toBe('igbvf');
      unbindElsewhere();
      expect((await plain.show(VF)).report.driver).toBe(null);
    } finally {
      plain.close();
    }
  });
});
