import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostdevManager } from '../../src/manager/hostdev-manager.js';
import { tableLookupFor } from '../../src/manager/table-lookup.js';
import { StateStore } from '../../src/state/store.js';
import { hostdevRejectionOf } from '../support/errors.js';
import { runCli } from '../support/cli.js';
import { pci, simKernel, simManagerHost, type SimManagerHost } from '../support/sim-manager.js';

// A state database belongs to the host it was first opened for; another tree (or this machine)
// opening it is refused before recovery could prune the first host's entries as vanished.
const VF = pci('0000:01:10.0');
let first: SimManagerHost;
let other: SimManagerHost;

beforeEach(() => {
  first = simManagerHost('sriov-nic');
  other = simManagerHost('workstation');
});
afterEach(() => {
  first.cleanup();
  other.cleanup();
});

const openOn = (root: string, stateDir: string, dryRun = false) =>
  HostdevManager.open({ root, stateDir, kernel: simKernel(root), dryRun });

describe('a state database tied to its host', () => {
  it('records the tree id written by the builder, and refuses another tree with exit 7 and a hint, pruning nothing', async () => {
    const treeId = readFileSync(path.join(first.root, '.hostdev-sim/host-id'), 'utf8').trim();
    await first.withManager((manager) => manager.assign({ domain: 'vm1', addresses: [VF] }));

    for (const dryRun of [false, true]) {
      const refused = await hostdevRejectionOf(openOn(other.root, first.stateDir, dryRun));
      expect(refused).toMatchObject({ code: 'HOSTDEV_STATE', exitCode: 7 });
      expect(refused.message).toContain(`belongs to another host (${treeId})`);
      expect(refused.hint).toContain('Leave --state-dir out with --simulate');
    }
    await expect(tableLookupFor(first.stateDir, other.root)).rejects.toMatchObject({ code: 'HOSTDEV_STATE' });

    const store = StateStore.open(first.stateDir);
    expect(store.readTables().active.map((entry) => entry.address)).toEqual([VF]);
    expect(store.claimHost('ignored')).toBe(treeId);
    store.close();
    await first.withManager(async (manager) => expect(manager.tables().active).toHaveLength(1));
  });
});

describe('--simulate without --state-dir', () => {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'hostdev-sim-state-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps the state in the tree, never in the default or $HOSTDEV_STATE_DIR, and sim create's hint says how", () => {
    const root = path.join(dir, 'host');
    const elsewhere = path.join(dir, 'env-state');
    const create = runCli(['sim', 'create', root, '--preset', 'sriov-nic']);
    expect(create.stdout).toContain(`try: hostdev --root ${root} --simulate list`);
    const env = { HOSTDEV_STATE_DIR: elsewhere };
    const assign = runCli(['--root', root, '--simulate', 'assign', '--domain', 'vm1', VF], { env });
    expect(assign.code, assign.stderr).toBe(0);
    expect(existsSync(path.join(root, '.hostdev-sim/state/state.db'))).toBe(true);
    expect(existsSync(elsewhere)).toBe(false);
    const list = runCli(['--root', root, '--simulate', 'list', '--json'], { env });
    expect(JSON.parse(list.stdout)).toContainEqual(expect.objectContaining({ address: VF, owner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' } }));
  });
});
