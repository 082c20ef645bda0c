import { describe, expect, it } from 'vitest';
import { jsonOf, runCli } from '../support/cli.js';
import { simHostPerTest } from '../support/sim-host-per-test.js';
import { startWatch, until } from '../support/watch-process.js';

// A VF assigned with its VF network config leaves the host while NO watch runs; the next command
// prunes it and the state database remembers it; `status` lists it as awaited. It comes back;
// a `watch --reclaim` started afterwards recognises it and readies it for its former domain, with
// the VLAN and MAC that domain had.
const PF = '0000:01:00.0';
const VF = '0000:01:10.0';
const host = simHostPerTest('hostdev-cli-departed-', 'sriov-nic');

const cli = (...args: string[]) => runCli(['--root', host.root, '--state-dir', host.stateDir, '--simulate', ...args]);
const numvfs = (value: string) => runCli(['--root', host.root, 'sim', 'write', `/sys/bus/pci/devices/${PF}/sriov_numvfs`, value]);

interface DepartedJson {
  address: string;
  pf: string;
  vfIndex: number;
  owner: { driver: string; domain: string } | null;
  domainConfig: Record<string, unknown> | null;
  vfConfig: Record<string, unknown> | null;
  prunedBy: string;
}

describe('departed VFs across processes', () => {
  it('are listed by status while away, and readied for their former domain by a watch started after their return', async () => {
    expect(cli('assign', '--domain', 'vm1', VF, '--vlan', '77', '--mac', '52:54:00:00:00:77').code).toBe(0);
    expect(numvfs('0').code).toBe(0);

    const status = cli('--json', 'status');
    expect(status.code, status.stderr).toBe(0);
    expect(status.stderr).toContain(`${VF} is no longer on this host; dropped from the active table (it was used by driver qemu, domain vm1)`);
    const departed = jsonOf<{ departed: DepartedJson[] }>(status).departed;
    expect(departed).toEqual([
      expect.objectContaining({
        address: VF,
        pf: PF,
        vfIndex: 0,
        owner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' },
        domainConfig: { vlan: 77, mac: '52:54:00:00:00:77' },
        vfConfig: expect.objectContaining({ pf: 'enp1s0f0', vfIndex: 0, vlan: 0, mac: '00:00:00:00:00:00' }),
        prunedBy: 'recover',
      }),
    ]);
    const text = cli('status').stdout;
    expect(text).toMatch(/Departed VFs \(1\), left the host while a table held them:/);
    expect(text).toMatch(new RegExp(`${VF} +0 of ${PF} +qemu/vm1 +\\S+ +recover +awaited back +\`hostdev watch --reclaim\` readies it on return`));
    expect(departed[0]).toMatchObject({ awaited: true, back: null });

    expect(numvfs('2').code).toBe(0);
    // Back on the host (on igbvf) before any watch saw it: no longer "awaited".
    const back = cli('status');
    expect(back.stdout).toMatch(new RegExp(`${VF} +0 of ${PF} +qemu/vm1 +\\S+ +recover +back as ${VF} on igbvf +\`hostdev watch\` reports it \\(--reclaim readies it\\)`));
    expect(jsonOf<{ departed: DepartedJson[] }>(cli('--json', 'status')).departed[0]).toMatchObject({ awaited: false, back: { address: VF, driver: 'igbvf' } });
    const watch = startWatch(host.root, host.stateDir, ['--simulate', '--json', '--reclaim']);
    try {
      const returned = await until(
        () => watch.lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((event) => event['kind'] === 'returned'),
        'the returned event',
      );
      expect(returned).toMatchObject({ address: VF, pf: PF, vfIndex: 0, formerOwner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' }, outcome: 'readied' });
    } finally {
      watch.child.kill('SIGTERM');
    }
    expect(await watch.exited).toBe(0);

    const after = jsonOf<{ active: Array<{ address: string; usedBy: unknown }>; departed: unknown[] }>(cli('--json', 'status'));
    expect(after.active).toEqual([expect.objectContaining({ address: VF, usedBy: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' } })]);
    expect(after.departed).toEqual([]);
    const vfs = jsonOf<{ vfs: Array<Record<string, unknown>> }>(cli('--json', 'vf', 'list', PF)).vfs;
    expect(vfs[0]).toMatchObject({ address: VF, driver: 'vfio-pci', mac: '52:54:00:00:00:77', vlan: 77 });
    // release gives the host its own config back (saved anew by the reclaim)
    expect(cli('release', '--domain', 'vm1').code).toBe(0);
    expect(jsonOf<{ vfs: Array<Record<string, unknown>> }>(cli('--json', 'vf', 'list', PF)).vfs[0]).toMatchObject({ mac: '00:00:00:00:00:00', vlan: 0 });
  });

  it('`vf forget` drops a departed VF; usage errors without addresses or --all', () => {
    expect(cli('detach', '0000:01:10.2').code).toBe(0);
    expect(numvfs('0').code).toBe(0);
    expect(jsonOf<{ departed: unknown[] }>(cli('--json', 'status')).departed).toHaveLength(1);
    expect(cli('vf', 'forget').code).toBe(2);
    const forgot = cli('vf', 'forget', '0000:01:10.2', '0000:01:10.4');
    expect(forgot.code, forgot.stderr).toBe(0);
    expect(forgot.stdout.trim()).toMatch(/^forgot 0000:01:10\.2 \(VF 1 of 0000:01:00\.0\), detached, no owner, left \S+ \(pruned by recover\)$/);
    expect(forgot.stderr).toContain('0000:01:10.4 is not a departed VF (nothing to forget)');
    expect(jsonOf<{ departed: unknown[] }>(cli('--json', 'status')).departed).toEqual([]);
    expect(numvfs('2').code).toBe(0);
  });
});
