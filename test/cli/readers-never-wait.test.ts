import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonOf, runCli, runCliAsync, type CliRun } from '../support/cli.js';
import { runChild } from '../state/helpers.js';

// Another hostdev process holds the state lock in the middle of a release (its journal row is
// written, its commit not yet made). The commands that only look (status, qemu-args, vf list,
// list) answer at once from the last committed tables, say who holds the lock, and neither repair
// nor prune anything meanwhile; once the holder is gone, the next status does both.
const PF0 = '0000:01:00.0';
const PF1 = '0000:01:00.1';
const HELD = '0000:01:10.1'; // vm1's, being released by the lock holder
const PARKED = '0000:01:10.0'; // detached (inactive), then gone with PF0's VFs

let base = '';
let root = '';
let stateDir = '';
const globals = (): string[] => ['--root', root, '--state-dir', stateDir, '--simulate'];
const cli = (args: readonly string[]): CliRun => runCli([...globals(), ...args]);

beforeAll(() => {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-readers-'));
  const template = path.join(base, 'template');
  expect(runCli(['sim', 'create', template, '--preset', 'sriov-nic']).code).toBe(0);
  root = path.join(base, 'root');
  stateDir = path.join(base, 'state');
  cpSync(template, root, { recursive: true, verbatimSymlinks: true });
  for (const args of [['assign', '--domain', 'vm1', HELD], ['detach', PARKED], ['sim', 'write', `/sys/bus/pci/devices/${PF0}/sriov_numvfs`, '0']]) {
    const run = cli(args);
    expect(run.code, run.stderr).toBe(0);
  }
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** Holds the lock as a release would, with its first journal row, until stdin-less timeout. */
function holdLock(holdMs: number, onHolding: (pid: number) => void): ReturnType<typeof runChild> {
  const row = {
    address: HELD,
    action: 'reset',
    hostPath: `/sys/bus/pci/devices/${HELD}/reset`,
    value: '1',
    restore: { driver: 'vfio-pci', driverOverride: 'vfio-pci' },
  };
  return runChild(
    `const store = StateStore.open(${JSON.stringify(stateDir)});
     await store.exclusive('release', async (op) => {
       op.intend(${JSON.stringify(row)});
       console.log('holding');
       await new Promise((resolve) => setTimeout(resolve, ${holdMs}));
     });
     process.exit(0);`,
    (line, pid) => {
      if (line === 'holding') onHolding(pid);
    },
  );
}

describe('readers never wait for a writer', () => {
  it('status, qemu-args, vf list and list answer within 2 s while the lock is held, and change nothing', async () => {
    let holderPid = 0;
    let results: Array<{ args: string[]; run: CliRun; ms: number }> = [];
    const holding = new Promise<void>((resolve) => {
      void holdLock(12_000, (pid) => {
        holderPid = pid;
        resolve();
      });
    });
    await holding;
    const timed = async (args: string[]): Promise<{ args: string[]; run: CliRun; ms: number }> => {
      const started = Date.now();
      const run = await runCliAsync([...globals(), ...args], { timeoutMs: 10_000 });
      return { args, run, ms: Date.now() - started };
    };
    results = [];
    for (const args of [['--json', 'status'], ['qemu-args', '--domain', 'vm1'], ['--json', 'vf', 'list', PF1], ['--json', 'list'], ['status']]) {
      results.push(await timed(args));
    }
    for (const { args, run, ms } of results) {
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(0);
      expect(ms, args.join(' ')).toBeLessThan(2_000);
    }
    const status = jsonOf<{
      active: Array<{ address: string }>;
      inactive: Array<{ address: string }>;
      pruned: string[];
      busy: { operations: Array<Record<string, unknown>>; notPruned: string[] } | null;
      recovery: { deferred?: unknown[]; repaired: unknown[] };
    }>(results[0]!.run);
    expect(status.active.map((entry) => entry.address)).toEqual([HELD]);
    expect(status.inactive.map((entry) => entry.address)).toEqual([PARKED]);
    expect(status.pruned).toEqual([]);
    expect(status.busy?.notPruned).toEqual([PARKED]);
    expect(status.busy?.operations).toEqual([
      expect.objectContaining({ operation: 'release', pid: holderPid, running: true, addresses: [HELD] }),
    ]);
    expect(status.recovery.repaired).toEqual([]);
    expect(status.recovery.deferred).toHaveLength(1);
    expect(results[0]!.run.stderr).toContain('another hostdev operation holds the state lock (journal: release (pid');
    expect(results[1]!.run.stdout).toContain(`host=${HELD}`);
    const text = results[4]!.run.stdout;
    expect(text).toContain('Busy: another hostdev operation holds the state lock');
    expect(text).toMatch(new RegExp(`release +${holderPid} +running`));
    expect(text).toContain(`not pruned yet (no longer on this host): ${PARKED}`);
    process.kill(holderPid, 'SIGKILL');
  }, 30_000);

  it('once the holder is gone, status repairs what it left and prunes the vanished entry', async () => {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const status = jsonOf<{
      active: unknown[];
      inactive: unknown[];
      pruned: string[];
      busy: unknown;
      recovery: { repaired: Array<Record<string, unknown>>; pruned: Array<Record<string, unknown>> };
    }>(cli(['--json', 'status']));
    expect(status.busy).toBeNull();
    expect(status.recovery.repaired).toEqual([expect.objectContaining({ address: HELD, operation: 'release', direction: 'rolled-forward' })]);
    expect([...status.recovery.pruned.map((entry) => entry.address), ...status.pruned]).toEqual([PARKED]);
    expect(status.active).toEqual([]);
    expect(status.inactive).toEqual([]);
  });
});
