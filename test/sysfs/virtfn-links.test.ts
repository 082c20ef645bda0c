import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { ChildSnapshotReader } from '../../src/events/snapshot-reader.js';
import { buildHost } from '../../src/sim/builder.js';
import { presets } from '../../src/sim/presets.js';
import { SysfsLayout } from '../../src/sysfs/paths.js';
import { readVirtfnLinks } from '../../src/sysfs/reader.js';

// While SR-IOV is being disabled Linux drops VF0's virtfn0 link before VF1's (drivers/pci/iov.c
// removes VFs from index 0 up). A VF's index is the N of its link, whatever is missing around it:
// `ip link set PF vf N` must never be pointed at a neighbour.
const PF = '0000:01:00.0' as PciAddress;
const VF0 = '0000:01:10.0' as PciAddress;
const VF1 = '0000:01:10.2' as PciAddress;

const base = mkdtempSync(path.join(tmpdir(), 'hostdev-virtfn-links-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

function hostWithoutVirtfn0(): string {
  const root = path.join(base, `root-${Math.random().toString(36).slice(2)}`);
  buildHost(root, presets['sriov-nic']!);
  const layout = new SysfsLayout(root);
  expect(readVirtfnLinks(layout, PF).slice(0, 2)).toEqual([
    { index: 0, address: VF0 },
    { index: 1, address: VF1 },
  ]);
  unlinkSync(layout.device(PF, 'virtfn0'));
  return root;
}

describe('VF indexes come from the N of the virtfnN links', () => {
  it('readVirtfnLinks keeps N when virtfn0 is gone', () => {
    const root = hostWithoutVirtfn0();
    expect(readVirtfnLinks(new SysfsLayout(root), PF)[0]).toEqual({ index: 1, address: VF1 });
    expect(readVirtfnLinks(new SysfsLayout(root), VF1)).toEqual([]);
  });

  it("the watcher's snapshot gives VF1 index 1 when virtfn0 is gone", async () => {
    const root = hostWithoutVirtfn0();
    const reader = new ChildSnapshotReader(root, 30_000);
    try {
      const snapshot = await reader.read();
      expect(snapshot.get(VF1)).toMatchObject({ pf: PF, vfIndex: 1 });
      expect(snapshot.get(VF0)).toMatchObject({ vfIndex: null });
    } finally {
      await reader.close();
    }
  });
});
