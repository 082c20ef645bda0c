import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HostdevManager } from '../../src/manager/hostdev-manager.js';
import { hostdevRejectionOf } from '../support/errors.js';
import { pci, simManagerHost, type SimManagerHost } from '../support/sim-manager.js';

// A release names a domain by (hypervisor, name): one that holds nothing is a typo or the wrong
// hypervisor, and says so instead of releasing nothing with success.
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

describe('release of a domain that holds nothing', () => {
  it('is HOSTDEV_DOMAIN_NOT_FOUND (exit 3) naming the domains that hold devices, and changes nothing', async () => {
    await manager.assign({ domain: 'vm1', hypervisor: 'xen', addresses: [VF] });
    const typo = await hostdevRejectionOf(manager.release({ domain: 'nosuchvm', hypervisor: 'xen' }));
    expect(typo.code).toBe('HOSTDEV_DOMAIN_NOT_FOUND');
    expect(typo.exitCode).toBe(3);
    expect(typo.message).toContain('the domains that do: vm1 (hypervisor xen)');
    expect(typo.hint).toContain('hostdev status');

    const wrongHypervisor = await hostdevRejectionOf(manager.release({ domain: 'vm1' }));
    expect(wrongHypervisor.code).toBe('HOSTDEV_DOMAIN_NOT_FOUND');
    expect(wrongHypervisor.hint).toContain('hostdev release --domain vm1 --hypervisor xen');
    expect(await hostdevRejectionOf(manager.release({ domain: 'vm1', dryRun: true }))).toMatchObject({ code: 'HOSTDEV_DOMAIN_NOT_FOUND' });

    expect(manager.tables().active.map((entry) => entry.address)).toEqual([VF]);
    // Naming none of its devices is not a typo: the domain holds one (the view is scoped to the request).
    expect((await manager.release({ domain: 'vm1', hypervisor: 'xen', addresses: [] })).released).toEqual([]);
    const release = await manager.release({ domain: 'vm1', hypervisor: 'xen' });
    expect(release.released).toEqual([VF]);
  });

  it('still reports a VF pruned before the release, though the domain holds no entry any more', async () => {
    await manager.assign({ domain: 'vm1', addresses: [VF] });
    await host.kernel.write('/sys/bus/pci/devices/0000:01:00.0/sriov_numvfs', '0');
    manager.close();
    manager = await host.open();
    expect(manager.tables().active).toEqual([]);
    const release = await manager.release({ domain: 'vm1' });
    expect(release.pruned).toEqual([VF]);
  });
});

describe('names a request gives', () => {
  it('are checked by assign and release before anything changes (HOSTDEV_USAGE, exit 2)', async () => {
    const assign = await hostdevRejectionOf(manager.assign({ domain: 'vm\n1', addresses: [VF] }));
    expect(assign).toMatchObject({ code: 'HOSTDEV_USAGE', exitCode: 2 });
    expect(host.driverOf(VF)).toBe('igbvf');
    const release = await hostdevRejectionOf(manager.release({ domain: 'vm1', hypervisor: 'a/b' }));
    expect(release.message).toContain('a name is printable characters, no "/", at most 255 bytes');
  });

  it('print quoted in the hints that name them', async () => {
    await manager.assign({ domain: 'vm 1; echo pwned', addresses: [VF] });
    const taken = await hostdevRejectionOf(manager.detach(VF));
    expect(taken.hint).toContain(`hostdev release --domain 'vm 1; echo pwned' ${VF}`);
  });
});
