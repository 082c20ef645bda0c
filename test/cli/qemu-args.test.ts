import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonOf, runCli } from '../support/cli.js';

// `hostdev qemu-args --domain NAME`: the arguments for the domain's active devices, from the tables.
let dir = '';
let root = '';
let stateDir = '';

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'hostdev-qemu-args-'));
  root = path.join(dir, 'root');
  stateDir = path.join(dir, 'state');
  expect(runCli(['sim', 'create', root, '--preset', 'sriov-nic']).code).toBe(0);
  // Assigned for real, so the tables match the host (a table entry on igbvf would be drift).
  const sim = ['--root', root, '--state-dir', stateDir, '--simulate'];
  for (const [domain, address] of [['vm1', '0000:01:10.2'], ['vm1', '0000:01:10.0'], ['vm2', '0000:01:10.1']] as const) {
    const run = runCli([...sim, 'assign', '--domain', domain, address]);
    expect(run.code, run.stderr).toBe(0);
  }
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const globals = () => ['--root', root, '--state-dir', stateDir];

describe('hostdev qemu-args', () => {
  it('prints one vfio-pci device per active device of the domain, behind root ports, as a JSON argv', () => {
    const run = runCli(['qemu-args', '--domain', 'vm1', '--json', ...globals()]);
    expect(run.code, run.stderr).toBe(0);
    expect(jsonOf<string[]>(run)).toEqual([
      '-device', 'pcie-root-port,id=hostdev-0000_01_10_0-rp,chassis=1,slot=0',
      '-device', 'vfio-pci,host=0000:01:10.0,id=hostdev-0000_01_10_0,bus=hostdev-0000_01_10_0-rp',
      '-device', 'pcie-root-port,id=hostdev-0000_01_10_2-rp,chassis=2,slot=0',
      '-device', 'vfio-pci,host=0000:01:10.2,id=hostdev-0000_01_10_2,bus=hostdev-0000_01_10_2-rp',
    ]);
  });

  it('prints a shell line without --json, and honours --machine pc', () => {
    const run = runCli(['qemu-args', '--domain', 'vm2', '--machine', 'pc', ...globals()]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe('-device vfio-pci,host=0000:01:10.1,id=hostdev-0000_01_10_1');
  });

  it('refuses a domain that holds nothing (exit 3), naming the domains that do', () => {
    const run = runCli(['qemu-args', '--domain', 'nobody', '--json', ...globals()]);
    expect(run.code).toBe(3);
    expect(run.stdout).toBe('');
    const error = JSON.parse(run.stderr) as { error: { code: string; message: string; details: { domains: unknown } } };
    expect(error.error.code).toBe('HOSTDEV_DOMAIN_NOT_FOUND');
    expect(error.error.message).toContain('the domains that do: vm1 (hypervisor qemu), vm2 (hypervisor qemu)');
    expect(error.error.details.domains).toEqual([
      { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' },
      { driver: 'qemu', domain: 'vm2', hypervisor: 'qemu', vm: 'vm2' },
    ]);
  });

  it('refuses a domain asked for under another hypervisor, with the hint that names the right one', () => {
    const run = runCli(['qemu-args', '--domain', 'vm1', '--hypervisor', 'xen', ...globals()]);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('vm1 was assigned under hypervisor qemu');
  });

  it('refuses a bad --first-chassis with the usage exit code', () => {
    expect(runCli(['qemu-args', '--domain', 'vm1', '--first-chassis', 'x', ...globals()]).code).toBe(2);
    expect(runCli(['qemu-args', '--domain', 'vm1', '--machine', 'arm', ...globals()]).code).toBe(2);
  });

  it('refuses a device that went back to its host driver (exit 4), with the command that settles it', () => {
    const sim = ['--root', root, '--state-dir', stateDir, '--simulate'];
    const vf = '0000:01:10.1';
    for (const [file, value] of [
      [`/sys/bus/pci/devices/${vf}/driver/unbind`, vf],
      [`/sys/bus/pci/devices/${vf}/driver_override`, '\n'],
      ['/sys/bus/pci/drivers_probe', vf],
    ] as const) {
      const write = runCli(['--root', root, 'sim', 'write', file, value]);
      expect(write.code, write.stderr).toBe(0);
    }
    const run = runCli(['qemu-args', '--domain', 'vm2', ...sim]);
    expect(run.code, run.stderr).toBe(4);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(`${vf} (driver qemu, domain vm2) should be on vfio-pci but is on igbvf`);
    expect(run.stderr).toContain(`hostdev release --domain vm2 ${vf}`);
  });
});
