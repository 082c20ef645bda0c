import { afterEach, describe, expect, it } from 'vitest';
import type { OperationName } from '../../src/core/operations.js';
import type { PciAddress } from '../../src/core/address.js';
import type { PciDevice } from '../../src/core/device.js';
import type { ActiveEntry, InactiveEntry } from '../../src/core/tables.js';
import { recover, type RecoveryReader } from '../../src/manager/recovery.js';
import { KernelWriteError, type KernelPort } from '../../src/sysfs/kernel-port.js';
import { SysfsLayout } from '../../src/sysfs/paths.js';
import { StateStore, type JournalStep } from '../../src/state/store.js';
import { pciDevice } from '../support/pci-device-fixture.js';
import { tempDir } from '../state/helpers.js';
import { pciKey } from '../../src/core/device-key.js';
import { makeOwner } from '../../src/core/tables.js';

/**
 * An in-memory host with the four sysfs writes recovery uses, as Linux treats them: a
 * driver_override restricts which driver may bind; drivers_probe binds the override or the
 * native driver; bind refuses a bound device. Decision tests only: the crash tests use src/sim.
 */
class FakeHost implements KernelPort, RecoveryReader {
  readonly devices = new Map<string, { driver: string | null; override: string | null; native: string | null }>();
  readonly loaded = new Set(['vfio-pci', 'e1000e', 'igb']);
  readonly writes: string[] = [];
  failOn: ((hostPath: string) => boolean) | null = null;

  add(address: PciAddress, native: string | null, driver: string | null = native, override: string | null = null): this {
    this.devices.set(address, { driver, override, native });
    return this;
  }

  async write(hostPath: string, value: string): Promise<void> {
    this.writes.push(`${hostPath} ${JSON.stringify(value)}`);
    const fail = (errno: string) => new KernelWriteError(hostPath, value, errno);
    if (this.failOn?.(hostPath)) throw fail('EIO');
    let m = /^\/sys\/bus\/pci\/devices\/(.+)\/driver_override$/.exec(hostPath);
    if (m) {
      const dev = this.devices.get(m[1]!);
      if (!dev) throw fail('ENOENT');
      dev.override = value.trim() === '' ? null : value.trim();
      return;
    }
    if (hostPath === '/sys/bus/pci/drivers_probe') {
      const dev = this.devices.get(value.trim());
      if (!dev) throw fail('ENODEV');
      const candidate = dev.override ?? dev.native;
      if (dev.driver === null && candidate !== null && this.loaded.has(candidate)) dev.driver = candidate;
      return;
    }
    m = /^\/sys\/bus\/pci\/drivers\/(.+)\/(bind|unbind)$/.exec(hostPath);
    if (!m || !this.loaded.has(m[1]!)) throw fail('ENOENT');
    const dev = this.devices.get(value.trim());
    if (!dev) throw fail('ENODEV');
    if (m[2] === 'unbind') {
      if (dev.driver !== m[1]) throw fail('ENODEV');
      dev.driver = null;
    } else {
      if (dev.driver !== null) throw fail('EBUSY');
      if (dev.override !== null && dev.override !== m[1]) throw fail('ENODEV');
      dev.driver = m[1]!;
    }
  }

  async loadModule(name: string): Promise<void> {
    this.loaded.add(name.replace(/_/g, '-'));
  }

  async device(address: PciAddress): Promise<PciDevice | null> {
    const dev = this.devices.get(address);
    return dev ? pciDevice(address, { driver: dev.driver, driverOverride: dev.override }) : null;
  }
  async driverOf(address: PciAddress): Promise<string | null> {
    return this.devices.get(address)?.driver ?? null;
  }
  async exists(address: PciAddress): Promise<boolean> {
    return this.devices.has(address);
  }
  async driverLoaded(name: string): Promise<boolean> {
    return this.loaded.has(name);
  }
  state(address: PciAddress): { driver: string | null; override: string | null } | undefined {
    const dev = this.devices.get(address);
    return dev && { driver: dev.driver, override: dev.override };
  }
}

const A = '0000:01:00.0' as PciAddress;
const B = '0000:02:00.0' as PciAddress;
const C = '0000:03:00.0' as PciAddress;
const qemu = (domain: string) => makeOwner('qemu', domain);
const activeEntry = (address: PciAddress, managed = true): ActiveEntry => ({
  key: pciKey(address),
  address,
  usedBy: qemu('vm1'),
  managed,
  stubDriver: 'vfio-pci',
  originalDriver: 'e1000e',
});
const inactiveEntry = (address: PciAddress, managed = false): InactiveEntry => ({
  key: pciKey(address),
  address,
  managed,
  stubDriver: 'vfio-pci',
  originalDriver: 'e1000e',
});

const stores: StateStore[] = [];
function openStore(dir = tempDir(), lockTimeoutMs?: number): StateStore {
  const store = StateStore.open(dir, lockTimeoutMs === undefined ? {} : { lockTimeoutMs });
  stores.push(store);
  return store;
}
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
});

async function seed(store: StateStore, changes: Parameters<import('../../src/state/store.js').Operation['commit']>[0]) {
  await store.exclusive('assign', async (op) => op.commit(changes));
}

/** Journals `steps` under `operation` and dies without commit, as a killed process would. */
async function crashDuring(store: StateStore, operation: OperationName, steps: readonly JournalStep[]): Promise<void> {
  await store
    .exclusive(operation, async (op) => {
      for (const step of steps) op.done(op.intend(step));
      throw new Error('killed');
    })
    .catch(() => undefined);
}

const path = (address: PciAddress, file: string) => SysfsLayout.hostDevice(address, file);
const restoreOf = (driver: string | null, driverOverride: string | null = null) => ({ driver, driverOverride });

describe('recover: no unfinished operations', () => {
  it('takes no lock, writes nothing and reports drift of an entry whose driver changed by hand', async () => {
    const dir = tempDir();
    const store = openStore(dir);
    await seed(store, [
      { kind: 'set-active', entry: activeEntry(A) },
      { kind: 'set-inactive', entry: inactiveEntry(B) },
    ]);
    const host = new FakeHost().add(A, 'e1000e', 'vfio-pci', 'vfio-pci').add(B, 'e1000e', 'e1000e');
    const holder = openStore(dir);
    let report: Awaited<ReturnType<typeof recover>> | undefined;
    await holder.exclusive('assign', async () => {
      report = await recover(store, host, host); // would time out if it wanted the lock
    });
    expect(report).toEqual({
      repaired: [],
      pruned: [],
      vfConfig: [],
      rebooted: [],
      warnings: [
        `${B} (detached, no owner) should be on vfio-pci but is on e1000e: changed outside hostdev; check the device, then \`hostdev reattach ${B}\``,
      ],
      drift: [{ key: pciKey(B), address: B, table: 'inactive', usedBy: null, expectedDriver: 'vfio-pci', actualDriver: 'e1000e' }],
    });
    expect(host.writes).toEqual([]);
    expect(store.readTables().inactive).toEqual([inactiveEntry(B)]); // not silently fixed or trusted
    expect(store.lastReport()).toBeNull();
  });
});

describe('recover: unfinished operations', () => {
  it('rolls back an assign killed after its probe: original driver, override cleared, in no table', async () => {
    const store = openStore();
    const host = new FakeHost().add(A, 'e1000e', 'vfio-pci', 'vfio-pci');
    await crashDuring(store, 'assign', [
      { address: A, action: 'set-override', hostPath: path(A, 'driver_override'), value: 'vfio-pci', restore: restoreOf('e1000e') },
      { address: A, action: 'unbind', hostPath: '/sys/bus/pci/drivers/e1000e/unbind', value: A, restore: restoreOf('e1000e') },
      { address: A, action: 'probe', hostPath: '/sys/bus/pci/drivers_probe', value: A, restore: restoreOf('e1000e') },
    ]);
    const report = await recover(store, host, host);
    expect(host.state(A)).toEqual({ driver: 'e1000e', override: null });
    expect(host.writes).toEqual([
      `${path(A, 'driver_override')} "\\n"`,
      `/sys/bus/pci/drivers/vfio-pci/unbind "${A}"`,
      `/sys/bus/pci/drivers/e1000e/bind "${A}"`,
    ]);
    expect(report.repaired).toEqual([
      { key: pciKey(A), address: A, operation: 'assign', direction: 'rolled-back', outcome: 'ok', driver: 'e1000e', table: null, error: null },
    ]);
    expect(store.readJournal()).toEqual([]);
    expect(store.readTables()).toEqual({ active: [], inactive: [] });
    expect(store.lastReport()).toMatchObject({ operation: 'recover', report: { repaired: report.repaired } });
  });

  it('rolls back a detach killed after writing only driver_override', async () => {
    const store = openStore();
    const host = new FakeHost().add(A, 'e1000e', 'e1000e', 'vfio-pci');
    await crashDuring(store, 'detach', [
      { address: A, action: 'set-override', hostPath: path(A, 'driver_override'), value: 'vfio-pci', restore: restoreOf('e1000e') },
    ]);
    const report = await recover(store, host, host);
    expect(host.state(A)).toEqual({ driver: 'e1000e', override: null });
    expect(report.repaired[0]).toMatchObject({ direction: 'rolled-back', outcome: 'ok' });
  });

  it('rolls a managed release forward: original driver, out of both tables', async () => {
    const store = openStore();
    await seed(store, [{ kind: 'set-active', entry: activeEntry(A) }]);
    const host = new FakeHost().add(A, 'e1000e', null, null); // override cleared and unbound, then killed
    await crashDuring(store, 'release', [
      { address: A, action: 'reset', hostPath: path(A, 'reset'), value: '1', restore: restoreOf('vfio-pci', 'vfio-pci') },
      { address: A, action: 'clear-override', hostPath: path(A, 'driver_override'), value: '\n', restore: restoreOf('vfio-pci', 'vfio-pci') },
      { address: A, action: 'unbind', hostPath: '/sys/bus/pci/drivers/vfio-pci/unbind', value: A, restore: restoreOf('vfio-pci', 'vfio-pci') },
    ]);
    const report = await recover(store, host, host);
    expect(host.state(A)).toEqual({ driver: 'e1000e', override: null });
    expect(report.repaired).toEqual([
      { key: pciKey(A), address: A, operation: 'release', direction: 'rolled-forward', outcome: 'ok', driver: 'e1000e', table: null, error: null },
    ]);
    expect(store.readTables()).toEqual({ active: [], inactive: [] });
  });

  it('rolls an unmanaged release forward to inactive, on its stub', async () => {
    const store = openStore();
    await seed(store, [{ kind: 'set-active', entry: activeEntry(A, false) }]);
    const host = new FakeHost().add(A, 'e1000e', 'vfio-pci', 'vfio-pci');
    await crashDuring(store, 'release', [
      { address: A, action: 'reset', hostPath: path(A, 'reset'), value: '1', restore: restoreOf('vfio-pci', 'vfio-pci') },
    ]);
    const report = await recover(store, host, host);
    expect(host.writes).toEqual([]);
    expect(report.repaired[0]).toMatchObject({ direction: 'rolled-forward', table: 'inactive', driver: 'vfio-pci' });
    expect(store.readTables()).toEqual({ active: [], inactive: [inactiveEntry(A, false)] });
  });

  it('rolls a reattach forward; an assign of an inactive device that only reset stays inactive', async () => {
    const store = openStore();
    await seed(store, [
      { kind: 'set-inactive', entry: inactiveEntry(A, true) },
      { kind: 'set-inactive', entry: inactiveEntry(B) },
    ]);
    const host = new FakeHost().add(A, 'e1000e', 'vfio-pci', null).add(B, 'e1000e', 'vfio-pci', 'vfio-pci');
    await crashDuring(store, 'reattach', [
      { address: A, action: 'clear-override', hostPath: path(A, 'driver_override'), value: '\n', restore: restoreOf('vfio-pci', 'vfio-pci') },
    ]);
    await crashDuring(store, 'assign', [
      { address: B, action: 'reset', hostPath: path(B, 'reset'), value: '1', restore: restoreOf('vfio-pci', 'vfio-pci') },
    ]);
    const report = await recover(store, host, host);
    expect(host.state(A)).toEqual({ driver: 'e1000e', override: null });
    expect(host.state(B)).toEqual({ driver: 'vfio-pci', override: 'vfio-pci' });
    expect(report.repaired.map((r) => [r.address, r.direction, r.outcome, r.table])).toEqual([
      [A, 'rolled-forward', 'ok', null],
      [B, 'rolled-back', 'ok', 'inactive'],
    ]);
    expect(store.readTables()).toEqual({ active: [], inactive: [inactiveEntry(B)] });
    expect(store.readJournal()).toEqual([]);
  });

  it('records a device it cannot restore as inactive (never lost) and says how to finish', async () => {
    const store = openStore();
    const host = new FakeHost().add(A, 'e1000e', 'vfio-pci', 'vfio-pci');
    host.failOn = (hostPath) => hostPath.endsWith('/e1000e/bind');
    await crashDuring(store, 'detach', [
      { address: A, action: 'set-override', hostPath: path(A, 'driver_override'), value: 'vfio-pci', restore: restoreOf('e1000e') },
    ]);
    const report = await recover(store, host, host);
    expect(report.repaired).toEqual([
      expect.objectContaining({ address: A, outcome: 'failed', driver: null, table: 'inactive' }),
    ]);
    expect(report.warnings.join('\n')).toMatch(new RegExp(`hostdev reattach ${A}`));
    expect(store.readTables().inactive).toEqual([
      { key: pciKey(A), address: A, managed: true, stubDriver: 'vfio-pci', originalDriver: 'e1000e' },
    ]);
    expect(store.readJournal()).toEqual([]);
  });

  it('a device touched by a dead operation that vanished meanwhile: warned, journal cleared', async () => {
    const store = openStore();
    const host = new FakeHost();
    await crashDuring(store, 'assign', [
      { address: C, action: 'set-override', hostPath: path(C, 'driver_override'), value: 'vfio-pci', restore: restoreOf('igb') },
    ]);
    const report = await recover(store, host, host);
    expect(report.warnings).toEqual([`${C}, touched by an unfinished assign, is no longer on this host`]);
    expect(store.readJournal()).toEqual([]);
  });
});

describe('recover: vanished devices', () => {
  it('drops entries of vanished devices from both tables with a warning naming them; others kept', async () => {
    const store = openStore();
    await seed(store, [
      { kind: 'set-active', entry: activeEntry(A) },
      { kind: 'set-inactive', entry: inactiveEntry(B) },
      { kind: 'set-inactive', entry: inactiveEntry(C) },
    ]);
    const host = new FakeHost().add(C, 'e1000e', 'vfio-pci', 'vfio-pci');
    const report = await recover(store, host, host);
    expect(report.pruned).toEqual([
      { key: pciKey(A), address: A, table: 'active', usedBy: qemu('vm1') },
      { key: pciKey(B), address: B, table: 'inactive', usedBy: null },
    ]);
    expect(report.warnings).toEqual([
      `${A} is no longer on this host; dropped from the active table (it was used by driver qemu, domain vm1)`,
      `${B} is no longer on this host; dropped from the inactive table`,
    ]);
    expect(store.readTables()).toEqual({ active: [], inactive: [inactiveEntry(C)] });
    expect(store.lastReport()?.report).toEqual(report);
  });
});
