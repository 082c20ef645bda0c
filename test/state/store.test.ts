import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HostdevError } from '../../src/core/errors.js';
import { DB_FILE, LOCK_FILE, StateStore, WAITING_ROOM_FILE, type JournalStep } from '../../src/state/store.js';
import { SCHEMA_VERSION } from '../../src/state/schema.js';
import { active, addr, inactive, mode, runChild, tempDir } from './helpers.js';
import { removeChange } from '../../src/core/tables.js';

const stores: StateStore[] = [];
function open(dir: string, options?: Parameters<typeof StateStore.open>[1]): StateStore {
  const store = StateStore.open(dir, options);
  stores.push(store);
  return store;
}
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
});

function step(n: number, action = 'unbind'): JournalStep {
  return {
    address: addr(n),
    action,
    hostPath: `/sys/bus/pci/devices/${addr(n)}/driver/unbind`,
    value: addr(n),
    restore: { driver: 'e1000e', driverOverride: null },
  };
}

describe('StateStore.open: files and modes', () => {
  it('creates the state dir 0700 (parents too) and the databases 0600, in WAL with synchronous=FULL', () => {
    const dir = path.join(tempDir(), 'a', 'state');
    const store = open(dir);
    expect(mode(dir)).toBe(0o700);
    expect(mode(path.dirname(dir))).toBe(0o700);
    expect(mode(path.join(dir, DB_FILE))).toBe(0o600);
    expect(mode(path.join(dir, LOCK_FILE))).toBe(0o600);
    expect(mode(path.join(dir, WAITING_ROOM_FILE))).toBe(0o600);
    expect(store.database.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.database.pragma('synchronous', { simple: true })).toBe(2); // FULL
    expect(store.schemaVersion()).toBe(SCHEMA_VERSION);
    expect(store.openWarnings).toEqual([]);
    expect(fs.readdirSync(dir).filter((name) => name.includes('.new-'))).toEqual([]);
  });

  it('tightens a looser directory and database mode and says so', () => {
    const dir = tempDir();
    open(dir).close();
    fs.chmodSync(dir, 0o755);
    fs.chmodSync(path.join(dir, DB_FILE), 0o644);
    const store = open(dir);
    expect(mode(dir)).toBe(0o700);
    expect(mode(path.join(dir, DB_FILE))).toBe(0o600);
    expect(store.openWarnings.join('\n')).toMatch(/had mode 0755; set it to 0700/);
    expect(store.openWarnings.join('\n')).toMatch(/state\.db had mode 0644; set it to 0600/);
  });

  it('refuses a state dir that is a file', () => {
    const file = path.join(tempDir(), 'state');
    fs.writeFileSync(file, 'x');
    expect(() => StateStore.open(file)).toThrow(/not a directory/);
  });
});

describe('tables', () => {
  it('applies set-active, set-inactive and remove; a device is never in both tables', async () => {
    const store = open(tempDir());
    await store.exclusive('assign', async (op) => {
      op.commit([
        { kind: 'set-inactive', entry: inactive(1) },
        { kind: 'set-active', entry: active(2) },
        { kind: 'set-inactive', entry: inactive(3, true) },
      ]);
    });
    expect(store.readTables()).toEqual({ active: [active(2)], inactive: [inactive(1), inactive(3, true)] });
    await store.exclusive('assign', async (op) => {
      op.commit([{ kind: 'set-active', entry: active(1, 'vm2', false) }, { kind: 'set-inactive', entry: inactive(2) }]);
      expect(op.tables()).toEqual({ active: [active(1, 'vm2', false)], inactive: [inactive(2), inactive(3, true)] });
      op.commit([removeChange(addr(3)), removeChange(addr(1))]);
    });
    expect(store.readTables()).toEqual({ active: [], inactive: [inactive(2)] });
  });

  it('keyed reads under the lock: lookup, ownedBy, inactive', async () => {
    const store = open(tempDir());
    await store.exclusive('assign', async (op) => {
      op.commit([
        { kind: 'set-active', entry: active(1, 'vm1') },
        { kind: 'set-active', entry: active(2, 'vm2') },
        { kind: 'set-active', entry: active(3, 'vm1') },
        { kind: 'set-inactive', entry: inactive(4) },
      ]);
      expect(op.lookup([addr(4), addr(3), addr(9), addr(3)])).toEqual({ active: [active(3, 'vm1')], inactive: [inactive(4)] });
      expect(op.ownedBy({ driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' })).toEqual([active(1, 'vm1'), active(3, 'vm1')]);
      expect(op.ownedBy({ driver: 'xen', domain: 'vm1', hypervisor: 'xen', vm: 'vm1' })).toEqual([]);
      expect(op.inactive()).toEqual([inactive(4)]);
    });
  });

  it('the inactive table survives closing and reopening', async () => {
    const dir = tempDir();
    const first = open(dir);
    await first.exclusive('detach', async (op) => op.commit([{ kind: 'set-inactive', entry: inactive(7) }]));
    first.close();
    expect(open(dir).readTables().inactive).toEqual([inactive(7)]);
  });

  it('saves and drops VF network config atomically with table changes', async () => {
    const store = open(tempDir());
    const config = { address: addr(4), pf: 'ens1f0', vfIndex: 3, mac: '52:54:00:00:00:04', vlan: 42, spoofchk: true, trust: null };
    await store.exclusive('assign', async (op) => {
      op.commit([{ kind: 'save-vf-config', config }, { kind: 'set-active', entry: active(4) }]);
      expect(op.vfConfigs()).toEqual([config]);
    });
    expect(store.readVfConfigs()).toEqual([config]);
    await store.exclusive('assign', async (op) => op.commit([{ kind: 'drop-vf-config', address: addr(4) }]));
    expect(store.readVfConfigs()).toEqual([]);
  });
});

describe('journal', () => {
  it('intend is visible to another connection at once; done marks go with the next intents; commit clears with the table change', async () => {
    const dir = tempDir();
    const store = open(dir);
    const other = open(dir);
    await store.exclusive('assign', async (op) => {
      const h = op.intend(step(1));
      expect(other.readJournal()).toMatchObject([
        { id: h.id, operationId: op.id, operationName: 'assign', pid: process.pid, done: false, ...step(1) },
      ]);
      op.done(h);
      expect(other.readJournal()[0]?.done).toBe(false);
      op.intend(step(1, 'probe'));
      expect(other.readJournal().map((row) => row.done)).toEqual([true, false]);
      op.commit([{ kind: 'set-active', entry: active(1) }]);
      expect(other.readJournal()).toEqual([]);
    });
    expect(other.readTables().active).toEqual([active(1)]);
  });

  it('intendAll writes a group of intents in one commit, visible together before any of their writes', async () => {
    const dir = tempDir();
    const store = open(dir);
    const other = open(dir);
    const steps = [step(1), step(1, 'probe'), step(2)];
    await store.exclusive('assign', async (op) => {
      const handles = op.intendAll(steps);
      expect(new Set(handles.map((h) => h.id)).size).toBe(3);
      expect(other.readJournal().map((row) => [row.id, row.address, row.action])).toEqual(
        handles.map((h, i) => [h.id, steps[i]!.address, steps[i]!.action]),
      );
      op.commit([]);
    });
    expect(other.readJournal()).toEqual([]);
  });

  it('keeps the rows when fn throws, releases the lock, and a later operation sees and resolves them', async () => {
    const store = open(tempDir());
    let failedId = '';
    await expect(
      store.exclusive('detach', async (op) => {
        failedId = op.id;
        op.intend(step(2));
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(store.readJournal()).toHaveLength(1);
    await store.exclusive('recover', async (op) => {
      expect(op.unfinished().map((r) => r.operationId)).toEqual([failedId]);
      op.commit([], { resolve: [failedId], report: { repaired: [addr(2)] } });
    });
    expect(store.readJournal()).toEqual([]);
    expect(store.lastReport()).toMatchObject({ operation: 'recover', report: { repaired: [addr(2)] } });
  });

  it('an intent survives SIGKILL right after intend() returns', async () => {
    const dir = tempDir();
    open(dir).close();
    const run = await runChild(`
      const store = StateStore.open(${JSON.stringify(dir)});
      await store.exclusive('assign', async (op) => {
        op.intend({ address: '0000:05:00.0', action: 'set-override', hostPath: '/sys/x', value: 'vfio-pci\\n',
                    restore: { driver: 'igb', driverOverride: null } });
        process.kill(process.pid, 'SIGKILL');
      });`);
    expect(run.signal).toBe('SIGKILL');
    const journal = open(dir).readJournal();
    expect(journal).toMatchObject([{ address: '0000:05:00.0', action: 'set-override', restore: { driver: 'igb' } }]);
  });

  it('journal: false (benchmarks only) writes no intents', async () => {
    const store = open(tempDir(), { journal: false });
    await store.exclusive('assign', async (op) => {
      op.done(op.intend(step(1)));
      expect(store.readJournal()).toEqual([]);
      op.commit([]);
    });
  });

  it('refuses an operation used after its lock was released', async () => {
    const store = open(tempDir());
    const op = await store.exclusive('assign', async (o) => o);
    expect(() => op.intend(step(1))).toThrow(/after its state lock was released/);
  });
});

describe('the cross-process lock', () => {
  it('makes a second holder wait, then gives up with HOSTDEV_BUSY (exit 9) naming the lock', async () => {
    const dir = tempDir();
    const a = open(dir);
    const b = open(dir, { lockTimeoutMs: 150 });
    await a.exclusive('assign', async () => {
      const error = await b.exclusive('release', async () => 1).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(HostdevError);
      expect((error as HostdevError).code).toBe('HOSTDEV_BUSY');
      expect((error as HostdevError).exitCode).toBe(9);
      expect((error as HostdevError).message).toContain(path.join(dir, LOCK_FILE));
      expect((error as HostdevError).message).toMatch(/for "release" within 150 ms: another hostdev process is running/);
      expect((error as HostdevError).hint).toMatch(/retry/);
      expect((error as HostdevError).details['holder']).toBeNull();
    });
    await expect(b.exclusive('release', async () => 2)).resolves.toBe(2);
  });

  it('names the operation that holds the lock once it has written an intent, and its pid', async () => {
    const dir = tempDir();
    const a = open(dir);
    const b = open(dir, { lockTimeoutMs: 100 });
    await a.exclusive('detach', async (op) => {
      op.intend(step(1));
      const error = (await b.exclusive('status', async () => 1).catch((e: unknown) => e)) as HostdevError;
      expect(error.code).toBe('HOSTDEV_BUSY');
      expect(error.message).toContain(`for "status" within 100 ms: "detach" of hostdev process ${process.pid} holds it`);
      expect(error.hint).toContain(`ps -f -p ${process.pid}`);
      expect(error.details['holder']).toEqual({ operation: 'detach', pid: process.pid });
      op.commit([]);
    });
  });

  it('does not name a dead process whose intents are still in the journal', async () => {
    const dir = tempDir();
    const run = await runChild(
      `const store = StateStore.open(${JSON.stringify(dir)});
       await store.exclusive('assign', async (op) => { op.intend(${JSON.stringify(step(1))}); process.exit(0); });`,
    );
    expect(run.code).toBe(0);
    const a = open(dir);
    const b = open(dir, { lockTimeoutMs: 100 });
    await a.exclusive('status', async () => {
      const error = (await b.exclusive('status', async () => 1).catch((e: unknown) => e)) as HostdevError;
      expect(error.code).toBe('HOSTDEV_BUSY');
      expect(error.message).toMatch(/another hostdev process is running and holds it/);
    });
  });

  it('is released when the holder is SIGKILLed', async () => {
    const dir = tempDir();
    open(dir).close();
    const waiter = open(dir, { lockTimeoutMs: 10_000 });
    let waiting: Promise<number> | undefined;
    const run = await runChild(
      `const store = StateStore.open(${JSON.stringify(dir)});
       await store.exclusive('assign', async () => { console.log('locked'); setInterval(() => {}, 1000); await new Promise(() => {}); });`,
      (line, pid) => {
        if (line !== 'locked') return;
        // The child holds it now: a short attempt fails, then the kill frees it.
        const quick = open(dir, { lockTimeoutMs: 50 });
        waiting = quick
          .exclusive('status', async () => 0)
          .then(
            () => -1,
            (e: unknown) => ((e as HostdevError).code === 'HOSTDEV_BUSY' ? 1 : -2),
          )
          .finally(() => process.kill(pid, 'SIGKILL'));
      },
    );
    expect(run.signal).toBe('SIGKILL');
    expect(await waiting).toBe(1);
    const started = Date.now();
    await expect(waiter.exclusive('release', async () => 'ok')).resolves.toBe('ok');
    // Well inside the waiter's 10 s timeout: the dead holder's lock is free at once, no stale timer.
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('is fair: a process running operations back to back lets a waiter in', async () => {
    const dir = tempDir();
    const busy = open(dir);
    const waiter = open(dir, { lockTimeoutMs: 5_000 });
    const order: string[] = [];
    let waiting: Promise<void> | undefined;
    for (let i = 0; i < 100; i++) {
      await busy.exclusive('assign', async () => {
        order.push('busy');
        waiting ??= waiter.exclusive('release', async () => void order.push('waiter'));
        await new Promise((r) => setTimeout(r, 5));
      });
    }
    await waiting;
    expect(order.indexOf('waiter')).toBeGreaterThan(0);
    // It gets in after about one fair slice (200 ms), not after the whole loop.
    expect(order.indexOf('waiter')).toBeLessThan(80);
  });

  it('serializes calls from one process in order and refuses a nested call', async () => {
    const store = open(tempDir());
    const order: string[] = [];
    const task = (name: string) =>
      // The label is the order's; the lock needs an operation's name.
      store.exclusive('assign', async () => {
        order.push(`${name}+`);
        await new Promise((r) => setTimeout(r, 5));
        order.push(`${name}-`);
      });
    await Promise.all([task('a'), task('b'), task('c')]);
    expect(order).toEqual(['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
    await expect(store.exclusive('assign', () => store.exclusive('release', async () => 1))).rejects.toThrow(
      /inside "assign"/,
    );
  });
});

describe('StateStore tables read once per commit', () => {
  it("a reader sees another connection's commit and the boot stamp at once, and the same tables while nothing was committed", async () => {
    const dir = tempDir();
    const reader = open(dir);
    const writer = open(dir);
    expect(reader.readTables().active).toEqual([]);
    await writer.exclusive('assign', async (op) => {
      op.commit([{ kind: 'set-active', entry: active(1) }]);
    });
    const first = reader.readTables();
    expect(first.active.map((entry) => entry.address)).toEqual([addr(1)]);
    expect(reader.readTables()).toBe(first);
    expect(reader.readState().tables).toBe(first);

    // Entries written without a boot id are stamped by the next open that knows the boot.
    writer.database.prepare('UPDATE active SET boot_id = NULL').run();
    writer.database.prepare("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'commits'").run();
    expect(reader.readTables().active[0]!.bootId).toBeUndefined();
    writer.useBoot('boot-2');
    expect(reader.readTables().active[0]!.bootId).toBe('boot-2');
  });
});
