import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HostdevManager } from '../../src/manager/hostdev-manager.js';
import { pci, simManagerHost, type SimManagerHost } from '../support/sim-manager.js';

// libvirt's tests/virhostdevtest.c, ported: three devices at 0000:00:0{1,2,3}.0 of a host shaped like
// virpcimock's, driver "test_driver", domain "test_domain"; list counts checked after every step.
const devices = [pci('0000:00:01.0'), pci('0000:00:02.0'), pci('0000:00:03.0')];
const original = { '0000:00:01.0': 'iwlwifi', '0000:00:02.0': 'i915', '0000:00:03.0': null } as Record<string, string | null>;
const drv = 'test_driver';
const dom = 'test_domain';

let host: SimManagerHost;
let manager: HostdevManager;

beforeEach(async () => {
  host = simManagerHost('libvirt-test');
  manager = await manager_open();
});
afterEach(() => {
  manager.close();
  host.cleanup();
});

async function manager_open(): Promise<HostdevManager> {
  return host.open();
}

function counts(): { active: number; inactive: number } {
  const tables = manager.tables();
  return { active: tables.active.length, inactive: tables.inactive.length };
}

async function expectRefused(run: () => Promise<unknown>, code: string): Promise<void> {
  const before = counts();
  await expect(run()).rejects.toMatchObject({ code });
  expect(counts()).toEqual(before);
}

async function detachAll(): Promise<void> {
  for (const address of devices) {
    const before = counts();
    await manager.detach(address);
    expect(counts()).toEqual({ active: before.active, inactive: before.inactive + 1 });
    expect(host.driverOf(address)).toBe('vfio-pci');
  }
}

async function reattachAll(): Promise<void> {
  for (const address of devices) {
    const before = counts();
    await manager.reattach(address);
    expect(counts()).toEqual({ active: before.active, inactive: before.inactive - 1 });
    expect(host.driverOf(address)).toBe(original[address]);
  }
}

async function conflicts(): Promise<void> {
  // Same driver and domain again; same driver, other domain; other driver, same domain.
  await expectRefused(() => manager.assign({ hypervisor: drv, domain: dom, addresses: [devices[0]!] }), 'HOSTDEV_IN_USE');
  await expectRefused(() => manager.assign({ hypervisor: drv, domain: 'test_domain1', addresses: [devices[1]!] }), 'HOSTDEV_IN_USE');
  await expectRefused(() => manager.assign({ hypervisor: 'test_driver1', domain: dom, addresses: [devices[2]!] }), 'HOSTDEV_IN_USE');
}

describe("libvirt's virhostdevtest scenarios on the simulated libvirt test host", () => {
  it('round trip with no guest: 3 devices detached then reattached, drivers restored', async () => {
    await detachAll();
    await reattachAll();
    expect(counts()).toEqual({ active: 0, inactive: 0 });
  });

  it('unmanaged round trip: detach by hand, assign unmanaged, conflicts refused, release keeps them inactive, reattach', async () => {
    await detachAll();
    await manager.assign({ hypervisor: drv, domain: dom, addresses: devices, managed: false });
    expect(counts()).toEqual({ active: 3, inactive: 0 });
    await conflicts();
    await manager.release({ hypervisor: drv, domain: dom });
    expect(counts()).toEqual({ active: 0, inactive: 3 });
    for (const address of devices) expect(host.driverOf(address)).toBe('vfio-pci');
    await reattachAll();
  });

  it('managed round trip: assign detaches, release gives the devices back to their drivers', async () => {
    await manager.assign({ hypervisor: drv, domain: dom, addresses: devices });
    expect(counts()).toEqual({ active: 3, inactive: 0 });
    for (const address of devices) expect(host.driverOf(address)).toBe('vfio-pci');
    await conflicts();
    const report = await manager.release({ hypervisor: drv, domain: dom });
    expect(report.reattached).toEqual(devices);
    expect(counts()).toEqual({ active: 0, inactive: 0 });
    for (const address of devices) expect(host.driverOf(address)).toBe(original[address]);
  });

  it('mixed round trip: detached by hand then assigned managed, the stored entry wins and they stay unmanaged', async () => {
    await detachAll();
    await manager.assign({ hypervisor: drv, domain: dom, addresses: devices, managed: true });
    expect(counts()).toEqual({ active: 3, inactive: 0 });
    expect(manager.tables().active.every((entry) => !entry.managed)).toBe(true);
    await conflicts();
    await manager.release({ hypervisor: drv, domain: dom });
    expect(counts()).toEqual({ active: 0, inactive: 3 });
    await reattachAll();
  });

  it('node reset leaves both tables as they were and reports the method', async () => {
    for (const address of devices.slice(0, 2)) {
      const before = counts();
      const report = await manager.reset(address);
      expect(report.resets).toEqual([{ address, method: expect.any(String) }]);
      expect(counts()).toEqual(before);
    }
  });

  it('a device held by a domain cannot be detached, reattached or reset by hand', async () => {
    await manager.assign({ hypervisor: drv, domain: dom, addresses: [devices[0]!] });
    const message = `PCI device ${devices[0]} is in use by driver ${drv}, domain ${dom}`;
    await expect(manager.detach(devices[0]!)).rejects.toThrow(message);
    await expect(manager.reattach(devices[0]!)).rejects.toThrow(message);
    await expect(manager.reset(devices[0]!)).rejects.toThrow(message);
  });

  it("virpcitest's ReattachSingle: an unbound device is probed back to its host driver (i915)", async () => {
    const gpu = devices[1]!;
    await host.kernel.write(`/sys/bus/pci/devices/${gpu}/driver/unbind`, gpu);
    expect(host.driverOf(gpu)).toBeNull();
    const report = await manager.reattach(gpu);
    expect(report.steps).toEqual([`write /sys/bus/pci/drivers_probe "${gpu}"`, `check ${gpu} driver is a host driver`]);
    expect(host.driverOf(gpu)).toBe('i915');
    expect(counts()).toEqual({ active: 0, inactive: 0 });
  });

  it('a device detached from no driver is probed at reattach, so a driver it has by then binds', async () => {
    const unbound = devices[2]!; // 0000:00:03.0: no driver in the mock has its IDs
    await manager.detach(unbound);
    expect(manager.tables().inactive).toMatchObject([{ address: unbound, originalDriver: null }]);
    // A driver that takes its IDs arrives while it is detached.
    await host.kernel.write('/sys/bus/pci/drivers/i915/new_id', '8086 0048');
    const report = await manager.reattach(unbound);
    expect(report.steps).toContain(`write /sys/bus/pci/drivers_probe "${unbound}"`);
    expect(host.driverOf(unbound)).toBe('i915');
    expect(counts()).toEqual({ active: 0, inactive: 0 });
  });
});
