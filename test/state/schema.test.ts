import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DB_FILE, StateStore } from '../../src/state/store.js';
import { MIGRATIONS, REQUIRED_TABLES, SCHEMA_VERSION, migrate, schemaVersion } from '../../src/state/schema.js';
import type { PciAddress } from '../../src/core/address.js';
import { removeChange } from '../../src/core/tables.js';
import { active, inactive, tempDir } from './helpers.js';

/** A state directory holding a database at schema `version`, with the rows `write` puts in it. */
function oldDatabase(version: number, write: (db: Database.Database) => void): { dir: string; dbPath: string } {
  const dir = tempDir();
  fs.chmodSync(dir, 0o700);
  const dbPath = path.join(dir, DB_FILE);
  const old = new Database(dbPath);
  old.pragma('journal_mode = WAL');
  migrate(old, MIGRATIONS.filter((m) => m.version <= version));
  write(old);
  old.close();
  fs.chmodSync(dbPath, 0o600);
  return { dir, dbPath };
}

describe('schema migrations', () => {
  it('versions are 1..N in order, and the newest is SCHEMA_VERSION', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
  });

  it('a fresh database gets every migration, recorded in schema_migrations', () => {
    const db = new Database(':memory:');
    expect(migrate(db)).toEqual(MIGRATIONS.map((m) => m.version));
    expect(schemaVersion(db)).toBe(SCHEMA_VERSION);
    const history = db.prepare('SELECT version, description FROM schema_migrations ORDER BY version').all();
    expect(history).toEqual(MIGRATIONS.map((m) => ({ version: m.version, description: m.description })));
    expect(migrate(db)).toEqual([]); // idempotent
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name);
    expect(tables).toEqual(expect.arrayContaining(REQUIRED_TABLES));
  });

  it('every older version upgrades through StateStore.open and keeps its rows', async () => {
    for (const from of MIGRATIONS.map((m) => m.version).filter((version) => version < SCHEMA_VERSION)) {
      const at = new Date(0).toISOString();
      const { dir, dbPath } = oldDatabase(from, (old) => {
        // Version 5 keys entries by device key; the versions before it by the bare address.
        const key = (address: string): string => (from >= 5 ? `pci:${address}` : address);
        const column = from >= 5 ? 'key' : 'address';
        // Named columns: later versions add some (version 7 the identity of other kinds' entries).
        old
          .prepare(`INSERT INTO active (${column}, owner_driver, owner_domain, managed, stub_driver, original_driver, updated_at) VALUES (?, 'qemu', 'vm1', 1, 'vfio-pci', 'e1000e', ?)`)
          .run(key('0000:01:00.0'), at);
        old.prepare(`INSERT INTO inactive (${column}, managed, stub_driver, original_driver, updated_at) VALUES (?, 0, 'vfio-pci', 'e1000e', ?)`).run(key('0000:02:00.0'), at);
      });

      const store = StateStore.open(dir);
      expect(store.schemaVersion()).toBe(SCHEMA_VERSION);
      expect(store.openWarnings).toEqual([
        `migrated the state database ${dbPath} from schema version ${from} to ${SCHEMA_VERSION}`,
      ]);
      expect(store.readTables()).toEqual({ active: [active(1)], inactive: [inactive(2)] });
      expect(store.readVfConfigs()).toEqual([]);
      expect(store.lastReport()).toBeNull();
      store.close();
    }
  });

  it('two processes migrating the same old database at once apply each migration once', () => {
    const dir = tempDir();
    const dbPath = path.join(dir, DB_FILE);
    const a = new Database(dbPath);
    a.pragma('journal_mode = WAL');
    migrate(a, MIGRATIONS.slice(0, 1));
    const b = new Database(dbPath);
    expect(migrate(a)).toEqual(MIGRATIONS.slice(1).map((m) => m.version));
    expect(migrate(b)).toEqual([]);
    expect(b.prepare('SELECT count(*) AS n FROM schema_migrations').get()).toEqual({ n: MIGRATIONS.length });
    a.close();
    b.close();
  });
});

describe('migration 4: departed VFs', () => {
  it('keeps the saved VF config rows of version 3 (with no domain request) and starts with no departed VF', () => {
    const { dir } = oldDatabase(3, (old) =>
      old.prepare("INSERT INTO vf_config VALUES ('0000:01:10.0', 'eth1', 0, '00:00:00:00:00:00', 0, 1, 0, ?)").run(new Date(0).toISOString()),
    );

    const store = StateStore.open(dir);
    try {
      expect(store.schemaVersion()).toBeGreaterThanOrEqual(4);
      expect(store.readVfConfigs()).toEqual([
        { address: '0000:01:10.0', pf: 'eth1', vfIndex: 0, mac: '00:00:00:00:00:00', vlan: 0, spoofchk: true, trust: false },
      ]);
      expect(store.readDeparted()).toEqual([]);
    } finally {
      store.close();
    }
  });
});

describe('migration 5: entries keyed by device key', () => {
  /** Rows in every table the version has, as that version's hostdev wrote them. */
  function writeRows(db: Database.Database, version: number): void {
    const at = new Date(0).toISOString();
    db.prepare("INSERT INTO active VALUES ('0000:01:10.0', 'qemu', 'vm1', 1, 'vfio-pci', 'igbvf', ?)").run(at);
    db.prepare("INSERT INTO active VALUES ('0000:0a:00.0', 'xen', 'vm2', 0, 'vfio-pci', NULL, ?)").run(at);
    db.prepare("INSERT INTO inactive VALUES ('0000:02:00.0', 0, 'mlx5_vfio_pci', 'mlx5_core', ?)").run(at);
    db.prepare(
      `INSERT INTO journal (op_id, op_name, pid, address, action, host_path, value, restore_driver, restore_override, created_at)
       VALUES ('op-1', 'assign', 999999, '0000:01:10.0', 'set-override', '/sys/bus/pci/devices/0000:01:10.0/driver_override', 'vfio-pci', 'igbvf', NULL, ?)`,
    ).run(at);
    if (version >= 2) {
      db.prepare("INSERT INTO vf_config (address, pf, vf_index, mac, vlan, spoofchk, trust, saved_at) VALUES ('0000:01:10.0', 'eth1', 0, '02:00:00:00:00:01', 10, 1, NULL, ?)").run(at);
      db.prepare("INSERT INTO last_report VALUES (1, ?, 'recover', '{\"pruned\":[]}')").run(at);
    }
    if (version >= 4) {
      db.prepare("INSERT INTO vf_home VALUES ('0000:01:10.0', '0000:01:00.0', 0)").run();
      db.prepare(
        `INSERT INTO departed_vf VALUES ('0000:01:00.0', 2, '0000:01:10.4', 'active', 'qemu', 'vm1', 1, 'vfio-pci', 'igbvf', NULL, NULL, 'status', ?)`,
      ).run(at);
    }
  }

  it('opens a database of every older version with real rows and keeps every entry, now keyed pci:ADDRESS', () => {
    for (let from = 1; from < 5; from += 1) {
      const { dir } = oldDatabase(from, (old) => writeRows(old, from));

      const store = StateStore.open(dir);
      try {
        expect(store.schemaVersion()).toBe(SCHEMA_VERSION);
        expect(store.readTables()).toEqual({
          active: [
            { key: 'pci:0000:01:10.0', address: '0000:01:10.0', usedBy: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' }, managed: true, stubDriver: 'vfio-pci', originalDriver: 'igbvf' },
            { key: 'pci:0000:0a:00.0', address: '0000:0a:00.0', usedBy: { driver: 'xen', domain: 'vm2', hypervisor: 'xen', vm: 'vm2' }, managed: false, stubDriver: 'vfio-pci', originalDriver: null },
          ],
          inactive: [{ key: 'pci:0000:02:00.0', address: '0000:02:00.0', managed: false, stubDriver: 'mlx5_vfio_pci', originalDriver: 'mlx5_core' }],
        });
        expect(store.readJournal()).toEqual([expect.objectContaining({ address: '0000:01:10.0', operationName: 'assign', action: 'set-override' })]);
        expect(store.readVfConfigs()).toHaveLength(from >= 2 ? 1 : 0);
        expect(store.lastReport()?.operation ?? null).toBe(from >= 2 ? 'recover' : null);
        const departed = store.readDeparted();
        expect(departed).toHaveLength(from >= 4 ? 1 : 0);
        if (from >= 4) expect(departed[0]!.former.entry).toMatchObject({ key: 'pci:0000:01:10.4', address: '0000:01:10.4' });
        const columns = (table: string) => (store.database.prepare(`PRAGMA table_info(${table})`).all() as { name: string; pk: number }[]).filter((c) => c.pk === 1).map((c) => c.name);
        expect(columns('active')).toEqual(['key']);
        expect(columns('inactive')).toEqual(['key']);
      } finally {
        store.close();
      }
    }
  });

  it('a migrated database takes commits by key and an owner lookup still uses its index', async () => {
    const { dir } = oldDatabase(4, (old) => writeRows(old, 4));

    const store = StateStore.open(dir);
    try {
      await store.exclusive('assign', async (op) => {
        expect(op.ownedBy({ driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' }).map((e) => e.key)).toEqual(['pci:0000:01:10.0']);
        expect(op.lookup(['0000:02:00.0' as PciAddress]).inactive.map((e) => e.key)).toEqual(['pci:0000:02:00.0']);
        op.commit([removeChange('0000:01:10.0' as PciAddress), { kind: 'set-inactive', entry: inactive(3) }]);
      });
      const tables = store.readTables();
      expect(tables.active.map((e) => e.key)).toEqual(['pci:0000:0a:00.0']);
      expect(tables.inactive.map((e) => e.key)).toEqual(['pci:0000:02:00.0', 'pci:0000:03:00.0']);
      const plan = store.database.prepare("EXPLAIN QUERY PLAN SELECT * FROM active WHERE owner_driver = 'qemu' AND owner_domain = 'vm1'").all() as { detail: string }[];
      expect(plan.map((row) => row.detail).join(' ')).toMatch(/active_by_owner/);
    } finally {
      store.close();
    }
  });

  it('an entry of a kind this hostdev does not manage is refused with HOSTDEV_STATE, never misread', () => {
    const dir = tempDir();
    fs.chmodSync(dir, 0o700);
    const store = StateStore.open(dir);
    store.database.prepare("INSERT INTO inactive (key, managed, stub_driver, original_driver, updated_at) VALUES ('usb:1-2', 0, 'usbfs', NULL, 'x')").run();
    try {
      expect(() => store.readTables()).toThrow(expect.objectContaining({ code: 'HOSTDEV_STATE', message: expect.stringMatching(/usb:1-2/) }));
    } finally {
      store.close();
    }
  });
});
