import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HostdevManager } from '../../src/manager/hostdev-manager.js';
import { pci, simManagerHost, type SimManagerHost } from '../support/sim-manager.js';

// libvirt's prepare accepts an unmanaged device that is on a known stub driver but in no list (its
// daemon lost the inactive list in a restart, or the admin used driverctl): it is recorded as
// inactive and assigned. hostdev does the same, and remembers that the stub was the device's driver
// before hostdev saw it, so a later reattach leaves it there (libvirt's unbind_from_stub = false).
const VF = pci('0000:01:10.0');
let host: SimManagerHost;
let manager: HostdevManager;

beforeEach(async () => {
  host = simManagerHost('sriov-nic');
  manager = await host.open();
});
afterEach(() => {
  manager.close();
  host.cleanup();
});

describe('libvirt parity: an unmanaged device already on a stub but in no table', () => {
  it('is assigned as it is, stays inactive on the stub at release, and reattach leaves it on the stub', async () => {
    await host.kernel.write(`/sys/bus/pci/devices/${VF}/driver_override`, 'vfio-pci');
    await host.kernel.write('/sys/bus/pci/drivers/igbvf/unbind', VF);
    await host.kernel.write('/sys/bus/pci/drivers_probe', VF);
    expect(host.driverOf(VF)).toBe('vfio-pci');

    const assign = await manager.assign({ domain: 'vm1', addresses: [VF], managed: false });
    expect(assign.steps.filter((step) => step.startsWith('write') && !step.includes('/reset'))).toEqual([]);
    expect(manager.tables().active).toEqual([
      { key: `pci:${VF}`, address: VF, usedBy: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' }, managed: false, stubDriver: 'vfio-pci', originalDriver: 'vfio-pci', bootId: expect.any(String), hardware: expect.objectContaining({ vendor: '8086', device: '10ca' }) },
    ]);

    const release = await manager.release({ domain: 'vm1' });
    expect(release.inactive).toEqual([VF]);
    expect(host.driverOf(VF)).toBe('vfio-pci');

    await manager.reattach(VF);
    expect(host.driverOf(VF)).toBe('vfio-pci');
    expect(manager.tables()).toEqual({ active: [], inactive: [] });
  });
});
