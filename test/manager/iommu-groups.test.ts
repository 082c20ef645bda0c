import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { simHostUsageFile } from '../../src/host/sim-host-usage.js';
import { pci, simManagerHost, type SimManagerHost } from '../support/sim-manager.js';

let host: SimManagerHost | undefined;
afterEach(() => host?.cleanup());

describe('IOMMU group viability at assign', () => {
  it('a GPU whose audio function is on snd_hda_intel is refused, naming the audio function, its driver and owner', async () => {
    host = simManagerHost('gpu');
    await host.withManager(async (manager) => {
      await expect(manager.assign({ domain: 'vm1', addresses: [pci('0000:01:00.0')] })).rejects.toMatchObject({
        code: 'HOSTDEV_GROUP_CONFLICT',
        message: expect.stringContaining('member 0000:01:00.1 of its IOMMU group'),
      });
      await expect(manager.assign({ domain: 'vm1', addresses: [pci('0000:01:00.0')] })).rejects.toThrow(
        'is in use by the host (driver snd_hda_intel)',
      );
      expect(manager.tables()).toEqual({ active: [], inactive: [] });
      expect(host!.driverOf('0000:01:00.0')).toBe('nouveau');
    });
  });

  it('--with-group takes the audio function along', async () => {
    host = simManagerHost('gpu');
    await host.withManager(async (manager) => {
      await manager.assign({ domain: 'vm1', addresses: [pci('0000:01:00.0')], withGroup: true });
      expect(host!.driverOf('0000:01:00.1')).toBe('vfio-pci');
      expect(manager.tables().active.map((entry) => entry.address)).toEqual(['0000:01:00.0', '0000:01:00.1']);
    });
  });

  it('two NICs behind a switch without ACS: the sibling blocks, named with its driver, then with the domain that owns it', async () => {
    host = simManagerHost('non-acs-switch');
    await host.withManager(async (manager) => {
      const a = pci('0000:03:00.0');
      const b = pci('0000:04:00.0');
      await expect(manager.assign({ domain: 'vm1', addresses: [a] })).rejects.toThrow(
        `member ${b} of its IOMMU group`,
      );
      await expect(manager.assign({ domain: 'vm1', addresses: [a] })).rejects.toThrow('in use by the host (driver igb)');
      await manager.detach(a);
      await manager.assign({ domain: 'vm2', addresses: [b] });
      await expect(manager.assign({ domain: 'vm1', addresses: [a] })).rejects.toThrow(
        `member ${b} of its IOMMU group`,
      );
      await expect(manager.assign({ domain: 'vm1', addresses: [a] })).rejects.toThrow('is in use by driver qemu, domain vm2');
    });
  });
});

describe('the host-in-use guard', () => {
  it('refuses to detach a NIC whose netdev has an address, unless --force', async () => {
    host = simManagerHost('workstation');
    mkdirSync(path.dirname(simHostUsageFile(host.root)), { recursive: true });
    writeFileSync(
      simHostUsageFile(host.root),
      JSON.stringify({ devices: { '0000:00:19.0': [{ kind: 'address', detail: 'eno1 has 192.0.2.10/24' }] } }),
    );
    await host.withManager(async (manager) => {
      await expect(manager.detach(pci('0000:00:19.0'))).rejects.toMatchObject({
        code: 'HOSTDEV_HOST_IN_USE',
        message: expect.stringContaining('eno1 has 192.0.2.10/24'),
      });
      await expect(manager.assign({ domain: 'vm1', addresses: [pci('0000:00:19.0')] })).rejects.toMatchObject({
        code: 'HOSTDEV_HOST_IN_USE',
      });
      await manager.detach(pci('0000:00:19.0'), { force: true });
      expect(host!.driverOf('0000:00:19.0')).toBe('vfio-pci');
    });
  });
});
