import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildHost } from '../../src/sim/builder.js';
import { presets } from '../../src/sim/presets.js';
import { jsonOf, runCli } from '../support/cli.js';
import { treeSnapshot } from '../support/sim-manager.js';

let base: string;
let root: string;
let state: string;

function hostdev(...args: string[]): ReturnType<typeof runCli> {
  return runCli(['--root', root, '--state-dir', state, '--simulate', ...args]);
}

function setUp(preset: string): void {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-cli-mgr-'));
  root = path.join(base, 'root');
  state = path.join(base, 'state');
  buildHost(root, presets[preset]!);
}
afterEach(() => rmSync(base, { recursive: true, force: true }));

describe('manager commands on a simulated libvirt test host', () => {
  beforeEach(() => setUp('libvirt-test'));

  it('detach, status --json with the agreed shape, reattach', () => {
    const detach = hostdev('detach', '00:01.0');
    expect(detach.code, detach.stderr).toBe(0);
    const status = hostdev('status', '--json');
    expect(status.code, status.stderr).toBe(0);
    const json = jsonOf<Record<string, unknown>>(status);
    expect(json['active']).toEqual([]);
    // The agreed fields, plus two added since: the boot the entry was made in and the card it was made for.
    expect(json['inactive']).toEqual([
      {
        key: 'pci:0000:00:01.0',
        address: '0000:00:01.0',
        managed: false,
        stubDriver: 'vfio-pci',
        originalDriver: 'iwlwifi',
        bootId: expect.any(String),
        hardware: expect.objectContaining({ vendor: expect.any(String), device: expect.any(String) }),
      },
    ]);
    expect(json).not.toHaveProperty('hardwareChanged');
    expect(json).toHaveProperty('iommu.enabled', true);
    expect(json).toHaveProperty('vfio.loaded', true);
    expect(hostdev('reattach', '0000:00:01.0').code).toBe(0);
    expect(jsonOf<{ inactive: unknown[] }>(hostdev('status', '--json')).inactive).toEqual([]);
  });

  it('assign, the three conflicts exit 4 with libvirt wording and JSON errors, list shows the owner, release', () => {
    const assign = hostdev('assign', '--domain', 'vm1', '0000:00:01.0', '0000:00:02.0', '0000:00:03.0', '--json');
    expect(assign.code, assign.stderr).toBe(0);
    const again = hostdev('assign', '--domain', 'vm1', '0000:00:01.0');
    expect(again.code).toBe(4);
    expect(again.stderr).toContain('PCI device 0000:00:01.0 is in use by driver qemu, domain vm1');
    const other = hostdev('assign', '--domain', 'vm2', '0000:00:02.0', '--json');
    expect(other.code).toBe(4);
    expect(JSON.parse(other.stderr)).toMatchObject({ error: { code: 'HOSTDEV_IN_USE', details: { owner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' } } } });
    expect(hostdev('assign', '--domain', 'vm1', '--hypervisor', 'xen', '0000:00:03.0').code).toBe(4);
    expect(jsonOf<{ active: unknown[] }>(hostdev('status', '--json')).active).toHaveLength(3);

    const list = jsonOf<Array<{ address: string; owner: unknown }>>(hostdev('list', '--json'));
    expect(list.find((device) => device.address === '0000:00:01.0')?.owner).toEqual({ driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' });
    expect(list.find((device) => device.address === '0000:00:00.0')?.owner).toBeNull();

    const release = hostdev('release', '--domain', 'vm1', '--json');
    expect(release.code, release.stderr).toBe(0);
    expect(jsonOf<{ reattached: string[] }>(release).reattached).toEqual(['0000:00:01.0', '0000:00:02.0', '0000:00:03.0']);
  });

  it('assign --dry-run prints the exact ordered writes and changes nothing', () => {
    const before = treeSnapshot(root);
    const dry = hostdev('assign', '--domain', 'vm1', '0000:00:01.0', '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toBe(
      [
        'assign plan (dry run: nothing was changed):',
        '  write /sys/bus/pci/devices/0000:00:01.0/driver_override "vfio-pci"',
        '  write /sys/bus/pci/drivers/iwlwifi/unbind "0000:00:01.0"',
        '  write /sys/bus/pci/drivers_probe "0000:00:01.0"',
        '  check 0000:00:01.0 driver is vfio-pci',
        '  write /sys/bus/pci/devices/0000:00:01.0/reset "1"',
        '  table 0000:00:01.0 -> active (driver qemu, domain vm1)',
        '',
      ].join('\n'),
    );
    expect(treeSnapshot(root)).toEqual(before);
    const json = jsonOf<{ writes: unknown[] }>(hostdev('assign', '--domain', 'vm1', '0000:00:01.0', '--dry-run', '--json'));
    expect(json.writes).toEqual([
      { path: '/sys/bus/pci/devices/0000:00:01.0/driver_override', value: 'vfio-pci' },
      { path: '/sys/bus/pci/drivers/iwlwifi/unbind', value: '0000:00:01.0' },
      { path: '/sys/bus/pci/drivers_probe', value: '0000:00:01.0' },
      { path: '/sys/bus/pci/devices/0000:00:01.0/reset', value: '1' },
    ]);
    expect(jsonOf<{ active: unknown[] }>(hostdev('status', '--json')).active).toEqual([]);
  });

  it('bad input: a malformed address exits 2, a missing device exits 3 with "not found on this host"', () => {
    expect(hostdev('detach', '../../etc').code).toBe(2);
    const missing = hostdev('assign', '--domain', 'vm1', '0000:00:1f.7');
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('PCI device 0000:00:1f.7 not found on this host');
  });
});

describe('the seed through the CLI, across processes', () => {
  beforeEach(() => setUp('workstation'));

  it('VFs removed by sriov_numvfs=0 while a domain holds them are pruned at release; the address can be assigned again', () => {
    const vfs = ['0000:02:10.0', '0000:02:10.2'];
    const assign = hostdev('assign', '--domain', 'vm1', '--with-group', ...vfs, '0000:01:00.0');
    expect(assign.code, assign.stderr).toBe(0);
    const removed = runCli(['--root', root, 'sim', 'write', '/sys/bus/pci/devices/0000:02:00.0/sriov_numvfs', '0']);
    expect(removed.code, removed.stderr).toBe(0);

    const release = hostdev('release', '--domain', 'vm1', '--json');
    expect(release.code, release.stderr).toBe(0);
    const report = jsonOf<{ pruned: string[]; reattached: string[] }>(release);
    expect([...report.pruned].sort()).toEqual(vfs);
    expect(report.reattached).toEqual(['0000:01:00.0', '0000:01:00.1']);
    expect(jsonOf<{ active: unknown[]; inactive: unknown[] }>(hostdev('status', '--json'))).toMatchObject({ active: [], inactive: [] });

    expect(runCli(['--root', root, 'sim', 'write', '/sys/bus/pci/devices/0000:02:00.0/sriov_numvfs', '2']).code).toBe(0);
    const again = hostdev('assign', '--domain', 'vm2', vfs[0]!);
    expect(again.code, again.stderr).toBe(0);
  });
});
