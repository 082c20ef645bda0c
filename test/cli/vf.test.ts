import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimNetPort } from '../../src/net/sim-net.js';
import { jsonOf, runCli, type CliRun } from '../support/cli.js';

// `hostdev vf` and `hostdev assign --mac/--vlan` through the CLI, on the simulated kernel
// (sriov-nic preset: PF 0000:01:00.0 "enp1s0f0" on igb, 2 of 7 VFs on igbvf).
const PF = '0000:01:00.0';
let base = '';
let cli: (...args: string[]) => CliRun;

interface VfList {
  numVfs: number;
  vfs: Array<{ index: number; address: string; driver: string | null; owner: { domain: string } | null; mac: string | null; vlan: number | null; spoofchk: boolean | null; trust: boolean | null }>;
}

beforeAll(() => {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-cli-vf-'));
  const root = path.join(base, 'root');
  expect(runCli(['sim', 'create', root, '--preset', 'sriov-nic']).code).toBe(0);
  cli = (...args) => runCli(['--root', root, '--state-dir', path.join(base, 'state'), '--simulate', ...args]);
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('hostdev vf and VF network config (CLI, simulated kernel)', () => {
  it('vf list: the VFs in virtfnN order with driver, netdev, owner, MAC and VLAN', () => {
    const list = jsonOf<VfList>(cli('--json', 'vf', 'list', PF));
    expect(list.numVfs).toBe(2);
    expect(list.vfs.map((vf) => [vf.index, vf.address, vf.driver, vf.mac])).toEqual([
      [0, '0000:01:10.0', 'igbvf', '00:00:00:00:00:00'],
      [1, '0000:01:10.2', 'igbvf', '00:00:00:00:00:00'],
    ]);
  });

  it('set-count 2 -> 4 goes through 0, and ERANGE above sriov_totalvfs is a clear error', () => {
    const run = cli('--json', 'vf', 'set-count', PF, '4');
    expect(run.code).toBe(0);
    expect(jsonOf<{ steps: string[]; vfs: unknown[] }>(run).steps).toEqual([
      `write 0 > /sys/bus/pci/devices/${PF}/sriov_numvfs`,
      `write 4 > /sys/bus/pci/devices/${PF}/sriov_numvfs`,
    ]);
    const tooMany = cli('vf', 'set-count', PF, '8');
    expect(tooMany.code).toBe(2);
    expect(tooMany.stderr).toContain(`PF ${PF} supports at most 7 VFs (sriov_totalvfs); 8 were requested`);
  });

  it('assign --dry-run prints the VF network config as steps of the plan, before the first sysfs write', () => {
    const dry = cli('assign', '--dry-run', '--domain', 'vm1', '0000:01:10.2', '--mac', '52:54:00:00:00:07', '--vlan', '42');
    expect(dry.code, dry.stderr).toBe(0);
    const steps = dry.stdout.split('\n').map((line) => line.trim());
    const first = steps.indexOf('save VF network config of 0000:01:10.2 (enp1s0f0 vf 1)');
    expect(first).toBeGreaterThan(0);
    expect(steps.slice(first, first + 3)).toEqual([
      'save VF network config of 0000:01:10.2 (enp1s0f0 vf 1)',
      'ip link set dev enp1s0f0 vf 1 vlan 42',
      'ip link set dev enp1s0f0 vf 1 mac 52:54:00:00:00:07',
    ]);
    expect(steps.slice(0, first).some((line) => line.startsWith('write '))).toBe(false);
    expect(steps.filter((line) => line.includes('ip link set'))).toHaveLength(2);
    expect(jsonOf<VfList>(cli('--json', 'vf', 'list', PF)).vfs[1]).toMatchObject({ mac: '00:00:00:00:00:00', vlan: 0 });
  });

  it('assign --mac --vlan --spoofchk --trust applies the config; vf list shows it; set-count is refused naming the domain', () => {
    const assign = cli('assign', '--domain', 'vm1', '0000:01:10.2', '--mac', '52:54:00:00:00:07', '--vlan', '42', '--spoofchk', 'off', '--trust', 'on');
    expect(assign.code, assign.stderr).toBe(0);
    const vf1 = jsonOf<VfList>(cli('--json', 'vf', 'list', PF)).vfs[1]!;
    expect(vf1).toMatchObject({ driver: 'vfio-pci', owner: { domain: 'vm1' }, mac: '52:54:00:00:00:07', vlan: 42, spoofchk: false, trust: true });
    const refused = cli('vf', 'set-count', PF, '2');
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('VF 1 0000:01:10.2 is in use by driver qemu, domain vm1');
  });

  it('release --dry-run prints the restore of the saved VF network config before the VF leaves vfio-pci', () => {
    const dry = cli('--json', 'release', '--dry-run', '--domain', 'vm1');
    expect(dry.code, dry.stderr).toBe(0);
    const steps = jsonOf<{ steps: string[] }>(dry).steps;
    expect(steps[0]).toBe('restore VF network config of 0000:01:10.2 (enp1s0f0 vf 1)');
    expect(steps.slice(1).some((step) => step.startsWith('write '))).toBe(true);
  });

  it('release restores the saved MAC, VLAN, spoofchk and trust', () => {
    expect(cli('release', '--domain', 'vm1').code).toBe(0);
    expect(jsonOf<VfList>(cli('--json', 'vf', 'list', PF)).vfs[1]).toMatchObject({
      driver: 'igbvf', owner: null, mac: '00:00:00:00:00:00', vlan: 0, spoofchk: true, trust: false,
    });
    expect(jsonOf<{ active: unknown[] }>(cli('--json', 'status')).active).toEqual([]);
  });

  it('set-count --force prunes an assigned VF, reports its owner, and drops its saved config', () => {
    expect(cli('assign', '--domain', 'vm2', '0000:01:10.0', '--vlan', '5').code).toBe(0);
    const forced = cli('--json', 'vf', 'set-count', PF, '2', '--force');
    expect(forced.code, forced.stderr).toBe(0);
    expect(jsonOf<{ pruned: unknown[] }>(forced).pruned).toEqual([
      { address: '0000:01:10.0', vfIndex: 0, table: 'active', owner: { driver: 'qemu', domain: 'vm2', hypervisor: 'qemu', vm: 'vm2' } },
    ]);
    const status = jsonOf<{ active: unknown[]; inactive: unknown[] }>(cli('--json', 'status'));
    expect([status.active, status.inactive]).toEqual([[], []]);
    // The same VF address can be given to another domain right away.
    expect(cli('assign', '--domain', 'vm3', '0000:01:10.0').code).toBe(0);
    expect(cli('release', '--domain', 'vm3').code).toBe(0);
  });

  it("refuses VF config on a PF that is down, in libvirt's words, and leaves the VF on the host", async () => {
    await new SimNetPort(path.join(base, 'root'), async () => ({ numVfs: 2, generation: null })).setUp('enp1s0f0', false);
    const run = cli('assign', '--domain', 'vm1', '0000:01:10.2', '--vlan', '9');
    expect(run.code).toBe(4);
    expect(run.stderr).toContain(
      "Unable to configure VF 1 of PF 'enp1s0f0' because the PF is not online. Please change host network config to put the PF online.",
    );
    expect(run.stderr).toContain('hint: Bring the PF up first: ip link set dev enp1s0f0 up');
    expect(jsonOf<VfList>(cli('--json', 'vf', 'list', PF)).vfs[1]).toMatchObject({ driver: 'igbvf', owner: null });
    await new SimNetPort(path.join(base, 'root'), async () => ({ numVfs: 2, generation: null })).setUp('enp1s0f0', true);
  });

  it('refuses a multicast MAC before touching anything', () => {
    const run = cli('assign', '--domain', 'vm1', '0000:01:10.0', '--mac', '01:00:5e:00:00:01');
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('multicast');
  });

  it('--mac with several addresses is refused (one MAC names one VF)', () => {
    const run = cli('assign', '--domain', 'vm1', '0000:01:10.0', '0000:01:10.2', '--mac', '52:54:00:00:00:01');
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--mac names one VF');
  });

  it('--autoprobe off leaves new VFs unbound (ready for vfio-pci); --autoprobe on brings their driver back', () => {
    const off = jsonOf<{ vfs: Array<{ driver: string | null }> }>(cli('--json', 'vf', 'set-count', PF, '3', '--autoprobe', 'off'));
    expect(off.vfs.map((vf) => vf.driver)).toEqual([null, null, null]);
    const on = jsonOf<{ vfs: Array<{ driver: string | null }> }>(cli('--json', 'vf', 'set-count', PF, '2', '--autoprobe', 'on'));
    expect(on.vfs.map((vf) => vf.driver)).toEqual(['igbvf', 'igbvf']);
  });

  it('reports EBUSY and EINVAL from the kernel on sriov_numvfs as clear errors', () => {
    const faults = (errno: string) => ({ env: { HOSTDEV_SIM_FAULTS: JSON.stringify([{ action: 'fail', match: 'sriov_numvfs', errno }]) } });
    const busy = runCli(['--root', path.join(base, 'root'), '--state-dir', path.join(base, 'state'), '--simulate', 'vf', 'set-count', PF, '3'], faults('EBUSY'));
    expect(busy.code).toBe(6);
    expect(busy.stderr).toContain(`PF ${PF} is busy: the kernel refused to change its VF count (EBUSY)`);
    const invalid = runCli(['--root', path.join(base, 'root'), '--state-dir', path.join(base, 'state'), '--simulate', 'vf', 'set-count', PF, '3'], faults('EINVAL'));
    expect(invalid.code).toBe(6);
    expect(invalid.stderr).toContain(`the kernel refused 0 VFs on PF ${PF} (EINVAL)`);
    expect(jsonOf<{ numVfs: number }>(cli('--json', 'vf', 'list', PF)).numVfs).toBe(2);
  });
});
