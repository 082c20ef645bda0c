import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DB_FILE, StateStore } from '../../src/state/store.js';
import { MIGRATIONS, REQUIRED_TABLES, SCHEMA_VERSION, migrate, schemaVersion } from '../../src/state/schema.js';
import { active, inactive, tempDir } from './helpers.js';

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
    for (let from = 1; from < SCHEMA_VERSION; from += 1) {
      const dir = tempDir();
      fs.chmodSync(dir, 0o700);
      const dbPath = path.join(dir, DB_FILE);
      const old = new Database(dbPath);
      old.pragma('journal_mode = WAL');
      migrate(old, MIGRATIONS.slice(0, from));
      const at = new Date(0).toISOString();
      old.prepare(
        "INSERT INTO active VALUES ('0000:01:00.0', 'qemu', 'vm1', 1, 'vfio-pci', 'e1000e', ?)",
      ).run(at);
      old.prepare("INSERT INTO inactive VALUES ('0000:02:00.0', 0, 'vfio-pci', 'e1000e', ?)").run(at);
      old.close();
      fs.chmodSync(dbPath, 0o600);

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
    expect(b.prepare('SELECT count(*) AS n FROM schema_migrations').get()).toEqual({ n: SCHEMA_VERSION });
    a.close();
    b.close();
  });
});

describe('migration 4: departed VFs', () => {
  it('keeps the saved VF config rows of version 3 (with no domain request) and starts with no departed VF', () => {
    const dir = tempDir();
    fs.chmodSync(dir, 0o700);
    const dbPath = path.join(dir, DB_FILE);
    const old = new Database(dbPath);
    old.pragma('journal_mode = WAL');
    migrate(old, MIGRATIONS.slice(0, 3));
    old.prepare("INSERT INTO vf_config VALUES ('0000:01:10.0', 'eth1', 0, '00:00:00:00:00:00', 0, 1, 0, ?)").run(new Date(0).toISOString());
    old.close();
    fs.chmodSync(dbPath, 0o600);

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
