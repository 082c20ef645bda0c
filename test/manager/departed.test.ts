import { readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { forgetDeparted } from '../../src/manager/departed.js';
import type { HostdevManager } from '../../src/manager/hostdev-manager.js';
import { setVfCount } from '../../src/manager/vf-lifecycle.js';
import { LiveWatch, type LiveEvent } from '../../src/manager/watch-live.js';
import { vfReclaimer } from '../../src/manager/watch-reclaim.js';
import { simHostUsageFile } from '../../src/host/sim-host-usage.js';
import { snapshotOf } from '../../src/core/events.js';
import { readInventory } from '../../src/sysfs/reader.js';
import { pci, simManagerHost, type SimManagerHost } from '../support/sim-manager.js';
import { pciKey } from '../../src/core/device-key.js';

// Issue 6 follow-up: a VF pruned because it left the host while a table held it is remembered in
// the state database (same commit as the prune), whichever command pruned it, so that a watch
// started later recognises its return; the records are dropped on return, release or forget.
const PF = pci('0000:01:00.0');
const numvfs = `/sys/bus/pci/devices/${PF}/sriov_numvfs`;
const VM1 = { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' };

let host: SimManagerHost;
let manager: HostdevManager;
let vf0: PciAddress;
let vf1: PciAddress;

const virtfn = (n: number): PciAddress => pci(path.basename(readlinkSync(path.join(host.root, 'sys/bus/pci/devices', PF, `virtfn${n}`))));

beforeEach(async () => {
  host = simManagerHost('sriov-nic');
  manager = await host.open();
  [vf0, vf1] = [virtfn(0), virtfn(1)];
  await manager.assign({ domain: 'vm1', addresses: [vf0] });
  await manager.detach(vf1);
});
afterEach(() => {
  manager.close();
  host.cleanup();
});

const departedOf = (m: HostdevManager) => m.store.readDeparted().map((r) => ({ address: r.address, pf: r.pf, vfIndex: r.vfIndex, owner: r.owner, table: r.former.table, prunedBy: r.prunedBy }));

describe('departed VFs are recorded by every prune, in the prune commit', () => {
  it('recovery on open (the VFs left while hostdev was not running)', async () => {
    await host.kernel.write(numvfs, '0');
    const next = await host.open();
    try {
      expect(next.tables()).toEqual({ active: [], inactive: [] });
      expect(departedOf(next)).toEqual([
        { address: vf0, pf: PF, vfIndex: 0, owner: VM1, table: 'active', prunedBy: 'recover' },
        { address: vf1, pf: PF, vfIndex: 1, owner: null, table: 'inactive', prunedBy: 'recover' },
      ]);
      expect((await next.status()).departed).toHaveLength(2);
    } finally {
      next.close();
    }
  });

  it('status (a detached VF) and reattach (a detached VF)', async () => {
    await host.kernel.write(numvfs, '0');
    const status = await manager.status();
    expect(status.pruned).toEqual([vf0, vf1]);
    expect(departedOf(manager)).toEqual([
      { address: vf0, pf: PF, vfIndex: 0, owner: VM1, table: 'active', prunedBy: 'status' },
      { address: vf1, pf: PF, vfIndex: 1, owner: null, table: 'inactive', prunedBy: 'status' },
    ]);
    expect(status.departed.map((r) => r.address)).toEqual([vf0, vf1]);

    await host.kernel.write(numvfs, '2');
    await manager.detach(vf1);
    await host.kernel.write(numvfs, '0');
    const reattach = await manager.reattach(vf1);
    expect(reattach.pruned).toEqual([vf1]);
    expect(departedOf(manager)).toEqual([
      { address: vf0, pf: PF, vfIndex: 0, owner: VM1, table: 'active', prunedBy: 'status' },
      { address: vf1, pf: PF, vfIndex: 1, owner: null, table: 'inactive', prunedBy: 'reattach' },
    ]);
  });

  it('vf set-count --force reports the owners it pruned but awaits nothing back: the operator let them go', async () => {
    const report = await setVfCount(
      { layout: manager.layout, store: manager.store, kernel: manager.kernel },
      { pf: PF, count: 1, force: true, dryRun: false, autoprobe: null, waitMs: 5_000 },
    );
    expect(report.pruned.map((vf) => [vf.address, vf.owner])).toEqual([
      [vf0, VM1],
      [vf1, null],
    ]);
    expect(departedOf(manager)).toEqual([]);
  });

  it('a release prunes its own vanished VF without awaiting it (the domain let go), and drops its earlier departed VFs', async () => {
    await manager.assign({ domain: 'vm1', addresses: [vf1], managed: false });
    await host.kernel.write(numvfs, '0');
    await manager.status(); // prunes both, awaited back for vm1
    // an earlier departure of vm1 (recorded by a watch, say) and one of another domain
    await manager.store.exclusive('assign', async (op) =>
      op.commit([
        { kind: 'record-departed', record: { address: pci('0000:01:10.4'), pf: PF, vfIndex: 4, former: { table: 'active', entry: { key: pciKey(pci('0000:01:10.4')), address: pci('0000:01:10.4'), usedBy: VM1, managed: true, stubDriver: 'vfio-pci', originalDriver: 'igbvf' } }, owner: VM1, vfConfig: null, domainConfig: null, prunedBy: 'watch' } },
        { kind: 'record-departed', record: { address: pci('0000:01:10.6'), pf: PF, vfIndex: 6, former: { table: 'active', entry: { key: pciKey(pci('0000:01:10.6')), address: pci('0000:01:10.6'), usedBy: { driver: 'qemu', domain: 'vm2', hypervisor: 'qemu', vm: 'vm2' }, managed: true, stubDriver: 'vfio-pci', originalDriver: 'igbvf' } }, owner: { driver: 'qemu', domain: 'vm2', hypervisor: 'qemu', vm: 'vm2' }, vfConfig: null, domainConfig: null, prunedBy: 'watch' } },
      ]),
    );
    const report = await manager.release({ domain: 'vm1' });
    // Every VF of vm1 that left the host, whoever pruned it, is reported by vm1's release.
    expect([...report.pruned].sort()).toEqual([vf0, vf1, pci('0000:01:10.4')].sort());
    expect(departedOf(manager).map((r) => r.address)).toEqual(['0000:01:10.6']);
  });

  it('`vf forget` drops named records, or all of them', async () => {
    await host.kernel.write(numvfs, '0');
    const next = await host.open();
    try {
      expect((await forgetDeparted(next.store, [vf1])).map((r) => r.address)).toEqual([vf1]);
      expect(departedOf(next).map((r) => r.address)).toEqual([vf0]);
      expect((await forgetDeparted(next.store, null)).map((r) => r.address)).toEqual([vf0]);
      expect(next.store.readDeparted()).toEqual([]);
    } finally {
      next.close();
    }
  });

  it('an assign of a departed VF drops its record, with a note when it goes to another domain', async () => {
    await host.kernel.write(numvfs, '0');
    const next = await host.open();
    try {
      await host.kernel.write(numvfs, '2');
      const report = await next.assign({ domain: 'vm2', addresses: [vf0] });
      expect(report.notes.join('\n')).toContain(`${vf0} (VF 0 of ${PF}) left the host while driver qemu, domain vm1 held it; it now goes to driver qemu, domain vm2 instead`);
      expect(departedOf(next).map((r) => r.address)).toEqual([vf1]);
    } finally {
      next.close();
    }
  });
});

describe('a watch started later recognises a departed VF', () => {
  function liveWatch(m: HostdevManager, events: LiveEvent[], reclaim?: ConstructorParameters<typeof LiveWatch>[0]['reclaim']): LiveWatch {
    return new LiveWatch({ store: m.store, emit: (event) => events.push(event), ...(reclaim ? { reclaim } : {}) });
  }
  const snapshot = () => snapshotOf(readInventory(manager.layout, { names: null }).devices);

  it('already back when the watch starts: "returned" with its former owner, then forgotten', async () => {
    await host.kernel.write(numvfs, '0');
    manager.close();
    manager = await host.open(); // recovery prunes and records
    await host.kernel.write(numvfs, '2');
    const events: LiveEvent[] = [];
    await liveWatch(manager, events).start(snapshot());
    expect(events.map((e) => (e.kind === 'returned' ? [e.address, e.formerOwner?.domain ?? null, e.outcome] : e.kind))).toEqual([
      [vf0, 'vm1', 'reported'],
      [vf1, null, 'reported'],
    ]);
    expect(manager.store.readDeparted()).toEqual([]);
  });

  it('with --reclaim: readied for its former domain only, and the record goes', async () => {
    await host.kernel.write(numvfs, '0');
    manager.close();
    manager = await host.open();
    const events: LiveEvent[] = [];
    const live = liveWatch(manager, events, async (departed, address) => {
      await manager.assign({ domain: departed.owner!.domain, addresses: [address] });
      return 'readied';
    });
    await live.start(snapshot()); // not back yet: nothing to say
    expect(events).toEqual([]);
    expect(live.away).toHaveLength(2);
    await host.kernel.write(numvfs, '2');
    await live.start(snapshot());
    expect(events.map((e) => (e.kind === 'returned' ? [e.address, e.outcome] : e.kind))).toEqual([
      [vf0, 'readied'],
      [vf1, 'reported'],
    ]);
    expect(manager.tables().active).toEqual([expect.objectContaining({ key: pciKey(vf0), address: vf0, usedBy: VM1 })]);
    expect(manager.store.readDeparted()).toEqual([]);
  });

  it('with --reclaim: a returned VF the host uses (an address on its netdev) is never taken, and the event says why', async () => {
    await host.kernel.write(numvfs, '0');
    manager.close();
    manager = await host.open();
    await host.kernel.write(numvfs, '2');
    writeFileSync(simHostUsageFile(host.root), JSON.stringify({ devices: { [vf0]: [{ kind: 'address', detail: 'enp1s0f0v0 has 192.0.2.7/24' }] } }));
    const events: LiveEvent[] = [];
    await liveWatch(manager, events, vfReclaimer(manager, () => undefined)).start(snapshot());
    const returned = events.find((e) => e.kind === 'returned' && e.address === vf0);
    expect(returned).toMatchObject({ outcome: 'failed' });
    expect(returned?.kind === 'returned' ? returned.detail : '').toContain('is in use by the host: enp1s0f0v0 has 192.0.2.7/24');
    expect(host.driverOf(vf0)).toBe('igbvf');
    expect(manager.tables().active).toEqual([]);
  });
});
