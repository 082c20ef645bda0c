import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { HostReader } from '../../src/manager/host-reader.js';
import { HostdevManager } from '../../src/manager/hostdev-manager.js';
import { EMPTY_RECOVERY_REPORT, recover, type ReconcileScope } from '../../src/manager/recovery.js';
import { readStatus } from '../../src/manager/status.js';
import { SimKernel } from '../../src/sim/kernel.js';
import { SysfsLayout } from '../../src/sysfs/paths.js';
import { StateStore } from '../../src/state/store.js';
import { isolatedSpec, simSetup, type SimSetup } from './recovery-support.js';

// Recovery at open with reconcile 'changed' reads no table entry's device while the kernel's
// uevent sequence number is the one at which every entry was last found consistent; any event
// since (a bind, an unbind, a device added or removed) makes it walk every entry again.

// Entries whose device was read: one by one (driverOf) or in the walk's batch read (entryFacts).
class CountingReader extends HostReader {
  reads = 0;
  override async driverOf(address: PciAddress): Promise<string | null> {
    this.reads += 1;
    return super.driverOf(address);
  }
  override async entryFacts(...args: Parameters<HostReader['entryFacts']>): ReturnType<HostReader['entryFacts']> {
    this.reads += new Set(args[0]).size;
    return super.entryFacts(...args);
  }
}

const setups: SimSetup[] = [];
afterEach(() => {
  for (const setup of setups.splice(0)) fs.rmSync(setup.base, { recursive: true, force: true });
});

function seqnum(setup: SimSetup): number {
  return Number(fs.readFileSync(path.join(setup.root, 'sys/kernel/uevent_seqnum'), 'utf8'));
}

function simHost(count: number): { setup: SimSetup; addresses: PciAddress[]; kernel: SimKernel } {
  const { spec, addresses } = isolatedSpec(count);
  const setup = simSetup(spec);
  setups.push(setup);
  return { setup, addresses, kernel: new SimKernel(setup.root, { env: {} }) };
}

async function openRecovery(setup: SimSetup, kernel: SimKernel, reconcile: ReconcileScope) {
  const store = StateStore.open(setup.stateDir);
  const reader = new CountingReader(new SysfsLayout(setup.root));
  try {
    const report = await recover(store, kernel, reader, null, { reconcile });
    return { reads: reader.reads, drift: report.drift.map((entry) => entry.address) };
  } finally {
    reader.close();
    store.close();
  }
}

describe('recovery at open, reconcile changed', () => {
  it('reads no entry while nothing happened since the last consistent walk (an operation included), and every entry after an event', async () => {
    const { setup, addresses, kernel } = simHost(4);
    const manager = await HostdevManager.open({ root: setup.root, stateDir: setup.stateDir, kernel });
    await manager.assign({ domain: 'vm1', addresses: addresses.slice(0, 3) });
    manager.close();

    expect(await openRecovery(setup, kernel, 'changed')).toEqual({ reads: 0, drift: [] });
    expect(await openRecovery(setup, kernel, 'full')).toEqual({ reads: 3, drift: [] });

    // An event on a device in no table: one walk, then none again.
    await kernel.write('/sys/bus/pci/drivers/igb/unbind', addresses[3]!);
    expect(await openRecovery(setup, kernel, 'changed')).toEqual({ reads: 3, drift: [] });
    expect(await openRecovery(setup, kernel, 'changed')).toEqual({ reads: 0, drift: [] });

    // A driver changed by hand is drift, said on every open: every open walks while it lasts.
    await kernel.write('/sys/bus/pci/drivers/vfio-pci/unbind', addresses[0]!);
    expect(await openRecovery(setup, kernel, 'changed')).toEqual({ reads: 3, drift: [addresses[0]] });
    expect(await openRecovery(setup, kernel, 'changed')).toEqual({ reads: 3, drift: [addresses[0]] });
  });
});

describe("the simulated kernel's uevent_seqnum", () => {
  it('moves on with every bind, unbind, add and remove, and not with an attribute write', async () => {
    const { setup, addresses, kernel } = simHost(2);
    const start = seqnum(setup);
    await kernel.write(`/sys/bus/pci/devices/${addresses[0]}/driver_override`, 'vfio-pci');
    expect(seqnum(setup)).toBe(start);
    await kernel.write('/sys/bus/pci/drivers/igb/unbind', addresses[0]!);
    expect(seqnum(setup)).toBe(start + 1);
    await kernel.write('/sys/bus/pci/drivers_probe', addresses[0]!);
    expect(seqnum(setup)).toBe(start + 2);
    await kernel.write(`/sys/bus/pci/devices/${addresses[1]}/remove`, '1');
    // The driver's unbind, then the device's removal.
    expect(seqnum(setup)).toBe(start + 4);
    await kernel.write('/sys/bus/pci/rescan', '1');
    // The device added, then bound to its driver.
    expect(seqnum(setup)).toBe(start + 6);
  });
});

// Every link read, lookup and batch read the status walk makes.
class CallCountingReader extends HostReader {
  perEntry = 0;
  batches: number[] = [];
  override async driverOf(address: PciAddress): Promise<string | null> {
    this.perEntry += 1;
    return super.driverOf(address);
  }
  override async exists(address: PciAddress): Promise<boolean> {
    this.perEntry += 1;
    return super.exists(address);
  }
  override async entryFacts(...args: Parameters<HostReader['entryFacts']>): ReturnType<HostReader['entryFacts']> {
    this.batches.push(args[0].length);
    return super.entryFacts(...args);
  }
}

describe('the status walk', () => {
  it('reads every entry in one batch read, with no link read or lookup per entry, and still prunes a vanished device', async () => {
    const { setup, addresses, kernel } = simHost(6);
    const manager = await HostdevManager.open({ root: setup.root, stateDir: setup.stateDir, kernel });
    await manager.assign({ domain: 'vm1', addresses: addresses.slice(0, 5) });
    manager.close();

    const store = StateStore.open(setup.stateDir);
    const reader = new CallCountingReader(new SysfsLayout(setup.root));
    try {
      const status = await readStatus(store, reader, EMPTY_RECOVERY_REPORT);
      expect(status.active.map((entry) => entry.address)).toEqual(addresses.slice(0, 5));
      expect({ perEntry: reader.perEntry, batches: reader.batches }).toEqual({ perEntry: 0, batches: [5] });

      // A device gone: looked up once more under the lock (it may be back), then pruned.
      await kernel.write(`/sys/bus/pci/devices/${addresses[4]!}/remove`, '1');
      reader.perEntry = 0;
      reader.batches = [];
      const after = await readStatus(store, reader, EMPTY_RECOVERY_REPORT);
      expect(after.pruned).toEqual([addresses[4]]);
      expect({ perEntry: reader.perEntry, batches: reader.batches }).toEqual({ perEntry: 1, batches: [5] });
    } finally {
      reader.close();
      store.close();
    }
  });
});
