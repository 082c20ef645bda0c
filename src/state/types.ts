import type { PciAddress } from '../core/address.js';
import type { OperationName } from '../core/operations.js';
import type { ActiveEntry, InactiveEntry, Located, Owner, TableChange, Tables } from '../core/tables.js';
import type { PrunedBy } from '../core/reconcile.js';
import type { SavedVfNet, VfNetRequest } from '../core/vf-net-config.js';
import type { DomainHolder } from '../core/holders.js';
import type { DepartedDevice, DeviceEntry } from '../core/device-entry.js';
import type { DeviceKey } from '../core/device-key.js';

/**
 * The interface agreed with the manager (brief state-api.md). Additive changes only.
 * The table shapes are core's (src/core/tables.ts), so plans and the store speak one language.
 */
export type { ActiveEntry, InactiveEntry, Owner, TableChange, Tables } from '../core/tables.js';
export type { DomainHolder } from '../core/holders.js';

/** A VF's network settings saved before it left its PF driver, restored when it comes back. */
export interface VfConfig extends SavedVfNet {
  /** What the domain asked for at assign (--mac/--vlan/...), when known: reclaim applies it again. */
  readonly requested?: VfNetRequest;
}

type VfConfigChange =
  | { readonly kind: 'save-vf-config'; readonly config: VfConfig }
  | { readonly kind: 'drop-vf-config'; readonly address: PciAddress };

/** Which VF a VF address is: its PF and the N of the PF's virtfnN link (what identifies it across removal). */
export interface VfIdentity {
  readonly pf: PciAddress;
  readonly vfIndex: number;
}

/**
 * A VF that left the host while a table held it, remembered until it returns (a `watch` reports or
 * readies it), its former domain is released, or `hostdev vf forget` drops it.
 */
export interface DepartedVfRecord extends VfIdentity {
  readonly address: PciAddress;
  /** The table entry as it was when the VF left. */
  readonly former: Located;
  /** The domain it was taken from; null when it was only detached. */
  readonly owner: Owner | null;
  /** The host's VF network config saved at assign (what release would have restored). */
  readonly vfConfig: VfConfig | null;
  /** The VF network config its domain had (applied again when it is readied for that domain). */
  readonly domainConfig: VfNetRequest | null;
  /** The command whose prune recorded it. */
  readonly prunedBy: PrunedBy;
  readonly departedAt: string;
}

type VfIdentityChange =
  /** Remembers which VF a table entry's address is (dropped with the entry by `remove`). */
  | ({ readonly kind: 'note-vf'; readonly address: PciAddress } & VfIdentity)
  /** `departedAt` is the commit's time. */
  | { readonly kind: 'record-departed'; readonly record: Omit<DepartedVfRecord, 'departedAt'> }
  | ({ readonly kind: 'drop-departed' } & VfIdentity);

type HolderChange =
  /** Ties the domain's devices to a holder (replacing the one it had). */
  | { readonly kind: 'set-holder'; readonly holder: Omit<DomainHolder, 'since'> }
  | { readonly kind: 'drop-holder'; readonly owner: Owner };

export type { DepartedDevice, DeviceEntry } from '../core/device-entry.js';

/** Entries of the other kinds (mdev, USB, NVMe, SCSI): in the `active` table by key, beside the PCI entries; a shared SCSI device's other holders in `device_sharer`. */
type DeviceChange =
  | { readonly kind: 'set-device'; readonly entry: DeviceEntry }
  | { readonly kind: 'remove-device'; readonly key: DeviceKey }
  /** `departedAt` is the commit's time unless given (a shared device still awaited by its other holders keeps its own). */
  | { readonly kind: 'record-departed-device'; readonly entry: DeviceEntry; readonly prunedBy: string; readonly departedAt?: string }
  | { readonly kind: 'drop-departed-device'; readonly key: DeviceKey };

/**
 * Everything `Operation.commit` applies in its one transaction. A domain left with no active entry
 * loses its holder in the same commit.
 */
export type StateChange = TableChange | VfConfigChange | VfIdentityChange | HolderChange | DeviceChange;

interface DeviceRestore {
  readonly driver: string | null;
  readonly driverOverride: string | null;
}

/** One durable intent, written BEFORE the kernel write it describes. */
export interface JournalStep {
  readonly address: PciAddress;
  readonly action: string; // e.g. "set-override", "unbind", "probe", "reset", "bind"
  readonly hostPath: string;
  readonly value: string;
  /** The device's state before the operation touched it: what recovery restores when rolling back. */
  readonly restore: DeviceRestore;
}

/** A durable intent for a device of another kind (its key in the journal's address column): an mdev made or removed. */
export interface DeviceJournalStep {
  readonly key: DeviceKey;
  readonly action: 'mdev-create' | 'mdev-remove';
  readonly hostPath: string;
  readonly value: string;
}

export interface DeviceJournalRecord extends DeviceJournalStep {
  readonly id: number;
  readonly operationId: string;
  readonly operationName: string;
  readonly pid: number;
  readonly done: boolean;
}

export interface JournalHandle {
  readonly id: number;
}

/** A journal row as stored, for recovery and `status`. */
export interface JournalRecord extends JournalStep {
  readonly id: number;
  readonly operationId: string;
  readonly operationName: OperationName;
  readonly pid: number;
  readonly done: boolean;
  readonly createdAt: string;
}

export interface CommitOptions {
  /** Also clears the journal rows of these (earlier, unfinished) operations: recovery uses it. */
  readonly resolve?: readonly string[];
  /** Adds this to the recent recovery reports (newest first, at most RECENT_REPORTS), in the same transaction. */
  readonly report?: unknown;
  /** Who the report is recorded as made by (default: the operation's name). */
  readonly reportedBy?: string;
}

export interface Operation {
  readonly id: string;
  readonly name: string;
  /** The tables as they are now, read under the lock. */
  tables(): Tables;
  /**
   * Keyed reads under the lock, so an operation's cost does not grow with the tables (these three
   * make an Operation a manager TableSource). lookup: the entries of these addresses.
   */
  lookup(addresses: Iterable<PciAddress>): Tables;
  ownedBy(owner: Owner): readonly ActiveEntry[];
  inactive(): readonly InactiveEntry[];
  intend(step: JournalStep): JournalHandle; // committed durably (synchronous=FULL) before returning
  /** The intents of several writes (one step group's) in one durable commit, before the first of them. */
  intendAll(steps: readonly JournalStep[]): JournalHandle[];
  /**
   * Marks the write as done. Not a commit of its own: the mark goes with the operation's next
   * durable commit (its next intents, or commit()), for recovery never trusts it (it reads the device).
   */
  done(handle: JournalHandle): void;
  /** The host fingerprint at which every table entry was last found consistent (see StateStore.reconciledAt). */
  reconciledAt(): string | null;
  /** Records (null: forgets) that fingerprint with the next commit(). */
  markReconciled(fingerprint: string | null): void;
  /** Applies the changes AND clears this operation's journal rows in ONE transaction. */
  commit(changes: readonly StateChange[], options?: CommitOptions): void;
  /** Journal rows of PCI functions left by earlier operations that never committed (crashed or failed). */
  unfinished(): readonly JournalRecord[];
  /** The same for devices of other kinds (mdev create/remove). */
  unfinishedDevices(): readonly DeviceJournalRecord[];
  intendDevice(step: DeviceJournalStep): JournalHandle;
  /** The entries of other kinds than PCI, in key order. */
  devices(): readonly DeviceEntry[];
  departedDevices(): readonly DepartedDevice[];
  vfConfigs(): readonly VfConfig[];
  /** The VF identities noted for these addresses (addresses that are not VFs have none). */
  vfHomes(addresses: Iterable<PciAddress>): ReadonlyMap<PciAddress, VfIdentity>;
  /** Departed VFs still remembered, oldest first. */
  departed(): readonly DepartedVfRecord[];
}

export interface StoredReport {
  readonly at: string;
  readonly operation: string;
  readonly report: unknown;
}

export interface StoreOptions {
  /** Longest wait for the cross-process lock before HOSTDEV_BUSY (default 30 s). */
  readonly lockTimeoutMs?: number;
  /**
   * FOR BENCHMARKS ONLY (bench/journal.ts measures the journal's cost): `false` makes intend()
   * and done() write nothing, so a crash mid-operation cannot be recovered.
   */
  readonly journal?: boolean;
}
