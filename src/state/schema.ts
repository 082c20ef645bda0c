import type Database from 'better-sqlite3';

/**
 * Versioned schema. `PRAGMA user_version` is the authority (it lives in the database header and
 * changes in the same transaction as the migration); `schema_migrations` keeps a readable history.
 * Migrations are append-only: never edit a released one, add the next version instead.
 */
interface Migration {
  readonly version: number;
  readonly description: string;
  readonly up: (db: Database.Database) => void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'active and inactive tables, intent journal, meta',
    up: (db) =>
      db.exec(`
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
        CREATE TABLE schema_migrations (
          version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL
        ) STRICT;
        CREATE TABLE active (
          address TEXT PRIMARY KEY,
          owner_driver TEXT NOT NULL,
          owner_domain TEXT NOT NULL,
          managed INTEGER NOT NULL CHECK (managed IN (0, 1)),
          stub_driver TEXT NOT NULL,
          original_driver TEXT,
          updated_at TEXT NOT NULL
        ) STRICT;
        CREATE TABLE inactive (
          address TEXT PRIMARY KEY,
          managed INTEGER NOT NULL CHECK (managed IN (0, 1)),
          stub_driver TEXT NOT NULL,
          original_driver TEXT,
          updated_at TEXT NOT NULL
        ) STRICT;
        CREATE TABLE journal (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          op_id TEXT NOT NULL,
          op_name TEXT NOT NULL,
          pid INTEGER NOT NULL,
          address TEXT NOT NULL,
          action TEXT NOT NULL,
          host_path TEXT NOT NULL,
          value TEXT NOT NULL,
          restore_driver TEXT,
          restore_override TEXT,
          done INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
          created_at TEXT NOT NULL
        ) STRICT;
        CREATE INDEX journal_by_op ON journal (op_id);
      `),
  },
  {
    version: 2,
    description: 'saved VF network config, last recovery report',
    up: (db) =>
      db.exec(`
        CREATE TABLE vf_config (
          address TEXT PRIMARY KEY,
          pf TEXT NOT NULL,
          vf_index INTEGER NOT NULL,
          mac TEXT,
          vlan INTEGER,
          spoofchk INTEGER CHECK (spoofchk IN (0, 1)),
          trust INTEGER CHECK (trust IN (0, 1)),
          saved_at TEXT NOT NULL
        ) STRICT;
        CREATE TABLE last_report (
          id INTEGER PRIMARY KEY CHECK (id = 1),
          at TEXT NOT NULL,
          operation TEXT NOT NULL,
          report TEXT NOT NULL
        ) STRICT;
      `),
  },
  {
    version: 3,
    description: 'index of active entries by owner (release reads one domain)',
    up: (db) => db.exec('CREATE INDEX active_by_owner ON active (owner_driver, owner_domain);'),
  },
  {
    version: 4,
    description: 'departed VFs (pruned while held, awaited back), VF identities of table entries, requested VF config',
    up: (db) =>
      db.exec(`
        CREATE TABLE vf_home (
          address TEXT PRIMARY KEY,
          pf TEXT NOT NULL,
          vf_index INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE departed_vf (
          pf TEXT NOT NULL,
          vf_index INTEGER NOT NULL,
          address TEXT NOT NULL,
          former_table TEXT NOT NULL CHECK (former_table IN ('active', 'inactive')),
          owner_driver TEXT,
          owner_domain TEXT,
          managed INTEGER NOT NULL CHECK (managed IN (0, 1)),
          stub_driver TEXT NOT NULL,
          original_driver TEXT,
          vf_config TEXT,
          domain_config TEXT,
          pruned_by TEXT NOT NULL,
          departed_at TEXT NOT NULL,
          PRIMARY KEY (pf, vf_index)
        ) STRICT;
        CREATE INDEX departed_by_owner ON departed_vf (owner_driver, owner_domain);
        ALTER TABLE vf_config ADD COLUMN requested TEXT;
      `),
  },
  {
    version: 5,
    description: 'table entries keyed by device key (pci:ADDRESS) instead of the bare PCI address',
    up: (db) =>
      db.exec(`
        ALTER TABLE active RENAME COLUMN address TO key;
        UPDATE active SET key = 'pci:' || key;
        ALTER TABLE inactive RENAME COLUMN address TO key;
        UPDATE inactive SET key = 'pci:' || key;
      `),
  },
  {
    version: 6,
    description: 'holders of domains: a process (pid and start time) or a QMP socket whose end releases the domain',
    up: (db) =>
      db.exec(`
        CREATE TABLE domain_holder (
          owner_driver TEXT NOT NULL,
          owner_domain TEXT NOT NULL,
          kind TEXT NOT NULL CHECK (kind IN ('pid', 'qmp')),
          pid INTEGER,
          start_time TEXT,
          qmp_socket TEXT,
          since TEXT NOT NULL,
          PRIMARY KEY (owner_driver, owner_domain),
          CHECK ((kind = 'pid' AND pid IS NOT NULL AND start_time IS NOT NULL) OR (kind = 'qmp' AND qmp_socket IS NOT NULL))
        ) STRICT;
      `),
  },
  {
    version: 7,
    description: 'entries of other kinds than PCI (mdev, USB): their identity, and the ones that departed while held',
    up: (db) =>
      db.exec(`
        ALTER TABLE active ADD COLUMN identity TEXT;
        CREATE TABLE departed_device (
          key TEXT PRIMARY KEY,
          kind TEXT NOT NULL,
          owner_driver TEXT NOT NULL,
          owner_domain TEXT NOT NULL,
          identity TEXT,
          pruned_by TEXT NOT NULL,
          departed_at TEXT NOT NULL
        ) STRICT;
      `),
  },
  {
    version: 8,
    description: 'the boot each table entry was made in, and the hardware identity of its device (IDs, serials, VPD)',
    up: (db) =>
      db.exec(`
        ALTER TABLE active ADD COLUMN boot_id TEXT;
        ALTER TABLE active ADD COLUMN hardware TEXT;
        ALTER TABLE inactive ADD COLUMN boot_id TEXT;
        ALTER TABLE inactive ADD COLUMN hardware TEXT;
      `),
  },
  {
    version: 9,
    description: 'SCSI devices shared among domains (libvirt\'s <shareable/>): the flag, and the domains besides the first that hold one',
    up: (db) =>
      db.exec(`
        ALTER TABLE active ADD COLUMN shareable INTEGER CHECK (shareable IN (0, 1));
        CREATE TABLE device_sharer (
          key TEXT NOT NULL,
          position INTEGER NOT NULL,
          owner_driver TEXT NOT NULL,
          owner_domain TEXT NOT NULL,
          PRIMARY KEY (key, owner_driver, owner_domain)
        ) STRICT;
        CREATE INDEX device_sharer_by_owner ON device_sharer (owner_driver, owner_domain);
        ALTER TABLE departed_device ADD COLUMN shareable INTEGER CHECK (shareable IN (0, 1));
        ALTER TABLE departed_device ADD COLUMN shared_by TEXT;
      `),
  },
];

export const SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** The tables every current database must have; a missing one means damage, not an old schema. */
export const REQUIRED_TABLES = [
  'meta',
  'schema_migrations',
  'active',
  'inactive',
  'journal',
  'vf_config',
  'last_report',
  'vf_home',
  'departed_vf',
  'domain_holder',
  'departed_device',
  'device_sharer',
];

export function schemaVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Applies the migrations above the database's version, each in its own IMMEDIATE transaction
 * that re-reads the version first (two processes may open an old database at once).
 * Returns the versions it applied.
 */
export function migrate(
  db: Database.Database,
  migrations: readonly Migration[] = MIGRATIONS,
  now: () => string = () => new Date().toISOString(),
): number[] {
  const applied: number[] = [];
  for (const migration of migrations) {
    const step = db.transaction(() => {
      if (schemaVersion(db) >= migration.version) return;
      migration.up(db);
      db.prepare('INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)').run(
        migration.version,
        migration.description,
        now(),
      );
      db.pragma(`user_version = ${migration.version}`);
      applied.push(migration.version);
    });
    step.immediate();
  }
  return applied;
}
