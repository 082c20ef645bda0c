import { execFileSync } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { createSimulatedHost } from '../../src/sim-entry.js';
import { readDevicesBounded } from '../../src/sysfs/bounded-inventory.js';
import { SysfsLayout } from '../../src/sysfs/paths.js';
import { ServingReader } from '../../src/sysfs/serving-reader.js';

// One reader process serves every device read of its owner (a manager): the same devices as a
// reader started per read, one process for all reads, and a read the kernel holds ends at its bound
// and takes the stuck reader with it; the next read starts another.
const base = mkdtempSync(path.join(tmpdir(), 'hostdev-serving-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
const PF = '0000:01:00.0' as PciAddress;
const VF0 = '0000:01:10.0' as PciAddress;
const VF1 = '0000:01:10.2' as PciAddress;
const GONE = '0000:09:00.0' as PciAddress;

describe('the serving reader', () => {
  it('reads what a reader per read reads, in one process across reads', async () => {
    const root = path.join(base, 'same');
    createSimulatedHost(root, { preset: 'sriov-nic' });
    const layout = new SysfsLayout(root);
    const serving = new ServingReader(layout);
    try {
      const first = await readDevicesBounded(layout, [PF, VF0, GONE], { serving });
      const pid = serving.pid;
      expect(pid).not.toBe(null);
      const second = await readDevicesBounded(layout, [VF1, VF0], { serving });
      expect(serving.pid).toBe(pid);
      const alone = await readDevicesBounded(layout, [PF, VF0, VF1, GONE]);
      expect(first).toEqual(new Map([PF, VF0, GONE].map((address) => [address, alone.get(address)])));
      expect(second).toEqual(new Map([VF1, VF0].map((address) => [address, alone.get(address)])));
      expect(first.get(GONE)).toBe(null);
      expect(first.get(VF0)?.physfn).toBe(PF);
    } finally {
      serving.close();
    }
  });

  it('ends a held read at its bound naming the device, and serves the next read from a new process', async () => {
    const root = path.join(base, 'held');
    createSimulatedHost(root, { preset: 'sriov-nic' });
    const layout = new SysfsLayout(root);
    const serving = new ServingReader(layout);
    const override = path.join(layout.device(VF0), 'driver_override');
    try {
      await readDevicesBounded(layout, [VF1], { serving });
      const before = serving.pid;
      // A FIFO with no writer: opening it blocks, as a read of a file the kernel holds does.
      renameSync(override, `${override}.kept`);
      execFileSync('mkfifo', [override]);
      const slow: Array<readonly PciAddress[]> = [];
      await expect(
        readDevicesBounded(layout, [VF1, VF0], { serving, timeoutMs: 400, slowEveryMs: 100, onSlow: (pending) => slow.push(pending) }),
      ).rejects.toMatchObject({ code: 'HOSTDEV_TIMEOUT', details: { pending: [VF0] } });
      expect(slow.at(-1)).toEqual([VF0]);
      rmSync(override);
      renameSync(`${override}.kept`, override);
      const again = await readDevicesBounded(layout, [VF0], { serving });
      expect(again.get(VF0)?.address).toBe(VF0);
      expect(serving.pid).not.toBe(before);
    } finally {
      serving.close();
    }
  });
});
