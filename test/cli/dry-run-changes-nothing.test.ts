import { cpSync, lstatSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonOf, runCli, type CliRun } from '../support/cli.js';
import { logicalDump, treeDigest } from '../support/state-digest.js';

// A state that recovery and reconcile must act on: vm1 holds a VF (with saved MAC/VLAN) that
// vanished with its PF's sriov_numvfs, and an assign for vm2 was killed half-way, leaving its
// journal rows and its VF off its host driver. Every mutating command with --dry-run must leave
// the tree and the state database as they were, and say what recovery would do first.
const PF0 = '0000:01:00.0';
const PF1 = '0000:01:00.1';
const HELD = '0000:01:10.1'; // a VF of PF1, assigned to vm1
const KILLED = '0000:01:10.0'; // a VF of PF0, whose assign to vm2 was killed

let base = '';
let root = '';
let stateDir = '';
const cli = (args: readonly string[], env?: NodeJS.ProcessEnv): CliRun =>
  runCli(['--root', root, '--state-dir', stateDir, '--simulate', ...args], env ? { env } : {});

function expectOk(run: CliRun): CliRun {
  expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
  return run;
}

beforeAll(() => {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-dry-run-'));
  const template = path.join(base, 'template');
  expectOk(runCli(['sim', 'create', template, '--preset', 'sriov-nic']));
  root = path.join(base, 'root');
  stateDir = path.join(base, 'state');
  cpSync(template, root, { recursive: true, verbatimSymlinks: true });
  expectOk(cli(['assign', '--domain', 'vm1', HELD, '--mac', '52:54:00:00:00:01', '--vlan', '10']));
  const killed = cli(['assign', '--domain', 'vm2', KILLED], {
    HOSTDEV_SIM_FAULTS: JSON.stringify([{ action: 'crash', afterWrites: 2 }]),
  });
  expect(killed.code, killed.stderr).not.toBe(0);
  expectOk(cli(['sim', 'write', `/sys/bus/pci/devices/${PF1}/sriov_numvfs`, '0']));
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

const DRY_RUNS: ReadonlyArray<readonly string[]> = [
  ['detach', '0000:01:10.2', '--dry-run'],
  ['reattach', KILLED, '--dry-run'],
  ['reset', KILLED, '--dry-run'],
  ['assign', '--domain', 'vm3', '0000:01:10.2', '--mac', '52:54:00:00:00:03', '--dry-run'],
  ['release', '--domain', 'vm1', '--dry-run'],
  ['vf', 'set-count', PF0, '2', '--dry-run'],
  ['vf', 'set-count', PF1, '2', '--force', '--dry-run'],
];

describe('--dry-run changes nothing, recovery and prunes included', () => {
  it('starts from a journal left by a killed assign and a vanished VF in the active table', () => {
    const db = new Database(path.join(stateDir, 'state.db'), { readonly: true });
    try {
      expect((db.prepare('SELECT DISTINCT address FROM journal').all() as Array<{ address: string }>).map((r) => r.address)).toEqual([KILLED]);
      expect((db.prepare('SELECT key FROM active').all() as Array<{ key: string }>).map((r) => r.key)).toEqual([`pci:${HELD}`]);
      expect(db.prepare('SELECT count(*) AS n FROM vf_config').get()).toEqual({ n: 1 });
    } finally {
      db.close();
    }
  });

  it.each(DRY_RUNS)('%s %s ...: tree and database unchanged; prints the recovery and the prune', (...args) => {
    const tree = treeDigest(root);
    const state = treeDigest(stateDir);
    const dump = logicalDump(path.join(stateDir, 'state.db'));

    const text = expectOk(cli(args));
    expect(text.stdout).toContain(`would roll back ${KILLED} (an unfinished assign)`);
    expect(text.stdout).toContain(`would prune ${HELD} from the active table: no longer on this host (used by driver qemu, domain vm1)`);
    expect(text.stdout).toContain(`would drop the saved VF network config of ${HELD}`);
    expect(text.stderr).not.toContain('dropped from the active table');
    const json = jsonOf<{ recovery?: { dryRun: boolean; repaired: unknown[]; pruned: unknown[] } }>(expectOk(cli(['--json', ...args])));
    expect(json.recovery).toMatchObject({
      dryRun: true,
      repaired: [expect.objectContaining({ key: `pci:${KILLED}`, address: KILLED, operation: 'assign', direction: 'rolled-back' })],
      pruned: [{ key: `pci:${HELD}`, address: HELD, table: 'active', usedBy: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' } }],
    });

    expect(treeDigest(root)).toEqual(tree);
    expect(treeDigest(stateDir)).toEqual(state);
    expect(logicalDump(path.join(stateDir, 'state.db'))).toEqual(dump);
  });

  it('a release dry run plans on the tables as recovery would leave them: the vanished VF is reported pruned', () => {
    const json = jsonOf<{ pruned: string[]; released: string[] }>(expectOk(cli(['--json', 'release', '--domain', 'vm1', '--dry-run'])));
    expect(json.pruned).toEqual([HELD]);
    expect(json.released).toEqual([]);
  });

  it('a dry run on a state directory that does not exist creates nothing', () => {
    const missing = path.join(base, 'no-state-yet');
    const run = runCli(['--root', root, '--state-dir', missing, '--simulate', 'detach', '0000:01:10.2', '--dry-run']);
    expect(run.code, run.stderr).toBe(0);
    expect(() => lstatSync(missing)).toThrow();
  });

  it('the same command without --dry-run then does the recovery it announced', () => {
    const status = jsonOf<{ recovery: { repaired: unknown[]; pruned: unknown[] } }>(expectOk(cli(['--json', 'status'])));
    expect(status.recovery.repaired).toEqual([expect.objectContaining({ key: `pci:${KILLED}`, address: KILLED, operation: 'assign', direction: 'rolled-back', outcome: 'ok' })]);
    expect(status.recovery.pruned).toEqual([{ key: `pci:${HELD}`, address: HELD, table: 'active', usedBy: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' } }]);
  });
});
