import { readlinkSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import type { HostdevManager } from '../../src/manager/hostdev-manager.js';
import { pci, simManagerHost, type SimManagerHost } from '../support/sim-manager.js';

// The founding fix (libvirt commit "virhostdev.c: remove missing PCI devs from hostdev manager"):
// a device that vanished from the host while a domain held it is pruned from both tables on release.
const PF = pci('0000:02:00.0');
const GPU = pci('0000:01:00.0');
const AUDIO = pci('0000:01:00.1');
const numvfs = `/sys/bus/pci/devices/${PF}/sriov_numvfs`;

let host: SimManagerHost;
let manager: HostdevManager;
let vfs: PciAddress[];

function virtfns(): PciAddress[] {
  return [0, 1].map((n) => pci(path.basename(readlinkSync(path.join(host.root, 'sys/bus/pci/devices', PF, `virtfn${n}`)))));
}

beforeEach(async () => {
  host = simManagerHost('workstation');
  manager = await host.open();
  vfs = virtfns();
});
afterEach(() => {
  manager.close();
  host.cleanup();
});

describe('the seed: devices that vanish while a domain holds them', () => {
  it('release succeeds, the GPU goes back to its host driver, the VFs are pruned from both tables, and the VF address can be assigned again', async () => {
    await manager.assign({ domain: 'vm1', addresses: [...vfs, GPU], withGroup: true });
    expect(manager.tables().active.map((entry) => entry.address).sort()).toEqual([GPU, AUDIO, ...vfs].sort());

    // echo 0 > sriov_numvfs on the PF: the VFs disappear, whatever driver they were on.
    await host.kernel.write(numvfs, '0');
    expect(host.driverOf(vfs[0]!)).toBeNull();

    const report = await manager.release({ domain: 'vm1' });
    expect(report.failures).toEqual([]);
    expect([...report.pruned].sort()).toEqual([...vfs].sort());
    expect([...report.reattached].sort()).toEqual([GPU, AUDIO]);
    expect(host.driverOf(GPU)).toBe('nouveau');
    expect(host.driverOf(AUDIO)).toBe('snd_hda_intel');
    expect(manager.tables()).toEqual({ active: [], inactive: [] });

    // echo 2 > sriov_numvfs: the same addresses come back, and another domain can have them.
    await host.kernel.write(numvfs, '2');
    expect(virtfns()).toEqual(vfs);
    const again = await manager.assign({ domain: 'vm2', addresses: [vfs[0]!] });
    expect(again.changes).toEqual([
      { kind: 'set-active', entry: expect.objectContaining({ address: vfs[0], usedBy: { driver: 'qemu', domain: 'vm2', hypervisor: 'qemu', vm: 'vm2' } }) },
    ]);
  });

  it('regression: without pruning the vanished VF would stay "in use by driver qemu, domain vm1" forever', async () => {
    await manager.assign({ domain: 'vm1', addresses: [vfs[0]!] });
    await host.kernel.write(numvfs, '0');
    await manager.release({ domain: 'vm1' });
    await host.kernel.write(numvfs, '2');
    // This is the error libvirt users met (issue #72) until the fix: it must not happen.
    await expect(manager.assign({ domain: 'vm2', addresses: [vfs[0]!] })).resolves.toBeDefined();
    expect((await manager.status()).active.map((entry) => entry.usedBy.domain)).toEqual(['vm2']);
  });

  it('releasing only the vanished addresses by name prunes them too', async () => {
    await manager.assign({ domain: 'vm1', addresses: [...vfs, GPU], withGroup: true });
    await host.kernel.write(numvfs, '0');
    const report = await manager.release({ domain: 'vm1', addresses: vfs });
    expect([...report.pruned].sort()).toEqual([...vfs].sort());
    expect(manager.tables().active.map((entry) => entry.address).sort()).toEqual([GPU, AUDIO]);
  });

  it('status prunes an active device that vanished (awaited back for its domain); the domain\'s release reports it and lets go', async () => {
    await manager.assign({ domain: 'vm1', addresses: [vfs[0]!] });
    await host.kernel.write(numvfs, '0');
    const status = await manager.status();
    expect(status.pruned).toEqual([vfs[0]]);
    expect(status.missing).toEqual([]);
    expect(status.active).toEqual([]);
    expect(status.departed.map((record) => [record.address, record.owner])).toEqual([[vfs[0], { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' }]]);
    const release = await manager.release({ domain: 'vm1' });
    expect(release.pruned).toEqual([vfs[0]]);
    expect(manager.store.readDeparted()).toEqual([]);
  });

  it('a VF removed while only detached (inactive, no domain) is pruned by the next status', async () => {
    await manager.detach(vfs[0]!);
    await host.kernel.write(numvfs, '0');
    const status = await manager.status();
    expect(status.pruned).toEqual([vfs[0]]);
    expect(status.inactive).toEqual([]);
  });

  it('a VF removed while only detached is pruned by the next reattach, of itself or of another device', async () => {
    await manager.detach(vfs[0]!);
    await manager.detach(vfs[1]!);
    await host.kernel.write(numvfs, '0');
    const report = await manager.reattach(vfs[0]!);
    expect([...report.pruned].sort()).toEqual([...vfs].sort());
    expect(manager.tables()).toEqual({ active: [], inactive: [] });
  });
});
