import { execFileSync } from 'node:child_process';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { HostdevError } from '../../src/core/errors.js';
import { describeEvent, EMPTY_SNAPSHOT, type PciEvent } from '../../src/core/events.js';
import { PollSource } from '../../src/events/poll-source.js';
import { SimSource } from '../../src/events/sim-source.js';
import { ChildSnapshotReader, type SnapshotReader } from '../../src/events/snapshot-reader.js';
import type { EventSource } from '../../src/events/source.js';
import { UdevSource } from '../../src/events/udev-source.js';
import { Watcher } from '../../src/events/watcher.js';
import { MiniTree } from './mini-tree.js';

let tree: MiniTree | null = null;
let watcher: Watcher | null = null;
afterEach(async () => {
  await watcher?.stop();
  watcher = null;
  tree?.remove();
  tree = null;
});

async function until<T>(probe: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function watch(source: EventSource, host: MiniTree): { events: PciEvent[]; errors: Error[] } {
  const seen = { events: [] as PciEvent[], errors: [] as Error[] };
  watcher = new Watcher({
    sources: [source],
    reader: new ChildSnapshotReader(host.root),
    onBatch: async (batch) => {
      seen.events.push(...batch.events);
    },
    onError: (error) => seen.errors.push(error),
  });
  return seen;
}

describe('the watcher', () => {
  it('with the sysfs poller, reports a VF count change and the VFs removed, then added', async () => {
    tree = new MiniTree();
    tree.setNumVfs(2);
    const seen = watch(new PollSource(50), tree);
    await watcher!.start();
    tree.setNumVfs(0);
    await until(() => (seen.events.length >= 3 ? true : undefined));
    tree.setNumVfs(1);
    await until(() => (seen.events.length >= 5 ? true : undefined));
    expect(seen.events.map(describeEvent)).toEqual([
      'vf-count-change 0000:03:00.0 2 -> 0',
      'remove 0000:03:10.0 (VF 0 of 0000:03:00.0) (was on igbvf)',
      'remove 0000:03:10.1 (VF 1 of 0000:03:00.0) (was on igbvf)',
      'vf-count-change 0000:03:00.0 0 -> 1',
      'add 0000:03:10.0 (VF 0 of 0000:03:00.0) driver igbvf',
    ]);
    expect(seen.errors).toEqual([]);
  });

  it("with the simulator's event log, wakes on each logged uevent", async () => {
    tree = new MiniTree();
    tree.setNumVfs(1);
    tree.appendSimEvent({ seq: 1, action: 'add', address: tree.vf(0), time: 'old' });
    const seen = watch(new SimSource(tree.root, 60_000), tree);
    await watcher!.start();
    tree.setDriver(tree.vf(0), 'vfio-pci');
    tree.appendSimEvent({ seq: 2, action: 'bind', address: tree.vf(0), driver: 'vfio-pci', time: 'now' });
    const events = await until(() => (seen.events.length > 0 ? seen.events : undefined));
    expect(events.map(describeEvent)).toEqual(['driver-change 0000:03:10.0 (VF 0 of 0000:03:00.0) igbvf -> vfio-pci']);
  });

  it('with a udevadm that prints kernel uevents, wakes on each of them', async () => {
    tree = new MiniTree();
    tree.setNumVfs(1);
    // A stand-in udevadm: prints the banner, then one remove uevent once the VF is gone.
    const fake = path.join(tree.root, 'udevadm');
    const vfDir = path.join(tree.root, 'sys/bus/pci/devices', tree.vf(0));
    writeFileSync(
      fake,
      `#!/bin/sh\necho "monitor will print the received events for:"\necho "KERNEL - the kernel uevent"\necho\n` +
        `while [ -e "${vfDir}" ]; do sleep 0.05; done\n` +
        `printf 'KERNEL[1.0] remove   /devices/pci0000:00/${tree.vf(0)} (pci)\\nACTION=remove\\nPCI_SLOT_NAME=${tree.vf(0)}\\n\\n'\n` +
        `exec sleep 30\n`,
    );
    chmodSync(fake, 0o755);
    const seen = watch(new UdevSource(fake), tree);
    const started = await watcher!.start();
    expect(started.sources.map((s) => s.name)).toEqual(['udev']);
    tree.setNumVfs(0);
    await until(() => (seen.events.some((e) => e.kind === 'remove') ? true : undefined));
    expect(seen.events.map((e) => e.kind)).toEqual(['vf-count-change', 'remove']);
  });

  it('reports a source that cannot start (no udevadm) so the caller can fall back', async () => {
    tree = new MiniTree();
    watch(new UdevSource('/nonexistent/udevadm'), tree);
    const started = await watcher!.start();
    expect(started.sources).toEqual([]);
    expect(started.failed[0]?.error.message).toContain('ENOENT');
  });
});

/** A PF with one VF whose sriov_numvfs blocks every read (a FIFO stands in for D state). */
function treeWithBlockedNumVfs(): MiniTree {
  const blocked = new MiniTree();
  blocked.setNumVfs(1);
  const numvfs = path.join(blocked.root, 'sys/devices/pci0000:00', blocked.pf, 'sriov_numvfs');
  rmSync(numvfs);
  execFileSync('mkfifo', [numvfs]);
  return blocked;
}

describe('the snapshot reader', () => {
  it('abandons a child that does not answer in time and says why', async () => {
    tree = new MiniTree();
    const reader = new ChildSnapshotReader(tree.root, 1);
    try {
      await expect(reader.read()).rejects.toMatchObject({ code: 'HOSTDEV_TIMEOUT' });
    } finally {
      await reader.close();
    }
  });

  it('names the file the child was reading when the bound hit', async () => {
    tree = treeWithBlockedNumVfs();
    // The bound leaves the child time to start and report its file even on a loaded machine.
    const reader = new ChildSnapshotReader(tree.root, 3000);
    try {
      const error = await reader.read().then(
        () => null,
        (e: unknown) => e as HostdevError,
      );
      const read = path.join(tree.root, 'sys/bus/pci/devices', tree.pf, 'sriov_numvfs');
      expect(error?.message).toBe(`reading ${read} did not finish within 3000 ms; the reading process was abandoned`);
      expect(error?.details).toMatchObject({ files: [read], timeoutMs: 3000 });
    } finally {
      await reader.close();
    }
  });

  it('a sysfs read that blocks (a FIFO stands in for D state) never blocks the watching process', async () => {
    tree = treeWithBlockedNumVfs();
    const reader = new ChildSnapshotReader(tree.root, 300);
    const started = Date.now();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    try {
      await expect(reader.read()).rejects.toMatchObject({ code: 'HOSTDEV_TIMEOUT' });
      // The next read fails too: at once while the abandoned child is still stuck ("still blocked"),
      // or after its own timeout once that child is gone and a new one blocks again.
      await expect(reader.read()).rejects.toMatchObject({ code: 'HOSTDEV_TIMEOUT' });
    } finally {
      clearInterval(timer);
      await reader.close();
    }
    // Two bounded reads of 300 ms each; the rest is room for child start-up on a loaded machine.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(ticks).toBeGreaterThan(10);
  });
});

describe('the watcher when sysfs reads block', () => {
  function flakyReader(failures: number): SnapshotReader & { reads: number } {
    const reader = {
      reads: 0,
      async read() {
        reader.reads++;
        if (reader.reads <= failures) throw new Error(`read ${reader.reads} blocked`);
        return EMPTY_SNAPSHOT;
      },
      async close() {},
    };
    return reader;
  }

  it('keeps trying the first snapshot, reporting each blocked read, instead of giving up', async () => {
    const reader = flakyReader(3);
    const errors: Error[] = [];
    const w = new Watcher({ sources: [], reader, onBatch: async () => {}, onError: (e) => errors.push(e), retryMs: 10 });
    await w.start();
    expect(reader.reads).toBe(4);
    expect(errors.map((e) => e.message)).toEqual(['read 1 blocked', 'read 2 blocked', 'read 3 blocked']);
    await w.stop();
  });

  it('ends the wait for a first snapshot when stopped, starting no source', async () => {
    const reader = flakyReader(Number.POSITIVE_INFINITY);
    let started = 0;
    const source: EventSource = {
      name: 'poll',
      async start() {
        started++;
      },
      async stop() {},
    };
    const w = new Watcher({ sources: [source], reader, onBatch: async () => {}, onError: () => {}, retryMs: 10 });
    const starting = w.start();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await w.stop();
    const result = await starting;
    expect(result.sources).toEqual([]);
    expect(started).toBe(0);
  });
});
