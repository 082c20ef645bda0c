import Database from 'better-sqlite3';
import path from 'node:path';
import { ensureFileMode } from '../state/files.js';
import type { OperationRecordJson } from './schemas.js';

/** The daemon's record of the operations clients started, next to the state database. */
export const OPERATIONS_FILE = 'daemon-operations.db';
/** Finished operations kept for `GET /v1/operations` (the oldest go first). */
const KEEP_FINISHED = 2_000;

/**
 * Every mutation a client starts is recorded before it runs and again when it ends, on disk
 * (synchronous=FULL), so that an operation survives the daemon: one that was running when the
 * daemon died is settled by the next daemon from what recovery did (`settleInterrupted`).
 */
export class OperationLog {
  private readonly db: Database.Database;
  private readonly finished = new Map<string, Array<() => void>>();

  private constructor(db: Database.Database) {
    this.db = db;
  }

  static open(stateDir: string): OperationLog {
    const file = path.join(stateDir, OPERATIONS_FILE);
    ensureFileMode(file);
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(
      'CREATE TABLE IF NOT EXISTS operation (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, state TEXT NOT NULL, record TEXT NOT NULL)',
    );
    db.exec('CREATE INDEX IF NOT EXISTS operation_seq ON operation (seq)');
    return new OperationLog(db);
  }

  close(): void {
    this.db.close();
  }

  start(record: OperationRecordJson & { id: string }): void {
    const seq = (this.db.prepare('SELECT coalesce(max(seq), 0) + 1 AS next FROM operation').get() as { next: number }).next;
    this.db.prepare('INSERT INTO operation (id, seq, state, record) VALUES (?, ?, ?, ?)').run(record.id, seq, record.state, JSON.stringify(record));
  }

  finish(record: OperationRecordJson & { id: string }): void {
    this.db.prepare('UPDATE operation SET state = ?, record = ? WHERE id = ?').run(record.state, JSON.stringify(record), record.id);
    this.db
      .prepare("DELETE FROM operation WHERE state != 'running' AND seq <= (SELECT max(seq) FROM operation) - ?")
      .run(KEEP_FINISHED);
    for (const wake of this.finished.get(record.id) ?? []) wake();
    this.finished.delete(record.id);
  }

  get(id: string): OperationRecordJson | null {
    const row = this.db.prepare('SELECT record FROM operation WHERE id = ?').get(id) as { record: string } | undefined;
    return row === undefined ? null : (JSON.parse(row.record) as OperationRecordJson);
  }

  /** The newest `limit` operations, newest first. */
  list(limit: number): OperationRecordJson[] {
    const rows = this.db.prepare('SELECT record FROM operation ORDER BY seq DESC LIMIT ?').all(limit) as Array<{ record: string }>;
    return rows.map((row) => JSON.parse(row.record) as OperationRecordJson);
  }

  /** Operations recorded as running: at open, those a daemon that died left behind. */
  running(): OperationRecordJson[] {
    const rows = this.db.prepare("SELECT record FROM operation WHERE state = 'running' ORDER BY seq").all() as Array<{ record: string }>;
    return rows.map((row) => JSON.parse(row.record) as OperationRecordJson);
  }

  /** Resolves when the operation ends or `timeoutMs` passes, whichever is first. */
  async waitFor(id: string, timeoutMs: number): Promise<OperationRecordJson | null> {
    const now = this.get(id);
    if (now === null || now.state !== 'running' || timeoutMs <= 0) return now;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const waiters = this.finished.get(id) ?? [];
      waiters.push(done);
      this.finished.set(id, waiters);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
    });
    return this.get(id);
  }
}
