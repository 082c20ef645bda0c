import fs from 'node:fs';
import { resolveInside } from '../platform/contain.js';
import path from 'node:path';
import Database from 'better-sqlite3';
import { readHostModel, simDir, type DriverId, type VfTemplate } from './host-model.js';

/**
 * The simulated kernel's own state, shared by every process working on one tree:
 * ROOT/.hostdev-sim/state.db (SQLite). Every write runs inside BEGIN IMMEDIATE, so a write and
 * the state it changes are one atomic step across processes, and events get a gap-free seq.
 */
export interface DriverRow {
  readonly name: string;
  readonly loaded: boolean;
  readonly ids: readonly DriverId[];
  readonly dynIds: readonly DriverId[];
}

interface RemovedRow {
  readonly address: string;
  /** The stashed directory (absolute) of the top removed device; its subtree moved with it. */
  readonly stash: string;
  /** Where the directory lived, relative to the root. */
  readonly home: string;
  readonly group: number | null;
  readonly top: string;
  readonly ord: number;
}

export type SimEventAction = 'add' | 'remove' | 'bind' | 'unbind' | 'change';

export interface SimEvent {
  readonly seq: number;
  readonly action: SimEventAction;
  readonly address: string;
  readonly driver?: string;
  readonly time: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS drivers (name TEXT PRIMARY KEY, ord INTEGER NOT NULL, loaded INTEGER NOT NULL,
  ids TEXT NOT NULL, dyn TEXT NOT NULL DEFAULT '[]');
CREATE TABLE IF NOT EXISTS netdevs (address TEXT PRIMARY KEY, driver TEXT NOT NULL, names TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS removed (address TEXT PRIMARY KEY, stash TEXT NOT NULL, home TEXT NOT NULL,
  grp INTEGER, top TEXT NOT NULL, ord INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS resets (address TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS reset_methods (address TEXT PRIMARY KEY, supported TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vf_templates (pf TEXT PRIMARY KEY, template TEXT NOT NULL);
`;

export class SimState {
  readonly db: Database.Database;
  readonly eventsFile: string;

  constructor(readonly root: string) {
    // The simulated kernel's own files stay under the root too (OutsideRootError otherwise).
    const dir = resolveInside(root, simDir(root));
    fs.mkdirSync(dir, { recursive: true });
    this.eventsFile = path.join(dir, 'events.jsonl');
    this.db = new Database(path.join(dir, 'state.db'), { timeout: 60_000 });
    this.db.pragma('journal_mode = WAL');
    // A simulation needs atomicity between processes, not durability across power loss.
    this.db.pragma('synchronous = OFF');
    this.db.exec(SCHEMA);
    this.transaction(() => this.seedOnce());
  }

  close(): void {
    this.db.close();
  }

  /** Runs fn under BEGIN IMMEDIATE: one writer at a time across all processes. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  private seedOnce(): void {
    if (this.db.prepare(`SELECT 1 FROM meta WHERE key = 'seeded'`).get()) return;
    const model = readHostModel(this.root);
    const insert = this.db.prepare('INSERT OR REPLACE INTO drivers (name, ord, loaded, ids) VALUES (?, ?, ?, ?)');
    let ord = 0;
    if (model) {
      for (const [name, d] of Object.entries(model.drivers)) insert.run(name, ord++, d.loaded ? 1 : 0, JSON.stringify(d.ids));
      for (const [address, n] of Object.entries(model.netdevs)) this.setNetdevs(address, n.driver, n.names);
      for (const [pf, t] of Object.entries(model.vfTemplates)) this.setVfTemplate(pf, t);
    } else {
      // A tree written by other means: the loaded drivers are the driver directories, and each
      // claims (at least) the vendor:device of the devices bound to it now.
      const driversDir = path.join(this.root, 'sys/bus/pci/drivers');
      const names = fs.existsSync(driversDir) ? fs.readdirSync(driversDir).sort() : [];
      for (const name of names) {
        const ids: DriverId[] = [];
        for (const entry of fs.readdirSync(path.join(driversDir, name))) {
          if (!/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(entry)) continue;
          const id = readVendorDevice(path.join(driversDir, name, entry));
          if (id && !ids.some((i) => i.vendor === id.vendor && i.device === id.device)) ids.push(id);
        }
        insert.run(name, ord++, 1, JSON.stringify(ids));
        for (const entry of fs.readdirSync(path.join(driversDir, name))) {
          const net = path.join(driversDir, name, entry, 'net');
          if (fs.existsSync(net)) this.setNetdevs(entry, name, fs.readdirSync(net));
        }
      }
    }
    this.db.prepare(`INSERT INTO meta (key, value) VALUES ('seeded', '1'), ('seq', '0')`).run();
    this.writeSeqnum(0);
  }

  /**
   * /sys/kernel/uevent_seqnum, as Linux keeps it: the number of the last uevent sent, which every
   * event below moves on (add, remove, bind, unbind, change), and nothing else does.
   */
  private writeSeqnum(seq: number): void {
    const file = resolveInside(this.root, path.join(this.root, 'sys/kernel/uevent_seqnum'));
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, `${seq}\n`);
  }

  drivers(): DriverRow[] {
    const rows = this.db.prepare('SELECT name, loaded, ids, dyn FROM drivers ORDER BY ord').all() as Array<{
      name: string;
      loaded: number;
      ids: string;
      dyn: string;
    }>;
    return rows.map((r) => ({ name: r.name, loaded: r.loaded === 1, ids: JSON.parse(r.ids) as DriverId[], dynIds: JSON.parse(r.dyn) as DriverId[] }));
  }

  driver(name: string): DriverRow | null {
    return this.drivers().find((d) => d.name === name) ?? null;
  }

  setLoaded(name: string): void {
    const max = (this.db.prepare('SELECT MAX(ord) AS m FROM drivers').get() as { m: number | null }).m ?? 0;
    // A module loaded now registers after every driver already there (probe order).
    this.db.prepare('UPDATE drivers SET loaded = 1, ord = ? WHERE name = ?').run(max + 1, name);
  }

  setDynIds(name: string, ids: readonly DriverId[]): void {
    this.db.prepare('UPDATE drivers SET dyn = ? WHERE name = ?').run(JSON.stringify(ids), name);
  }

  netdevs(address: string): { driver: string; names: string[] } | null {
    const row = this.db.prepare('SELECT driver, names FROM netdevs WHERE address = ?').get(address) as
      | { driver: string; names: string }
      | undefined;
    return row ? { driver: row.driver, names: JSON.parse(row.names) as string[] } : null;
  }

  setNetdevs(address: string, driver: string, names: readonly string[]): void {
    this.db.prepare('INSERT OR REPLACE INTO netdevs (address, driver, names) VALUES (?, ?, ?)').run(address, driver, JSON.stringify(names));
  }

  dropNetdevs(address: string): void {
    this.db.prepare('DELETE FROM netdevs WHERE address = ?').run(address);
  }

  vfTemplate(pf: string): VfTemplate | null {
    const row = this.db.prepare('SELECT template FROM vf_templates WHERE pf = ?').get(pf) as { template: string } | undefined;
    return row ? (JSON.parse(row.template) as VfTemplate) : null;
  }

  setVfTemplate(pf: string, template: VfTemplate): void {
    this.db.prepare('INSERT OR REPLACE INTO vf_templates (pf, template) VALUES (?, ?)').run(pf, JSON.stringify(template));
  }

  addRemoved(row: RemovedRow): void {
    this.db
      .prepare('INSERT OR REPLACE INTO removed (address, stash, home, grp, top, ord) VALUES (?, ?, ?, ?, ?, ?)')
      .run(row.address, row.stash, row.home, row.group, row.top, row.ord);
  }

  removed(): RemovedRow[] {
    const rows = this.db.prepare('SELECT address, stash, home, grp, top, ord FROM removed ORDER BY ord').all() as Array<{
      address: string;
      stash: string;
      home: string;
      grp: number | null;
      top: string;
      ord: number;
    }>;
    return rows.map((r) => ({ address: r.address, stash: r.stash, home: r.home, group: r.grp, top: r.top, ord: r.ord }));
  }

  dropRemoved(top: string): void {
    this.db.prepare('DELETE FROM removed WHERE top = ?').run(top);
  }

  countReset(address: string): void {
    this.db
      .prepare('INSERT INTO resets (address, count) VALUES (?, 1) ON CONFLICT(address) DO UPDATE SET count = count + 1')
      .run(address);
  }

  resetCount(address: string): number {
    const row = this.db.prepare('SELECT count FROM resets WHERE address = ?').get(address) as { count: number } | undefined;
    return row?.count ?? 0;
  }

  supportedResetMethods(address: string): string[] | null {
    const row = this.db.prepare('SELECT supported FROM reset_methods WHERE address = ?').get(address) as { supported: string } | undefined;
    return row ? (JSON.parse(row.supported) as string[]) : null;
  }

  setSupportedResetMethods(address: string, methods: readonly string[]): void {
    this.db.prepare('INSERT OR REPLACE INTO reset_methods (address, supported) VALUES (?, ?)').run(address, JSON.stringify(methods));
  }

  nextOrd(): number {
    const row = this.db.prepare('SELECT MAX(ord) AS m FROM removed').get() as { m: number | null };
    return (row.m ?? 0) + 1;
  }

  /** Appends one uevent-like record; call inside a transaction so seq and file order agree. */
  event(action: SimEventAction, address: string, driver?: string): SimEvent {
    const seq = Number((this.db.prepare(`SELECT value FROM meta WHERE key = 'seq'`).get() as { value: string }).value) + 1;
    this.db.prepare(`UPDATE meta SET value = ? WHERE key = 'seq'`).run(String(seq));
    this.writeSeqnum(seq);
    const event: SimEvent = { seq, action, address, ...(driver === undefined ? {} : { driver }), time: new Date().toISOString() };
    fs.appendFileSync(this.eventsFile, `${JSON.stringify(event)}\n`);
    return event;
  }
}

function readVendorDevice(devDir: string): DriverId | null {
  try {
    const vendor = fs.readFileSync(path.join(devDir, 'vendor'), 'utf8').trim().replace(/^0x/, '');
    const device = fs.readFileSync(path.join(devDir, 'device'), 'utf8').trim().replace(/^0x/, '');
    return { vendor, device };
  } catch {
    return null;
  }
}
