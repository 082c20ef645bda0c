import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pci, RecordingKernel, simManagerHost, treeSnapshot, type SimManagerHost } from '../support/sim-manager.js';

const devices = [pci('0000:00:01.0'), pci('0000:00:02.0'), pci('0000:00:03.0')];
let host: SimManagerHost | undefined;
afterEach(() => host?.cleanup());

describe('failures the kernel reports, and the ones it does not', () => {
  it('release: a failure on one device never stops the others; the failed one stays inactive and is named', async () => {
    host = simManagerHost('libvirt-test');
    const current = host;
    const kernel = new RecordingKernel(current.kernel);
    await current.withManager(async (manager) => {
      await manager.assign({ domain: 'vm1', addresses: devices });
      kernel.failOn = (hostPath, value) => hostPath === '/sys/bus/pci/drivers_probe' && value === devices[0];
      const report = await manager.release({ domain: 'vm1' });
      expect(report.failures).toEqual([
        { key: `pci:${devices[0]}`, address: devices[0], phase: 'reattach', code: 'HOSTDEV_KERNEL_WRITE', message: expect.stringContaining('drivers_probe') },
      ]);
      expect(report.reattached).toEqual([devices[1], devices[2]]);
      expect(report.inactive).toEqual([devices[0]]);
      expect(current.driverOf(devices[0]!)).toBe('vfio-pci');
      expect(current.driverOf(devices[1]!)).toBe('i915');
      expect(manager.tables()).toEqual({
        active: [],
        inactive: [
          { key: `pci:${devices[0]}`, address: devices[0], managed: true, stubDriver: 'vfio-pci', originalDriver: 'iwlwifi', bootId: expect.any(String), hardware: expect.any(Object) },
        ],
      });
      kernel.failOn = null;
      await manager.reattach(devices[0]!);
      expect(current.driverOf(devices[0]!)).toBe('iwlwifi');
      expect(manager.tables()).toEqual({ active: [], inactive: [] });
    }, { kernel });
  });

  it('detach: a drivers_probe that binds nothing is caught by reading the driver link back, and undone', async () => {
    host = simManagerHost('libvirt-test');
    const current = host;
    const kernel = new RecordingKernel(current.kernel);
    kernel.swallow = (hostPath) => hostPath === '/sys/bus/pci/drivers_probe';
    const before = treeSnapshot(current.root);
    await current.withManager(async (manager) => {
      await expect(manager.detach(devices[0]!)).rejects.toMatchObject({
        code: 'HOSTDEV_BIND_FAILED',
        message: 'PCI device 0000:00:01.0 did not bind to vfio-pci: its driver is none after drivers_probe',
      });
      expect(current.driverOf(devices[0]!)).toBe('iwlwifi');
      expect(treeSnapshot(current.root)).toEqual(before);
      expect(manager.tables()).toEqual({ active: [], inactive: [] });
    }, { kernel });
  });

  it('detach loads the stub driver through the kernel port when its driver directory is missing, and never writes new_id', async () => {
    host = simManagerHost('workstation');
    const current = host;
    const kernel = new RecordingKernel(current.kernel);
    expect(existsSync(path.join(current.root, 'sys/bus/pci/drivers/vfio-pci'))).toBe(false);
    await current.withManager(async (manager) => {
      await manager.detach(pci('0000:03:00.0'));
      expect(kernel.modules).toEqual(['vfio-pci']);
      expect(current.driverOf('0000:03:00.0')).toBe('vfio-pci');
      await manager.reattach(pci('0000:03:00.0'));
      expect(current.driverOf('0000:03:00.0')).toBe('nvme');
      expect(kernel.writes.filter((write) => /new_id|remove_id/.test(write.hostPath))).toEqual([]);
    }, { kernel });
  });
});
