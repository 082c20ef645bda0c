import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StateStore } from '../../src/state/store.js';
import { jsonOf, runCli } from '../support/cli.js';

// A crash in the middle of `assign --vlan`: the VF's config was saved (durably) and applied, then
// the process died (the simulated kernel SIGKILLs it after its first sysfs write). The next hostdev
// command rolls the device back (recovery) and puts the saved VF config back.
const PF = '0000:01:00.0';
const VF = '0000:01:10.0';
let base = '';
let root = '';
let stateDir = '';

beforeAll(() => {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-cli-vf-crash-'));
  root = path.join(base, 'root');
  stateDir = path.join(base, 'state');
  expect(runCli(['sim', 'create', root, '--preset', 'sriov-nic']).code).toBe(0);
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('VF network config and a crash mid-assign', () => {
  it('is restored by the next command, and the saved row is gone', () => {
    const crashed = runCli(['--root', root, '--state-dir', stateDir, '--simulate', 'assign', '--domain', 'vm1', VF, '--vlan', '77', '--mac', '52:54:00:00:00:77'], {
      env: { HOSTDEV_SIM_FAULTS: JSON.stringify([{ action: 'crash', afterWrites: 1 }]) },
    });
    expect(crashed.code).not.toBe(0);
    const store = StateStore.open(stateDir);
    try {
      expect(store.readVfConfigs()).toEqual([
        { address: VF, pf: 'enp1s0f0', vfIndex: 0, mac: '00:00:00:00:00:00', vlan: 0, spoofchk: true, trust: false },
      ]);
      expect(store.readTables().active).toEqual([]);
    } finally {
      store.close();
    }

    const next = runCli(['--root', root, '--state-dir', stateDir, '--simulate', '--json', 'vf', 'list', PF]);
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toContain(`restored the saved VF network config of ${VF}`);
    expect(jsonOf<{ vfs: Array<Record<string, unknown>> }>(next).vfs[0]).toMatchObject({
      address: VF,
      driver: 'igbvf',
      owner: null,
      mac: '00:00:00:00:00:00',
      vlan: 0,
    });
    const after = StateStore.open(stateDir);
    try {
      expect(after.readVfConfigs()).toEqual([]);
      expect(after.readJournal()).toEqual([]);
    } finally {
      after.close();
    }
  });
});
