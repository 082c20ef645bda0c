import type { PciAddress } from '../core/address.js';
import { pciKey, type DeviceKey } from '../core/device-key.js';
import type { ActiveEntry, InactiveEntry, Owner, Tables } from '../core/tables.js';
import { hardwareChanged, hardwareChangeText, type HardwareIdentity } from '../core/hardware-identity.js';
import type { EntryFacts } from '../sysfs/entry-facts.js';
import type { DepartedVfRecord, StateStore } from '../state/store.js';
import { goneFrom, pruneVanished } from './reconcile.js';
import type { HostReader } from './host-reader.js';
import { inFlightOperations, type InFlightOperation } from './in-flight.js';
import { recoveryWouldAct, type RecoveryReport } from './recovery.js';
import type { HolderStatus } from '../core/holders.js';
import type { DeviceStatus } from './device-ops.js';

export interface RecentRepair {
  readonly at: string;
  /** The command whose open did it ("recover" when the opener did not say). */
  readonly by: string;
  readonly report: RecoveryReport;
}

export interface DepartedStatus extends DepartedVfRecord {
  readonly key: DeviceKey;
  readonly awaited: boolean;
  readonly back: { readonly address: PciAddress; readonly driver: string | null } | null;
}

export interface StatusReport extends Partial<DeviceStatus> {
  readonly active: readonly ActiveEntry[];
  readonly inactive: readonly InactiveEntry[];
  /** Entries whose device vanished, removed by this status call (both tables). */
  readonly pruned: readonly PciAddress[];
  /** Active entries whose device vanished and are still there (the lock was busy; see `busy`). */
  readonly missing: readonly PciAddress[];
  readonly iommu: { readonly enabled: boolean };
  readonly vfio: { readonly loaded: boolean; readonly groups: readonly string[] };
  readonly journal: { readonly unfinished: number };
  /** What recovery repaired, pruned or found drifting when this manager opened. */
  readonly recovery: RecoveryReport;
  /**
   * What recovery at open repaired or pruned lately, newest first, each with its time and the
   * command whose open did it (this status's own included): a repair made by another command's
   * open is shown here too.
   */
  readonly recentRepairs: readonly RecentRepair[];
  /**
   * VFs that left the host while a table held them (see src/manager/departed.ts): `awaited` while
   * the VF is absent; one that is back (`back`: its address now, its driver) waits for a watch to
   * report or ready it, or for `vf forget`.
   */
  readonly departed: readonly DepartedStatus[];
  /**
   * Status never waits for the state lock. When another operation held it, the tables are the
   * last committed snapshot, the entries whose device vanished were not pruned (`notPruned`), and
   * `operations` are the journal's rows (what that operation is doing).
   */
  readonly busy: { readonly operations: readonly InFlightOperation[]; readonly notPruned: readonly PciAddress[] } | null;
  /** Each domain's holder (`assign --holder-pid` or `--qmp`) and whether it lives (null: it did not answer in time). */
  readonly holders: readonly HolderStatus[];
  /**
   * Entries whose device is not the card they were made for (other IDs, or another serial): assign,
   * release, detach and reattach refuse them without --force (HOSTDEV_HARDWARE_CHANGED). Present
   * only when some entry's card changed, as the other optional sections.
   */
  readonly hardwareChanged?: readonly HardwareChange[];
}

export interface HardwareChange {
  readonly key: DeviceKey;
  readonly address: PciAddress;
  readonly table: 'active' | 'inactive';
  readonly owner: Owner | null;
  readonly was: HardwareIdentity;
  readonly now: HardwareIdentity;
  /** "hardware changed at 0000:01:00.0: was 8086:10ca SN X, now 15b3:101e". */
  readonly message: string;
}

/** Each entry whose recorded card differs from the device at its address now (`facts`: read by HostReader.entryFacts). */
function hardwareChanges(tables: Tables, facts: ReadonlyMap<PciAddress, EntryFacts>): HardwareChange[] {
  const located = [
    ...tables.active.map((entry) => ({ table: 'active' as const, entry, owner: entry.usedBy as Owner | null })),
    ...tables.inactive.map((entry) => ({ table: 'inactive' as const, entry, owner: null })),
  ];
  return located.flatMap(({ table, entry, owner }): HardwareChange[] => {
    const was = entry.hardware;
    const now = facts.get(entry.address)?.identity;
    if (was === undefined || was === null || now === undefined || now === null || !hardwareChanged(was, now)) return [];
    return [{ key: entry.key, address: entry.address, table, owner, was, now, message: hardwareChangeText(entry.address, was, now) }];
  });
}

/**
 * Both tables as the `status` command shows them. Entries whose device vanished are pruned by the
 * one reconcile rule, as every other path prunes them, but only when the lock is free at once: a
 * reader never waits for a writer.
 */
export async function readStatus(store: StateStore, reader: HostReader, recovery: RecoveryReport): Promise<Omit<StatusReport, 'holders'>> {

  let tables = store.readTables();
  let pruned: PciAddress[] = [];
  let busy: StatusReport['busy'] = null;
  // The whole walk is one batch read of every entry's device; under the lock, a device found gone
  // (or an entry made since) is looked up again before it is pruned.
  const entries = [...tables.active, ...tables.inactive];
  // Serials are read only where one was recorded: a serial unknown on either side is never compared.
  const serials = new Set(entries.filter((entry) => entry.hardware?.serialNumber != null || entry.hardware?.vpd?.serialNumber != null).map((entry) => entry.address));
  const facts = await reader.entryFacts(
    entries.map((entry) => entry.address),
    { ids: true, serials },
  );
  const exists = (address: PciAddress): boolean | Promise<boolean> => facts.get(address)?.present ?? reader.exists(address);
  const gone = await goneFrom(tables, exists);
  if (gone.size > 0) {
    const done = await store.tryExclusive('status', async (op) => {
      const existsNow = (address: PciAddress): boolean | Promise<boolean> => facts.get(address)?.present === true || reader.exists(address);
      const prune = pruneVanished(op, await goneFrom(op.tables(), existsNow), 'status');
      op.commit(prune.changes);
      return [op.tables(), prune.pruned.map((entry) => entry.address)] as const;
    });
    if (done === null) busy = { operations: inFlightOperations(store.readJournal()), notPruned: [...gone] };
    else [tables, pruned] = done;
  }
  if (busy === null && recovery.deferred !== undefined) busy = { operations: recovery.deferred, notPruned: [] };
  const changed = hardwareChanges(tables, facts);
  return {
    active: tables.active,
    inactive: tables.inactive,
    pruned,
    missing: [...(await goneFrom({ active: tables.active, inactive: [] }, exists))],
    iommu: { enabled: await reader.iommuEnabled() },
    vfio: { loaded: await reader.driverLoaded('vfio-pci'), groups: await reader.vfioDevices() },
    journal: { unfinished: store.readJournal().length },
    recovery,
    departed: await Promise.all(store.readDeparted().map((record) => departedNow(record, reader))),
    recentRepairs: store
      .recentReports()
      .map((stored) => ({ at: stored.at, by: stored.operation, report: stored.report as RecoveryReport }))
      .filter((repair) => recoveryWouldAct(repair.report)),
    busy,
    ...(changed.length === 0 ? {} : { hardwareChanged: changed }),
  };
}

/** Whether a departed VF is back: its PF has a VF of that index again. */
async function departedNow(record: DepartedVfRecord, reader: HostReader): Promise<DepartedStatus> {
  const link = (await reader.exists(record.pf)) ? (await reader.virtfnLinks(record.pf)).find((vf) => vf.index === record.vfIndex) : undefined;
  const back = link === undefined ? null : { address: link.address, driver: await reader.driverOf(link.address) };
  return { ...record, key: pciKey(record.address), awaited: back === null, back };
}
