import { afterEach, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { PollSource } from '../../src/events/poll-source.js';
import { ChildSnapshotReader } from '../../src/events/snapshot-reader.js';
import { Watcher } from '../../src/events/watcher.js';
import { describeLiveEvent, LiveWatch, type LiveEvent } from '../../src/manager/watch-live.js';
import type { StateStore } from '../../src/state/store.js';
import { miniHost, type MiniTree } from './mini-tree.js';
import { pciKey } from '../../src/core/device-key.js';

let tree: MiniTree | null = null;
let watcher: Watcher | null = null;
let store: StateStore | null = null;
let cleanup = (): void => undefined;
afterEach(async () => {
  await watcher?.stop();
  cleanup();
  watcher = null;
  store = null;
  tree = null;
});

async function until(probe: () => boolean, timeoutMs = 5_000): Promise<void> {
  const start = Date.now();
  while (!probe()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function setup(reclaim?: ConstructorParameters<typeof LiveWatch>[0]['reclaim']): Promise<LiveEvent[]> {
  const host = miniHost();
  ({ tree, store, cleanup } = host);
  tree.setNumVfs(2);
  const vf0 = tree.vf(0) as PciAddress;
  const vf1 = tree.vf(1) as PciAddress;
  await store.exclusive('assign', async (op) => {
    op.commit([
      { kind: 'set-active', entry: { key: pciKey(vf0), address: vf0, usedBy: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' }, managed: true, stubDriver: 'vfio-pci', originalDriver: 'igbvf' } },
      { kind: 'set-inactive', entry: { key: pciKey(vf1), address: vf1, managed: false, stubDriver: 'vfio-pci', originalDriver: 'igbvf' } },
      { kind: 'save-vf-config', config: { address: vf0, pf: 'eth1', vfIndex: 0, mac: '00:00:00:00:00:00', vlan: 0, spoofchk: true, trust: false } },
    ]);
  });
  const events: LiveEvent[] = [];
  const live = new LiveWatch({ store, emit: (event) => events.push(event), ...(reclaim ? { reclaim } : {}) });
  watcher = new Watcher({
    sources: [new PollSource(50)],
    reader: new ChildSnapshotReader(tree.root),
    onBatch: (batch) => live.handle(batch),
    onError: (error) => {
      throw error;
    },
  });
  await watcher.start();
  return events;
}

describe('watch: live reaction to devices that leave and return', () => {
  it('prunes removed in-table VFs from both tables and their saved VF config at once, naming the owner', async () => {
    const events = await setup();
    tree!.setNumVfs(0);
    await until(() => events.filter((e) => e.kind === 'remove').length === 2);
    expect(store!.readTables()).toEqual({ active: [], inactive: [] });
    expect(store!.readVfConfigs()).toEqual([]);
    expect(store!.readJournal()).toEqual([]);
    expect(events.map(describeLiveEvent)).toEqual([
      'vf-count-change 0000:03:00.0 2 -> 0',
      'remove 0000:03:10.0 (VF 0 of 0000:03:00.0) (was on igbvf): pruned from the active table (driver qemu, domain vm1)',
      'remove 0000:03:10.1 (VF 1 of 0000:03:00.0) (was on igbvf): pruned from the inactive table (detached, no owner)',
    ]);
  });

  it('reports a VF with the same PF and index coming back as "returned", with its former owner', async () => {
    const events = await setup();
    tree!.setNumVfs(0);
    await until(() => events.some((e) => e.kind === 'remove'));
    tree!.setNumVfs(2);
    await until(() => events.filter((e) => e.kind === 'returned').length === 2);
    const returned = events.filter((e) => e.kind === 'returned');
    expect(returned.map(describeLiveEvent)).toEqual([
      'returned 0000:03:10.0 (VF 0 of 0000:03:00.0), formerly driver qemu, domain vm1 [reported]',
      'returned 0000:03:10.1 (VF 1 of 0000:03:00.0), formerly detached, no owner [reported]',
    ]);
  });

  it('with the reclaim policy, readies a returned VF for its former domain', async () => {
    const readied: string[] = [];
    const events = await setup(async (departed, address) => {
      readied.push(`${address} for ${departed.owner?.domain}`);
      return 'on vfio-pci again';
    });
    tree!.setNumVfs(0);
    await until(() => events.some((e) => e.kind === 'remove'));
    tree!.setNumVfs(2);
    await until(() => events.some((e) => e.kind === 'returned'));
    expect(readied).toEqual(['0000:03:10.0 for vm1']);
    expect(events.filter((e) => e.kind === 'returned').map((e) => (e.kind === 'returned' ? e.outcome : null))).toEqual(['readied', 'reported']);
  });

  it('with the reclaim policy, never hands a returned VF that someone else took meanwhile back to its former domain', async () => {
    const readied: string[] = [];
    const events = await setup(async (_departed, address) => {
      readied.push(address);
      return 'readied';
    });
    tree!.setNumVfs(0);
    await until(() => events.some((e) => e.kind === 'remove'));
    const vf0 = tree!.vf(0) as PciAddress;
    await store!.exclusive('vf-set-count', async (op) => {
      op.commit([{ kind: 'set-active', entry: { key: pciKey(vf0), address: vf0, usedBy: { driver: 'qemu', domain: 'vm2', hypervisor: 'qemu', vm: 'vm2' }, managed: true, stubDriver: 'vfio-pci', originalDriver: 'igbvf' } }]);
    });
    tree!.setNumVfs(2);
    await until(() => events.some((e) => e.kind === 'returned'));
    const first = events.find((e) => e.kind === 'returned');
    expect(first && describeLiveEvent(first)).toBe(
      'returned 0000:03:10.0 (VF 0 of 0000:03:00.0), formerly driver qemu, domain vm1 [held]: 0000:03:10.0 is held by qemu/vm2 now; left alone',
    );
    expect(readied).toEqual([]);
  });
});
