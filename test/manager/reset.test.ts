import { afterEach, describe, expect, it } from 'vitest';
import { pci, RecordingKernel, simManagerHost, type SimManagerHost } from '../support/sim-manager.js';

let host: SimManagerHost | undefined;
afterEach(() => host?.cleanup());

describe('reset', () => {
  it('writes the reset file once and reports the method the kernel uses first', async () => {
    host = simManagerHost('nvme');
    const kernel = new RecordingKernel(host.kernel);
    await host.withManager(async (manager) => {
      const report = await manager.reset(pci('0000:01:00.0'));
      expect(report.resets).toEqual([{ address: '0000:01:00.0', method: 'flr' }]);
      expect(kernel.writes).toEqual([{ hostPath: '/sys/bus/pci/devices/0000:01:00.0/reset', value: '1' }]);
      expect(manager.tables()).toEqual({ active: [], inactive: [] });
    }, { kernel });
  });

  it('refuses a bus reset of the GPU while its audio function is on its host driver, naming it; allowed once detached', async () => {
    host = simManagerHost('gpu');
    const kernel = new RecordingKernel(host.kernel);
    await host.withManager(async (manager) => {
      await expect(manager.reset(pci('0000:01:00.0'))).rejects.toMatchObject({
        code: 'HOSTDEV_RESET_UNSAFE',
        message: 'A bus reset of PCI device 0000:01:00.0 would also reset 0000:01:00.1, which is in use by the host (driver snd_hda_intel)',
      });
      expect(kernel.writes).toEqual([]);
      await manager.detach(pci('0000:01:00.1'));
      const report = await manager.reset(pci('0000:01:00.0'));
      expect(report.resets).toEqual([{ address: '0000:01:00.0', method: 'bus' }]);
    }, { kernel });
  });

  it('refuses a device without reset method', async () => {
    host = simManagerHost('workstation');
    await host.withManager(async (manager) => {
      await expect(manager.reset(pci('0000:00:1f.2'))).rejects.toMatchObject({ code: 'HOSTDEV_RESET_UNSUPPORTED' });
    });
  });
});
