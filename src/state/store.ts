import type Database from 'better-sqlite3';
import type { OperationName } from '../core/operations.js';
import { openSqlite } from './sqlite.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { PciAddress } from '../core/address.js';
import { keyKind, pciAddressOf, pciKey, type DeviceKey } from '../core/device-key.js';
import { tryParseAddress } from '../core/address.js';
import type { DepartedDevice, DeviceEntry, DeviceIdentity } from '../core/device-entry.js';
import type { NonPciKind } from '../core/nonpci-device.js';
import { HostdevError } from '../core/errors.js';
import { processAlive } from '../platform/process-alive.js';
import { databaseFile, DB_FILE, ensureFileMode, ensureStateDir, syncDir, tightenIfExists } from './files.js';

export { DB_FILE };
import { ProcessLock, type LockHolder } from './lock.js';
import { REQUIRED_TABLES, SCHEMA_VERSION, migrate, schemaVersion } from './schema.js';
import { makeOwner, type Located } from '../core/tables.js';
import type { PrunedBy } from '../core/reconcile.js';
import type { VfNetRequest } from '../core/vf-net-config.js';
import type { HardwareIdentity } from '../core/hardware-identity.js';
import type {
  ActiveEntry,
  CommitOptions,
  DepartedVfRecord,
  DomainHolder,
  DeviceJournalRecord,
  DeviceJournalStep,
  InactiveEntry,
  JournalHandle,
  JournalRecord,
  JournalStep,
  Operation,
  Owner,
  StateChange,
  StoredReport,
  StoreOptions,
  Tables,
  VfConfig,
  VfIdentity,
} from './types.js';

export type * from './types.js';

export const LOCK_FILE = 'lock.db';
export const WAITING_ROOM_FILE = 'lock-waiters.db';
const DEFAULT_LOCK_TIMEOUT_MS = 30_000;

const BUG_HINT = 'This is a bug in hostdev (or in a program using its library); please report it with this message.';

const MOVE_ASIDE_HINT =
  'hostdev refuses to start from an empty state, because devices it gave to VMs would be forgotten. ' +
  'Restore the file from a backup, or move it aside (keep it for inspection) to start over; then check ' +
  '`hostdev list` for devices left on vfio-pci and reattach them by hand.';

interface ActiveRow {
  key: string;
  owner_driver: string;
  owner_domain: string;
  managed: number;
  stub_driver: string;
  original_driver: string | null;
  boot_id: string | null;
  hardware: string | null;
  identity?: string | null;
  shareable?: number | null;
}
type InactiveRow = Omit<ActiveRow, 'owner_driver' | 'owner_domain'>;
interface DepartedDeviceRow {
  key: string;
  kind: string;
  owner_driver: string;
  owner_domain: string;
  identity: string | null;
  pruned_by: string;
  departed_at: string;
  shareable: number | null;
  shared_by: string | null;
}
interface SharerRow {
  key: string;
  owner_driver: string;
  owner_domain: string;
}
interface JournalRow {
  id: number;
  op_id: string;
  op_name: OperationName;
  pid: number;
  address: string;
  action: string;
  host_path: string;
  value: string;
  restore_driver: string | null;
  restore_override: string | null;
  done: number;
  created_at: string;
}
interface VfConfigRow {
  address: string;
  pf: string;
  vf_index: number;
  mac: string | null;
  vlan: number | null;
  spoofchk: number | null;
  trust: number | null;
  requested: string | null;
}
interface DepartedRow {
  pf: string;
  vf_index: number;
  address: string;
  former_table: 'active' | 'inactive';
  owner_driver: string | null;
  owner_domain: string | null;
  managed: number;
  stub_driver: string;
  original_driver: string | null;
  vf_config: string | null;
  domain_config: string | null;
  pruned_by: string;
  departed_at: string;
}

const now = (): string => new Date().toISOString();
const bit = (value: boolean): number => (value ? 1 : 0);
const optBit = (value: boolean | null): number | null => (value === null ? null : bit(value));
const optBool = (value: number | null): boolean | null => (value === null ? null : value === 1);

/** Every entry is a PCI function today; a key of another kind was written by a hostdev that manages more. */
function entryAddress(key: string): PciAddress {
  const address = pciAddressOf(key as DeviceKey);
  if (address !== null) return address;
  throw new HostdevError('HOSTDEV_STATE', `the hostdev state database holds an entry for ${key}, a device this hostdev does not manage`, {
    hint: 'Run the newer hostdev that wrote it, or release that device with it first.',
    details: { key },
  });
}

/** The boot and hardware identity of an entry, when known (an entry written before schema version 8 has neither). */
function entryExtras(row: Pick<ActiveRow, 'boot_id' | 'hardware'>): { bootId?: string; hardware?: HardwareIdentity } {
  return {
    ...(row.boot_id === null ? {} : { bootId: row.boot_id }),
    ...(row.hardware === null ? {} : { hardware: JSON.parse(row.hardware) as HardwareIdentity }),
  };
}

/** The `active` table holds entries of every kind; PCI code reads the pci: ones as ActiveEntry. */
const isPciRow = (row: { key: string }): boolean => row.key.startsWith('pci:');

function deviceEntry(row: Pick<ActiveRow, 'key' | 'owner_driver' | 'owner_domain' | 'identity' | 'shareable'>, sharedBy: readonly Owner[] = []): DeviceEntry {
  return {
    key: row.key as DeviceKey,
    kind: keyKind(row.key as DeviceKey) as NonPciKind,
    usedBy: makeOwner(row.owner_driver, row.owner_domain),
    identity: row.identity == null ? null : (JSON.parse(row.identity) as DeviceIdentity),
    ...(row.shareable === 1 ? { shareable: true } : {}),
    ...(sharedBy.length === 0 ? {} : { sharedBy }),
  };
}

/** The holders past the first, as stored (hypervisor and VM of each). */
const sharersJson = (owners: readonly Owner[] | undefined): string | null =>
  owners === undefined || owners.length === 0 ? null : JSON.stringify(owners.map((owner) => [owner.hypervisor, owner.vm]));

function departedDevice(row: DepartedDeviceRow): DepartedDevice {
  const sharedBy = row.shared_by === null ? [] : (JSON.parse(row.shared_by) as [string, string][]).map(([driver, domain]) => makeOwner(driver, domain));
  return {
    entry: deviceEntry(row, sharedBy),
    prunedBy: row.pruned_by,
    departedAt: row.departed_at,
  };
}

/** A journal row of a PCI function names its bare address; one of another kind its key (mdev:UUID). */
const isPciJournalRow = (row: { address: string }): boolean => tryParseAddress(row.address) !== null;

function activeEntry(row: ActiveRow): ActiveEntry {
  return {
    key: row.key as DeviceKey,
    address: entryAddress(row.key),
    usedBy: makeOwner(row.owner_driver, row.owner_domain),
    managed: row.managed === 1,
    stubDriver: row.stub_driver,
    originalDriver: row.original_driver,
    ...entryExtras(row),
  };
}

function inactiveEntry(row: InactiveRow): InactiveEntry {
  return {
    key: row.key as DeviceKey,
    address: entryAddress(row.key),
    managed: row.managed === 1,
    stubDriver: row.stub_driver,
    originalDriver: row.original_driver,
    ...entryExtras(row),
  };
}

function journalRecord(row: JournalRow): JournalRecord {
  return {
    id: row.id,
    operationId: row.op_id,
    operationName: row.op_name,
    pid: row.pid,
    address: row.address as PciAddress,
    action: row.action,
    hostPath: row.host_path,
    value: row.value,
    restore: { driver: row.restore_driver, driverOverride: row.restore_override },
    done: row.done === 1,
    createdAt: row.created_at,
  };
}

function vfConfig(row: VfConfigRow): VfConfig {
  return {
    address: row.address as PciAddress,
    pf: row.pf,
    vfIndex: row.vf_index,
    mac: row.mac,
    vlan: row.vlan,
    spoofchk: optBool(row.spoofchk),
    trust: optBool(row.trust),
    ...(row.requested === null ? {} : { requested: JSON.parse(row.requested) as VfNetRequest }),
  };
}

function departedRecord(row: DepartedRow): DepartedVfRecord {
  const address = row.address as PciAddress;
  const common = { key: pciKey(address), address, managed: row.managed === 1, stubDriver: row.stub_driver, originalDriver: row.original_driver };
  const owner = row.owner_driver === null || row.owner_domain === null ? null : makeOwner(row.owner_driver, row.owner_domain);
  const former: Located =
    row.former_table === 'active' && owner !== null
      ? { table: 'active', entry: { ...common, usedBy: owner } }
      : { table: 'inactive', entry: common };
  return {
    address,
    pf: row.pf as PciAddress,
    vfIndex: row.vf_index,
    former,
    owner,
    vfConfig: row.vf_config === null ? null : (JSON.parse(row.vf_config) as VfConfig),
    domainConfig: row.domain_config === null ? null : (JSON.parse(row.domain_config) as VfNetRequest),
    prunedBy: row.pruned_by as PrunedBy,
    departedAt: row.departed_at,
  };
}

const SELECT_DEPARTED = 'SELECT * FROM departed_vf ORDER BY departed_at, pf, vf_index';

interface HolderRow {
  owner_driver: string;
  owner_domain: string;
  kind: 'pid' | 'qmp';
  pid: number | null;
  start_time: string | null;
  qmp_socket: string | null;
  since: string;
}

const SELECT_HOLDERS = 'SELECT * FROM domain_holder ORDER BY owner_driver, owner_domain';

function domainHolder(row: HolderRow): DomainHolder {
  return {
    owner: makeOwner(row.owner_driver, row.owner_domain),
    holder: row.kind === 'pid' ? { kind: 'pid', pid: row.pid!, startTime: row.start_time! } : { kind: 'qmp', socket: row.qmp_socket! },
    since: row.since,
  };
}

function sqliteCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function unusable(dbPath: string, problem: string, cause?: unknown): HostdevError {
  return new HostdevError('HOSTDEV_STATE', `the hostdev state database ${dbPath} ${problem}`, {
    hint: MOVE_ASIDE_HINT,
    details: { path: dbPath, ...(cause === undefined ? {} : { sqlite: sqliteCode(cause) ?? String(cause) }) },
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * A new database is built under a temporary name and linked into place only once its schema is
 * complete, so an existing `state.db` always has a schema: an empty or schema-less one is damage.
 * link() fails if another process linked first; its database is then the one everybody uses.
 */
function createFresh(dir: string, dbPath: string): void {
  const temp = path.join(dir, `${DB_FILE}.new-${process.pid}-${randomUUID().slice(0, 8)}`);
  ensureFileMode(temp);
  try {
    const db = openSqlite(temp);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      migrate(db);
      db.prepare("INSERT INTO meta (key, value) VALUES ('created_at', ?)").run(now());
    } finally {
      db.close();
    }
    try {
      fs.linkSync(temp, dbPath);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    syncDir(dir);
  } finally {
    for (const suffix of ['', '-wal', '-shm', '-journal']) fs.rmSync(temp + suffix, { force: true });
  }
}

/** Refuses a newer, schema-less, corrupt or incomplete database; brings an older one up to date. */
function checkOpened(db: Database.Database, dbPath: string, warnings: string[], persistent = false): void {
  const version = schemaVersion(db);
  if (version > SCHEMA_VERSION) {
    throw new HostdevError(
      'HOSTDEV_STATE',
      `the hostdev state database ${dbPath} has schema version ${version}, written by a newer hostdev; ` +
        `this hostdev knows versions up to ${SCHEMA_VERSION}`,
      {
        hint: 'Run the newer hostdev that wrote it (hostdev never downgrades a state database), or restore a backup.',
        details: { path: dbPath, version, known: SCHEMA_VERSION },
      },
    );
  }
  if (version === 0) throw unusable(dbPath, 'has no hostdev schema (version 0): it is damaged or not hostdev’s');
  const check = db.pragma('quick_check') as { quick_check: string }[];
  const problems = check.map((row) => row.quick_check).filter((text) => text !== 'ok');
  if (problems.length > 0) throw unusable(dbPath, `is corrupt: ${problems.slice(0, 3).join('; ')}`);
  if (persistent) {
    if (db.pragma('journal_mode', { simple: true }) !== 'wal') db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
  }
  const applied = migrate(db);
  if (applied.length > 0 && persistent) {
    warnings.push(`migrated the state database ${dbPath} from schema version ${version} to ${SCHEMA_VERSION}`);
  }
  const tables = new Set(
    (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name),
  );
  const missing = REQUIRED_TABLES.filter((name) => !tables.has(name));
  if (missing.length > 0) throw unusable(dbPath, `is missing the table(s) ${missing.join(', ')}`);
}

function openExisting(dbPath: string, timeoutMs: number, warnings: string[]): Database.Database {
  if (fs.statSync(dbPath).size === 0) throw unusable(dbPath, 'is empty (0 bytes): it was truncated');
  // SQLite opens a file it cannot write read-only without a word; the first commit would then
  // fail after the sysfs writes it records were made.
  try {
    fs.closeSync(fs.openSync(dbPath, 'r+'));
  } catch (error) {
    throw new HostdevError('HOSTDEV_STATE', `cannot write the hostdev state database ${dbPath}: ${(error as Error).message}`, {
      hint: 'Run hostdev as root on a filesystem mounted read-write; an immutable file (lsattr shows i) needs chattr -i.',
      details: { path: dbPath, errno: (error as NodeJS.ErrnoException).code ?? 'EIO' },
      cause: error,
    });
  }
  let db: Database.Database | undefined;
  try {
    db = openSqlite(dbPath, { fileMustExist: true, timeout: timeoutMs });
    checkOpened(db, dbPath, warnings, true);
    return db;
  } catch (error) {
    db?.close();
    if (error instanceof HostdevError) throw error;
    const code = sqliteCode(error);
    if (code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY' || code === 'SQLITE_PERM') {
      throw new HostdevError('HOSTDEV_STATE', `cannot open the hostdev state database ${dbPath}: ${String(error)}`, {
        hint: 'Run hostdev as root, or point --state-dir (HOSTDEV_STATE_DIR) at a writable directory.',
        details: { path: dbPath, sqlite: code },
        cause: error,
      });
    }
    if (isDiskFull(error) || filesystemFull(dbPath)) throw diskFull(dbPath, error);
    throw unusable(dbPath, `is corrupt or truncated (${String((error as Error).message ?? error)})`, error);
  }
}

/** Whether the filesystem of a file has no space left (SQLite says "disk I/O error" when it cannot make its -shm). */
function filesystemFull(file: string): boolean {
  try {
    return fs.statfsSync(path.dirname(file)).bavail === 0;
  } catch {
    return false;
  }
}

/** What `exclusive()` holds; ProcessLock across processes, InProcessLock for a snapshot. */
interface StateLock {
  acquire(timeoutMs: number, operationName: OperationName, holder: () => LockHolder | null): Promise<void>;
  /** One attempt that never waits. */
  tryAcquire(): boolean;
  release(): void;
  close(): void;
}

/** A snapshot belongs to one process: the store's own queue already runs its operations in turn. */
class InProcessLock implements StateLock {
  acquire(): Promise<void> {
    return Promise.resolve();
  }
  tryAcquire(): boolean {
    return true;
  }
  release(): void {}
  close(): void {}
}

function freshInMemory(): Database.Database {
  const db = openSqlite(':memory:');
  migrate(db);
  return db;
}

/** Bytes 18-19 of a database header say WAL (2) or rollback journal (1); memory takes no WAL. */
function withoutWalFlag(bytes: Buffer): Buffer {
  if (bytes.length >= 20 && bytes[18] === 2 && bytes[19] === 2) {
    bytes[18] = 1;
    bytes[19] = 1;
  }
  return bytes;
}

/**
 * The database's committed content in memory. With no WAL file beside it no connection has it
 * open, so its bytes are the whole content and are read as a file (a read-only SQLite connection
 * would leave -wal and -shm files behind); with one, a read-only connection reads through the WAL.
 */
function snapshotOf(dbPath: string, warnings: string[]): Database.Database {
  const stat = fs.statSync(dbPath);
  if (!stat.isFile()) throw unusable(dbPath, 'is not a regular file');
  if (stat.size === 0) throw unusable(dbPath, 'is empty (0 bytes): it was truncated');
  const attempt = (bytes: Buffer): Database.Database => {
    const db = openSqlite(withoutWalFlag(bytes));
    try {
      checkOpened(db, dbPath, warnings);
      return db;
    } catch (error) {
      db.close();
      throw error;
    }
  };
  const viaSqlite = (): Buffer => {
    const source = openSqlite(dbPath, { readonly: true, fileMustExist: true });
    try {
      return source.serialize();
    } finally {
      source.close();
    }
  };
  try {
    if (!fs.existsSync(`${dbPath}-wal`)) {
      try {
        return attempt(fs.readFileSync(dbPath));
      } catch {
        // A writer may have opened and checkpointed it while it was read: read it through SQLite.
      }
    }
    return attempt(viaSqlite());
  } catch (error) {
    if (error instanceof HostdevError) throw error;
    throw unusable(dbPath, `is corrupt or truncated (${String((error as Error).message ?? error)})`, error);
  }
}

/**
 * The durable state: active and inactive tables, the intent journal, saved VF config and the
 * last recovery report, in one SQLite database (WAL, synchronous=FULL) in a 0700 directory.
 * Writes happen only inside `exclusive()`, which holds the cross-process lock.
 */
/** How many recovery reports the state keeps for `status`. */
export const RECENT_REPORTS = 10;

function recentReportsIn(db: Database.Database): StoredReport[] {
  const row = db.prepare('SELECT at, operation, report FROM last_report WHERE id = 1').get() as
    | { at: string; operation: string; report: string }
    | undefined;
  if (row === undefined) return [];
  const stored = JSON.parse(row.report) as { recent?: StoredReport[] } | null;
  return stored !== null && Array.isArray(stored.recent) ? stored.recent : [{ at: row.at, operation: row.operation, report: stored }];
}

export class StateStore {
  readonly stateDir: string;
  readonly dbPath: string;
  /** What open() had to fix or migrate; callers show them as warnings. */
  readonly openWarnings: readonly string[];
  readonly journalEnabled: boolean;
  /** True for a snapshot (`openSnapshot`): commits land in memory, never on disk. */
  readonly snapshot: boolean;
  private spaceReserve: SpaceReserve | null = null;
  private currentBoot: string | null = null;
  private readonly db: Database.Database;
  private readonly lock: StateLock;
  private readonly lockTimeoutMs: number;
  private readonly inside = new AsyncLocalStorage<string>();
  private readonly statements = new Map<string, Database.Statement>();
  /** The tables as selectTables read them last, and the commit count they were read at. */
  private lastTables: { readonly commits: number; readonly tables: Tables } | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  /** Operations of this process queued or running in `exclusive()`. */
  private pending = 0;
  private closed = false;

  private constructor(
    stateDir: string,
    db: Database.Database,
    lock: StateLock,
    options: StoreOptions,
    warnings: string[],
    snapshot = false,
  ) {
    this.stateDir = stateDir;
    this.snapshot = snapshot;
    this.dbPath = path.join(stateDir, DB_FILE);
    this.db = db;
    this.lock = lock;
    this.lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    this.journalEnabled = options.journal ?? true;
    this.openWarnings = warnings;
  }

  /** Creates the dir (0700) and db (0600) if needed, migrates, checks integrity; throws HOSTDEV_STATE. */
  static open(stateDir: string, options: StoreOptions = {}): StateStore {
    const dir = path.resolve(stateDir);
    const warnings = ensureStateDir(dir);
    const dbPath = path.join(dir, DB_FILE);
    if (databaseFile(dbPath) === 'absent') createFresh(dir, dbPath);
    for (const suffix of ['', '-wal', '-shm']) warnings.push(...tightenIfExists(dbPath + suffix));
    const lockPath = path.join(dir, LOCK_FILE);
    const roomPath = path.join(dir, WAITING_ROOM_FILE);
    warnings.push(...ensureFileMode(lockPath), ...ensureFileMode(roomPath));
    const db = openExisting(dbPath, options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS, warnings);
    const lost = lostCommitsWarning(dir, dbPath, db);
    if (lost !== null) warnings.push(lost);
    let lock: ProcessLock;
    try {
      lock = new ProcessLock(lockPath, roomPath);
    } catch (error) {
      db.close();
      throw new HostdevError('HOSTDEV_STATE', `cannot open the hostdev state lock ${lockPath}: ${String(error)}`, {
        hint: 'Check that the state directory is writable; lock.db and lock-waiters.db hold no data and may be deleted when no hostdev runs.',
        details: { path: lockPath },
        cause: error,
      });
    }
    return new StateStore(dir, db, lock, options, warnings);
  }

  /**
   * The state as it is now, copied into memory, for dry runs: nothing on disk is created, changed
   * or locked (no directory, no lock files, no migration written back). Commits and recovery's
   * changes then land in the copy only, so a dry run can plan on the tables as they would be.
   * A damaged or newer database is refused exactly as `open` refuses it.
   */
  static openSnapshot(stateDir: string): StateStore {
    const dir = path.resolve(stateDir);
    const dbPath = path.join(dir, DB_FILE);
    const warnings: string[] = [];
    const db = databaseFile(dbPath) === 'file' ? snapshotOf(dbPath, warnings) : freshInMemory();
    const lost = lostCommitsWarning(dir, dbPath, db);
    if (lost !== null) warnings.push(lost);
    return new StateStore(dir, db, new InProcessLock(), {}, warnings, true);
  }

  /** A consistent snapshot of both tables (one read transaction), no lock needed. */
  readTables(): Tables {
    this.assertOpen();
    return this.db.transaction(() => this.selectTables())();
  }

  /** Journal rows not yet cleared (for `status`; recovery reads them under the lock). */
  readJournal(): readonly JournalRecord[] {
    this.assertOpen();
    return this.selectJournal();
  }

  /** Tables and journal from one snapshot: a row in neither means no operation was under way. */
  readState(): { readonly tables: Tables; readonly journal: readonly JournalRecord[] } {
    this.assertOpen();
    return this.db.transaction(() => ({ tables: this.selectTables(), journal: this.selectJournal() }))();
  }

  private selectJournal(): JournalRecord[] {
    return (this.db.prepare('SELECT * FROM journal ORDER BY id').all() as JournalRow[]).map(journalRecord);
  }

  /** Which of these addresses have an entry in the active table (keyed reads). */
  activeAmong(addresses: Iterable<PciAddress>): ReadonlySet<PciAddress> {
    this.assertOpen();
    const at = this.statement('SELECT 1 FROM active WHERE key = ?');
    return new Set([...addresses].filter((address) => at.get(pciKey(address)) !== undefined));
  }

  readVfConfigs(): readonly VfConfig[] {
    this.assertOpen();
    return (this.db.prepare('SELECT * FROM vf_config ORDER BY address').all() as VfConfigRow[]).map(vfConfig);
  }

  /** Entries of other kinds than PCI (mdev, USB), no lock needed. */
  readDevices(): readonly DeviceEntry[] {
    this.assertOpen();
    return this.selectDevices();
  }

  /** @internal */
  selectDevices(): DeviceEntry[] {
    const sharers = new Map<string, Owner[]>();
    for (const row of this.db.prepare('SELECT key, owner_driver, owner_domain FROM device_sharer ORDER BY key, position').all() as SharerRow[]) {
      sharers.set(row.key, [...(sharers.get(row.key) ?? []), makeOwner(row.owner_driver, row.owner_domain)]);
    }
    return (this.db.prepare("SELECT * FROM active WHERE key NOT LIKE 'pci:%' ORDER BY key").all() as ActiveRow[]).map((row) => deviceEntry(row, sharers.get(row.key)));
  }

  readDepartedDevices(): readonly DepartedDevice[] {
    this.assertOpen();
    return (this.db.prepare('SELECT * FROM departed_device ORDER BY departed_at, key').all() as DepartedDeviceRow[]).map(departedDevice);
  }

  /** Departed VFs still remembered (no lock needed), oldest first. */
  readDeparted(): readonly DepartedVfRecord[] {
    this.assertOpen();
    return (this.db.prepare(SELECT_DEPARTED).all() as DepartedRow[]).map(departedRecord);
  }

  /** The holders of domains (no lock needed). */
  readHolders(): readonly DomainHolder[] {
    this.assertOpen();
    return (this.db.prepare(SELECT_HOLDERS).all() as HolderRow[]).map(domainHolder);
  }

  /** The report recovery/reconcile stored last (null before the first one). */
  lastReport(): StoredReport | null {
    return this.recentReports()[0] ?? null;
  }

  /** The recent recovery reports, newest first (the row holds a list; an older hostdev wrote one report). */
  recentReports(): StoredReport[] {
    this.assertOpen();
    return recentReportsIn(this.db);
  }

  schemaVersion(): number {
    return schemaVersion(this.db);
  }

  /** The boot this process runs in (core/boot.ts): every entry a commit writes is stamped with it. */
  get bootId(): string | null {
    return this.currentBoot;
  }

  /**
   * Says which boot this is, and takes entries without a boot id (written before hostdev recorded
   * boots) as made in it, so an upgrade releases nothing. Idempotent; a snapshot changes its copy only.
   */
  useBoot(bootId: string | null): void {
    this.assertOpen();
    this.currentBoot = bootId;
    if (bootId === null) return;
    // Read first: most opens find nothing to stamp and then write nothing.
    const unstamped = this.db.prepare('SELECT 1 FROM active WHERE boot_id IS NULL UNION ALL SELECT 1 FROM inactive WHERE boot_id IS NULL LIMIT 1').get();
    if (unstamped === undefined) return;
    this.db.transaction(() => {
      for (const table of ['active', 'inactive']) this.db.prepare(`UPDATE ${table} SET boot_id = ? WHERE boot_id IS NULL`).run(bootId);
      // A change of the tables, counted as commits are: the tables read before are stale.
      this.db.prepare(COUNT_COMMIT).run();
    })();
  }

  /** The host fingerprint (HostReader.hostFingerprint) at which every entry was last found consistent; null: never, or not since a change. */
  reconciledAt(): string | null {
    this.assertOpen();
    return reconciledIn(this.db);
  }

  /**
   * The host this state belongs to: the id recorded first (meta "host_id"); `id` is recorded when
   * none is yet (in a snapshot's copy only, like any dry-run change).
   */
  claimHost(id: string): string {
    this.assertOpen();
    this.db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('host_id', ?)").run(id);
    return (this.db.prepare("SELECT value FROM meta WHERE key = 'host_id'").get() as { value: string }).value;
  }

  /**
   * Runs `fn` holding the cross-process exclusive lock (dies with the process; bounded wait ->
   * HOSTDEV_BUSY). Calls from one process queue up in order; a nested call would wait for
   * itself, so it is refused. `operationId` names the operation (its journal rows and
   * `Operation.id`); a fresh UUID when not given.
   */
  exclusive<T>(operationName: OperationName, fn: (op: Operation) => Promise<T>, operationId?: string): Promise<T> {
    this.assertOpen();
    const outer = this.inside.getStore();
    if (outer !== undefined) {
      return Promise.reject(
        new HostdevError('HOSTDEV_INTERNAL', `"${operationName}" asked for the state lock inside "${outer}"`, {
          hint: `${BUG_HINT} An operation must not wait for the lock it holds; run "${operationName}" after "${outer}".`,
        }),
      );
    }
    const run = async (): Promise<T> => {
      await this.lock.acquire(this.lockTimeoutMs, operationName, () => this.lockHolder());
      return this.holding(operationName, fn, operationId);
    };
    this.pending += 1;
    const result = this.queue.then(run, run).finally(() => (this.pending -= 1));
    this.queue = result.catch(() => undefined);
    return result;
  }

  /**
   * `exclusive()` for readers that must not wait: runs `fn` only if the lock is free at once (in
   * this process and across processes); null when another operation holds it or is queued.
   */
  async tryExclusive<T>(operationName: OperationName, fn: (op: Operation) => Promise<T>): Promise<T | null> {
    this.assertOpen();
    if (this.pending > 0 || this.inside.getStore() !== undefined || !this.lock.tryAcquire()) return null;
    this.pending += 1;
    const result = this.holding(operationName, fn).finally(() => (this.pending -= 1));
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Runs `fn` with the lock already taken, and releases it. */
  private async holding<T>(operationName: OperationName, fn: (op: Operation) => Promise<T>, operationId?: string): Promise<T> {
    const op = new LockedOperation(this, operationName, operationId ?? randomUUID());
    try {
      // Before anything is changed: room for this operation's journal and commit.
      if (!this.snapshot) this.reserve.ensure();
      return await this.inside.run(operationName, () => fn(op));
    } finally {
      op.finish();
      this.lock.release();
    }
  }

  /**
   * Who holds the lock, as far as the journal tells: intents are only written under the lock and
   * cleared when the operation commits, so a live process with journal rows is the holder. An
   * operation that has written none yet is not known.
   */
  private lockHolder(): LockHolder | null {
    const rows = this.db
      .prepare('SELECT op_name, pid FROM journal ORDER BY id DESC')
      .all() as Pick<JournalRow, 'op_name' | 'pid'>[];
    const row = rows.find((candidate) => processAlive(candidate.pid));
    return row === undefined ? null : { operation: row.op_name, pid: row.pid };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.lock.close();
    this.db.close();
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new HostdevError('HOSTDEV_INTERNAL', 'the state store is closed', {
        hint: `${BUG_HINT} Close the store (or HostdevManager) only after its last operation.`,
      });
    }
  }

  /**
   * @internal used by LockedOperation; inside a transaction. Every change of the tables is counted
   * in the same transaction (COUNT_COMMIT), so while the count stands the tables read last are the
   * tables: a full walk (recovery at open, then status) decodes them once, not three times.
   */
  selectTables(): Tables {
    const commits = commitCount(this.db);
    if (this.lastTables?.commits === commits) return this.lastTables.tables;
    const tables: Tables = {
      active: (this.statement('SELECT * FROM active ORDER BY key').all() as ActiveRow[]).filter(isPciRow).map(activeEntry),
      inactive: (this.statement('SELECT * FROM inactive ORDER BY key').all() as InactiveRow[]).map(inactiveEntry),
    };
    this.lastTables = { commits, tables };
    return tables;
  }

  /** @internal */
  get database(): Database.Database {
    return this.db;
  }

  /** @internal The space kept free for the journal and the commit of an operation. */
  get reserve(): SpaceReserve {
    this.spaceReserve ??= new SpaceReserve(path.join(this.stateDir, RESERVE_FILE), this.dbPath);
    return this.spaceReserve;
  }

  /** @internal A statement prepared once for this connection (the journal and the commit run theirs on every write). */
  statement(sql: string): Database.Statement {
    let prepared = this.statements.get(sql);
    if (prepared === undefined) {
      prepared = this.db.prepare(sql);
      this.statements.set(sql, prepared);
    }
    return prepared;
  }

  /**
   * @internal Runs a write of the database; a full filesystem gives up the reserve and tries once
   * more, then ends in HOSTDEV_STATE (exit 7): the journal rows written so far stay, so the next
   * command's recovery can roll the operation's devices back.
   */
  writing<T>(fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      if (!isDiskFull(error)) throw error;
      if (this.reserve.release()) {
        try {
          return fn();
        } catch (again) {
          if (!isDiskFull(again)) throw again;
          throw diskFull(this.dbPath, again);
        }
      }
      throw diskFull(this.dbPath, error);
    }
  }

  /**
   * @internal After a commit: copies the WAL into state.db (PASSIVE: readers are not waited for,
   * a `watch` holding the database open included), so state.db alone is never far behind, and
   * records the commit count beside it, so a lost WAL is noticed at the next open.
   */
  checkpoint(): void {
    try {
      this.db.pragma('wal_checkpoint(PASSIVE)');
      const commits = commitCount(this.db);
      const file = path.join(this.stateDir, COMMITS_FILE);
      fs.writeFileSync(`${file}.tmp`, `${commits}\n`, { mode: 0o600 });
      fs.renameSync(`${file}.tmp`, file);
    } catch {
      // The commit itself is durable; the copy and the count are only for noticing a lost WAL.
    }
  }
}

const RESERVE_FILE = 'reserve';
/** Room for the journal rows and the commit of an operation, in the WAL, with margin. */
const RESERVE_BYTES = 256 * 1024;

function isDiskFull(error: unknown): boolean {
  const code = sqliteCode(error);
  return code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'SQLITE_IOERR_WRITE' || code === 'SQLITE_IOERR_FSYNC';
}

function diskFull(dbPath: string, cause: unknown): HostdevError {
  return new HostdevError('HOSTDEV_STATE', `the hostdev state database ${dbPath} cannot be written: its filesystem is full`, {
    hint: 'Free space on the filesystem of the state directory (df), then run `hostdev status`: it rolls back what this command left unfinished.',
    details: { path: dbPath, sqlite: sqliteCode(cause) ?? String(cause) },
    cause,
  });
}

/**
 * A file of RESERVE_BYTES kept in the state directory: an operation refuses to start when it
 * cannot be made, and a write that finds the filesystem full deletes it to finish.
 */
class SpaceReserve {
  constructor(
    private readonly file: string,
    private readonly dbPath: string,
  ) {}

  ensure(): void {
    try {
      if (fs.statSync(this.file).size >= RESERVE_BYTES) return;
    } catch {
      // not there yet
    }
    try {
      fs.writeFileSync(this.file, Buffer.alloc(RESERVE_BYTES), { mode: 0o600 });
      const fd = fs.openSync(this.file, 'r');
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    } catch (error) {
      fs.rmSync(this.file, { force: true });
      if ((error as NodeJS.ErrnoException).code === 'ENOSPC') throw diskFull(this.dbPath, error);
      throw error;
    }
  }

  /** Gives the space back to the filesystem; false when there was none left to give. */
  release(): boolean {
    try {
      fs.unlinkSync(this.file);
      return true;
    } catch {
      return false;
    }
  }
}

const RECONCILED_KEY = 'reconciled_at';

function reconciledIn(db: Database.Database): string | null {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(RECONCILED_KEY) as { value: string } | undefined;
  return row?.value ?? null;
}

/** Counts commits in meta, in the commit's own transaction. */
const COUNT_COMMIT =
  "INSERT INTO meta (key, value) VALUES ('commits', '1') ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1";
/** The commit count the last commit wrote beside the database. */
const COMMITS_FILE = 'state.commits';

function commitCount(db: Database.Database): number {
  const row = db.prepare("SELECT value FROM meta WHERE key = 'commits'").get() as { value: string } | undefined;
  return row === undefined ? 0 : Number(row.value);
}

/**
 * A warning when the database holds fewer commits than the last commit recorded beside it: its
 * write-ahead log (state.db-wal) was deleted or lost before it was copied in, and with it the
 * changes of those commits.
 */
function lostCommitsWarning(dir: string, dbPath: string, db: Database.Database): string | null {
  let recorded: number;
  try {
    recorded = Number(fs.readFileSync(path.join(dir, COMMITS_FILE), 'utf8').trim());
  } catch {
    return null;
  }
  const held = commitCount(db);
  if (!Number.isInteger(recorded) || recorded <= held) return null;
  return (
    `integrity: the state database ${dbPath} holds ${held} commits but ${recorded} were made: its write-ahead log ` +
    `(${DB_FILE}-wal) was lost, and with it the table changes of the last ${recorded - held}; compare \`hostdev status\` with \`hostdev list\` (devices on vfio-pci in no table)`
  );
}

class LockedOperation implements Operation {
  readonly id: string;
  readonly name: string;
  private readonly store: StateStore;
  private finished = false;
  /** Journal rows whose write is done, marked with the next durable commit (see done()). */
  private pendingDone: number[] = [];
  /** What markReconciled set, written by the next commit (undefined: leave it as it is). */
  private pendingReconciled: string | null | undefined = undefined;

  constructor(store: StateStore, name: string, id: string) {
    this.id = id;
    this.store = store;
    this.name = name;
  }

  finish(): void {
    this.finished = true;
  }

  private get db(): Database.Database {
    if (this.finished) {
      throw new HostdevError('HOSTDEV_INTERNAL', `operation "${this.name}" used after its state lock was released`, {
        hint: `${BUG_HINT} An Operation is valid only inside the exclusive() callback that received it.`,
      });
    }
    return this.store.database;
  }

  tables(): Tables {
    const db = this.db;
    return db.transaction(() => this.store.selectTables())();
  }

  lookup(addresses: Iterable<PciAddress>): Tables {
    void this.db;
    const activeAt = this.store.statement('SELECT * FROM active WHERE key = ?');
    const inactiveAt = this.store.statement('SELECT * FROM inactive WHERE key = ?');
    const active: ActiveEntry[] = [];
    const inactive: InactiveEntry[] = [];
    for (const key of [...new Set([...addresses].map(pciKey))].sort()) {
      const a = activeAt.get(key) as ActiveRow | undefined;
      if (a) active.push(activeEntry(a));
      const i = inactiveAt.get(key) as InactiveRow | undefined;
      if (i) inactive.push(inactiveEntry(i));
    }
    return { active, inactive };
  }

  ownedBy(owner: Owner): readonly ActiveEntry[] {
    const rows = this.db
      .prepare('SELECT * FROM active WHERE owner_driver = ? AND owner_domain = ? ORDER BY key')
      .all(owner.hypervisor, owner.vm) as ActiveRow[];
    return rows.filter(isPciRow).map(activeEntry);
  }

  inactive(): readonly InactiveEntry[] {
    return (this.db.prepare('SELECT * FROM inactive ORDER BY key').all() as InactiveRow[]).map(inactiveEntry);
  }

  intend(step: JournalStep): JournalHandle {
    return this.intendAll([step])[0]!;
  }

  intendAll(steps: readonly JournalStep[]): JournalHandle[] {
    const db = this.db;
    if (!this.store.journalEnabled) return steps.map(() => ({ id: -1 }));
    const insert = this.store.statement(
      `INSERT INTO journal (op_id, op_name, pid, address, action, host_path, value, restore_driver, restore_override, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const at = now();
    // One transaction, on disk (WAL fsynced, synchronous=FULL) when it returns, with the done
    // marks of earlier writes that waited for it.
    const write = db.transaction((): JournalHandle[] => {
      this.flushDone();
      return steps.map((step) => {
        const result = insert.run(
          this.id,
          this.name,
          process.pid,
          step.address,
          step.action,
          step.hostPath,
          step.value,
          step.restore.driver,
          step.restore.driverOverride,
          at,
        );
        return { id: Number(result.lastInsertRowid) };
      });
    });
    const handles = this.store.writing(() => write.immediate());
    this.pendingDone = [];
    return handles;
  }

  done(handle: JournalHandle): void {
    void this.db; // refuses an operation used after its lock was released
    // No commit of its own: recovery reads the device and never trusts `done`, so the mark waits
    // for the operation's next durable commit (its next intents; commit() clears the rows anyway).
    if (handle.id >= 0) this.pendingDone.push(handle.id);
  }

  /** Inside a transaction: the done marks not written yet. */
  private flushDone(): void {
    if (this.pendingDone.length === 0) return;
    const mark = this.store.statement('UPDATE journal SET done = 1 WHERE id = ? AND op_id = ?');
    for (const id of this.pendingDone) mark.run(id, this.id);
  }

  reconciledAt(): string | null {
    return reconciledIn(this.db);
  }

  markReconciled(fingerprint: string | null): void {
    void this.db;
    this.pendingReconciled = fingerprint;
  }

  unfinished(): readonly JournalRecord[] {
    const rows = this.db.prepare('SELECT * FROM journal WHERE op_id <> ? ORDER BY id').all(this.id) as JournalRow[];
    return rows.filter(isPciJournalRow).map(journalRecord);
  }

  unfinishedDevices(): readonly DeviceJournalRecord[] {
    const rows = this.db.prepare('SELECT * FROM journal WHERE op_id <> ? ORDER BY id').all(this.id) as JournalRow[];
    return rows
      .filter((row) => !isPciJournalRow(row))
      .map((row) => ({
        id: row.id,
        operationId: row.op_id,
        operationName: row.op_name,
        pid: row.pid,
        key: row.address as DeviceKey,
        action: row.action as DeviceJournalStep['action'],
        hostPath: row.host_path,
        value: row.value,
        done: row.done === 1,
      }));
  }

  intendDevice(step: DeviceJournalStep): JournalHandle {
    return this.intend({ address: step.key as string as PciAddress, action: step.action, hostPath: step.hostPath, value: step.value, restore: { driver: null, driverOverride: null } });
  }

  devices(): readonly DeviceEntry[] {
    void this.db;
    return this.store.selectDevices();
  }

  departedDevices(): readonly DepartedDevice[] {
    void this.db;
    return this.store.readDepartedDevices();
  }

  vfConfigs(): readonly VfConfig[] {
    return (this.db.prepare('SELECT * FROM vf_config ORDER BY address').all() as VfConfigRow[]).map(vfConfig);
  }

  vfHomes(addresses: Iterable<PciAddress>): ReadonlyMap<PciAddress, VfIdentity> {
    const at = this.db.prepare('SELECT pf, vf_index FROM vf_home WHERE address = ?');
    const homes = new Map<PciAddress, VfIdentity>();
    for (const address of new Set(addresses)) {
      const row = at.get(address) as { pf: string; vf_index: number } | undefined;
      if (row) homes.set(address, { pf: row.pf as PciAddress, vfIndex: row.vf_index });
    }
    return homes;
  }

  departed(): readonly DepartedVfRecord[] {
    return (this.db.prepare(SELECT_DEPARTED).all() as DepartedRow[]).map(departedRecord);
  }

  commit(changes: readonly StateChange[], options: CommitOptions = {}): void {
    const db = this.db;
    const at = now();
    const upsertActive = this.store.statement(
      `INSERT INTO active (key, owner_driver, owner_domain, managed, stub_driver, original_driver, updated_at, boot_id, hardware)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET owner_driver = excluded.owner_driver, owner_domain = excluded.owner_domain,
         managed = excluded.managed, stub_driver = excluded.stub_driver, original_driver = excluded.original_driver,
         updated_at = excluded.updated_at, boot_id = excluded.boot_id, hardware = coalesce(excluded.hardware, active.hardware)`,
    );
    const upsertInactive = this.store.statement(
      `INSERT INTO inactive (key, managed, stub_driver, original_driver, updated_at, boot_id, hardware) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET managed = excluded.managed, stub_driver = excluded.stub_driver,
         original_driver = excluded.original_driver, updated_at = excluded.updated_at, boot_id = excluded.boot_id,
         hardware = coalesce(excluded.hardware, inactive.hardware)`,
    );
    // An entry that moves between the tables keeps the identity it was made with.
    const heldHardware = this.store.statement('SELECT hardware FROM active WHERE key = ? UNION ALL SELECT hardware FROM inactive WHERE key = ?');
    const hardwareOf = (entry: { key: string; hardware?: HardwareIdentity | null }): string | null => {
      if (entry.hardware !== undefined && entry.hardware !== null) return JSON.stringify(entry.hardware);
      const row = heldHardware.get(entry.key, entry.key) as { hardware: string | null } | undefined;
      return row?.hardware ?? null;
    };
    const bootId = this.store.bootId;
    const deleteActive = this.store.statement('DELETE FROM active WHERE key = ?');
    const deleteInactive = this.store.statement('DELETE FROM inactive WHERE key = ?');
    const upsertVf = this.store.statement(
      `INSERT OR REPLACE INTO vf_config (address, pf, vf_index, mac, vlan, spoofchk, trust, saved_at, requested)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const deleteVf = this.store.statement('DELETE FROM vf_config WHERE address = ?');
    const upsertHome = this.store.statement('INSERT OR REPLACE INTO vf_home (address, pf, vf_index) VALUES (?, ?, ?)');
    const deleteHome = this.store.statement('DELETE FROM vf_home WHERE address = ?');
    const upsertDeparted = this.store.statement(
      `INSERT OR REPLACE INTO departed_vf (pf, vf_index, address, former_table, owner_driver, owner_domain, managed,
         stub_driver, original_driver, vf_config, domain_config, pruned_by, departed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const upsertHolder = this.store.statement(
      `INSERT OR REPLACE INTO domain_holder (owner_driver, owner_domain, kind, pid, start_time, qmp_socket, since)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    const deleteHolder = this.store.statement('DELETE FROM domain_holder WHERE owner_driver = ? AND owner_domain = ?');
    // A holder keeps a domain's devices: a domain that holds none has nothing left to keep.
    const dropEmptyHolders = this.store.statement(
      `DELETE FROM domain_holder WHERE NOT EXISTS
         (SELECT 1 FROM active WHERE active.owner_driver = domain_holder.owner_driver AND active.owner_domain = domain_holder.owner_domain)
       AND NOT EXISTS
         (SELECT 1 FROM device_sharer s WHERE s.owner_driver = domain_holder.owner_driver AND s.owner_domain = domain_holder.owner_domain)`,
    );
    const deleteDeparted = this.store.statement('DELETE FROM departed_vf WHERE pf = ? AND vf_index = ?');
    const upsertDevice = db.prepare(
      `INSERT INTO active (key, owner_driver, owner_domain, managed, stub_driver, original_driver, updated_at, identity, shareable)
       VALUES (?, ?, ?, 0, '', NULL, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET owner_driver = excluded.owner_driver, owner_domain = excluded.owner_domain,
         identity = excluded.identity, updated_at = excluded.updated_at, shareable = excluded.shareable`,
    );
    const deleteSharers = this.store.statement('DELETE FROM device_sharer WHERE key = ?');
    const insertSharer = this.store.statement('INSERT INTO device_sharer (key, position, owner_driver, owner_domain) VALUES (?, ?, ?, ?)');
    const upsertDepartedDevice = db.prepare(
      `INSERT OR REPLACE INTO departed_device (key, kind, owner_driver, owner_domain, identity, pruned_by, departed_at, shareable, shared_by)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const deleteDepartedDevice = db.prepare('DELETE FROM departed_device WHERE key = ?');
    const json = (value: unknown): string | null => (value === null || value === undefined ? null : JSON.stringify(value));
    const clearJournal = this.store.statement('DELETE FROM journal WHERE op_id = ?');
    const apply = db.transaction(() => {
      for (const change of changes) {
        switch (change.kind) {
          case 'set-active': {
            const e = change.entry;
            upsertActive.run(e.key, e.usedBy.hypervisor, e.usedBy.vm, bit(e.managed), e.stubDriver, e.originalDriver, at, bootId, hardwareOf(e));
            deleteInactive.run(e.key);
            break;
          }
          case 'set-inactive': {
            const e = change.entry;
            upsertInactive.run(e.key, bit(e.managed), e.stubDriver, e.originalDriver, at, bootId, hardwareOf(e));
            deleteActive.run(e.key);
            break;
          }
          case 'remove':
            deleteActive.run(change.key);
            deleteInactive.run(change.key);
            deleteHome.run(change.address);
            break;
          case 'save-vf-config': {
            const c = change.config;
            upsertVf.run(c.address, c.pf, c.vfIndex, c.mac, c.vlan, optBit(c.spoofchk), optBit(c.trust), at, json(c.requested));
            break;
          }
          case 'drop-vf-config':
            deleteVf.run(change.address);
            break;
          case 'note-vf':
            upsertHome.run(change.address, change.pf, change.vfIndex);
            break;
          case 'record-departed': {
            const r = change.record;
            const e = r.former.entry;
            upsertDeparted.run(
              r.pf,
              r.vfIndex,
              r.address,
              r.former.table,
              r.owner?.hypervisor ?? null,
              r.owner?.vm ?? null,
              bit(e.managed),
              e.stubDriver,
              e.originalDriver,
              json(r.vfConfig),
              json(r.domainConfig),
              r.prunedBy,
              at,
            );
            break;
          }
          case 'drop-departed':
            deleteDeparted.run(change.pf, change.vfIndex);
            break;
          case 'set-holder': {
            const { owner, holder } = change.holder;
            upsertHolder.run(
              owner.hypervisor,
              owner.vm,
              holder.kind,
              holder.kind === 'pid' ? holder.pid : null,
              holder.kind === 'pid' ? holder.startTime : null,
              holder.kind === 'qmp' ? holder.socket : null,
              at,
            );
            break;
          }
          case 'drop-holder':
            deleteHolder.run(change.owner.hypervisor, change.owner.vm);
            break;
          case 'set-device': {
            const e = change.entry;
            upsertDevice.run(e.key, e.usedBy.hypervisor, e.usedBy.vm, at, json(e.identity), e.shareable === true ? 1 : null);
            deleteSharers.run(e.key);
            for (const [position, owner] of (e.sharedBy ?? []).entries()) insertSharer.run(e.key, position, owner.hypervisor, owner.vm);
            deleteDepartedDevice.run(e.key);
            break;
          }
          case 'remove-device':
            deleteActive.run(change.key);
            deleteSharers.run(change.key);
            break;
          case 'record-departed-device': {
            const e = change.entry;
            upsertDepartedDevice.run(
              e.key,
              e.kind,
              e.usedBy.hypervisor,
              e.usedBy.vm,
              json(e.identity),
              change.prunedBy,
              change.departedAt ?? at,
              e.shareable === true ? 1 : null,
              sharersJson(e.sharedBy),
            );
            break;
          }
          case 'drop-departed-device':
            deleteDepartedDevice.run(change.key);
            break;
        }
      }
      dropEmptyHolders.run();
      for (const opId of [this.id, ...(options.resolve ?? [])]) clearJournal.run(opId);
      this.store.statement(COUNT_COMMIT).run();
      if (this.pendingReconciled !== undefined) {
        const fingerprint = this.pendingReconciled;
        if (fingerprint === null) this.store.statement('DELETE FROM meta WHERE key = ?').run(RECONCILED_KEY);
        else this.store.statement('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(RECONCILED_KEY, fingerprint);
      }
      if (options.report !== undefined) {
        const by = options.reportedBy ?? this.name;
        const recent = [{ at, operation: by, report: options.report }, ...recentReportsIn(db)].slice(0, RECENT_REPORTS);
        db.prepare('INSERT OR REPLACE INTO last_report (id, at, operation, report) VALUES (1, ?, ?, ?)').run(
          at,
          by,
          JSON.stringify({ recent }),
        );
      }
    });
    this.store.writing(() => apply.immediate());
    this.pendingDone = []; // their rows went with the commit
    this.pendingReconciled = undefined;
    if (!this.store.snapshot) this.store.checkpoint();
  }
}
