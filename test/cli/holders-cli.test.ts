import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { jsonOf, runCli } from '../support/cli.js';

// The command line of holder leases, domains and adopt, on a simulated host without a daemon.
let dir = '';
let sim: string[] = [];
let child: ChildProcess | null = null;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'hostdev-holders-cli-'));
  const root = path.join(dir, 'root');
  expect(runCli(['sim', 'create', root, '--preset', 'sriov-nic']).code).toBe(0);
  sim = ['--root', root, '--state-dir', path.join(dir, 'state'), '--simulate', '--no-daemon'];
});
afterEach(() => {
  if (child !== null && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = null;
  rmSync(dir, { recursive: true, force: true });
});

describe('hostdev assign --holder-pid, status, domains', () => {
  it('shows the holder while it runs; the next command after it is killed releases the domain and says so', async () => {
    child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    await new Promise((resolve) => child!.once('spawn', resolve));
    const pid = child.pid!;
    const assigned = runCli([...sim, 'assign', '--domain', 'vm1', '--holder-pid', String(pid), '0000:01:10.0']);
    expect(assigned.code, assigned.stderr).toBe(0);

    const status = runCli([...sim, 'status', '--json']);
    expect(jsonOf<{ holders: unknown[] }>(status).holders).toEqual([
      expect.objectContaining({ owner: expect.objectContaining({ vm: 'vm1' }), holder: { kind: 'pid', pid, startTime: expect.stringMatching(/^\d+$/) }, alive: true }),
    ]);
    expect(runCli([...sim, 'status']).stdout).toMatch(new RegExp(`Holders \\(1\\)[^]*qemu/vm1 +pid ${pid} \\(alive\\)`));
    const domains = runCli([...sim, 'domains', '--json']);
    expect(jsonOf(domains)).toEqual([
      { hypervisor: 'qemu', domain: 'vm1', devices: [{ key: 'pci:0000:01:10.0', address: '0000:01:10.0' }], holder: expect.objectContaining({ alive: true }) },
    ]);
    expect(runCli([...sim, 'domains']).stdout).toMatch(new RegExp(`qemu/vm1 +0000:01:10\\.0 +pid ${pid} \\(alive\\)`));

    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const after = runCli([...sim, 'domains', '--json']);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stderr).toMatch(new RegExp(`warning: the holder of domain vm1 .*pid ${pid}, is gone \\(pid ${pid} exited\\): released 0000:01:10\\.0`));
    expect(jsonOf(after)).toEqual([]);
  });

  it('refuses a --holder-pid that is not a pid, and one that does not run', () => {
    const bad = runCli([...sim, 'assign', '--domain', 'vm1', '--holder-pid', '12x', '0000:01:10.0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--holder-pid takes a process id/);
    const none = runCli([...sim, 'assign', '--domain', 'vm1', '--holder-pid', String(2 ** 22 + 7), '0000:01:10.0', '--json']);
    expect(none.code).toBe(2);
    expect(JSON.parse(none.stderr).error.code).toBe('HOSTDEV_USAGE');
  });
});

describe('hostdev adopt', () => {
  it('adopts a device on vfio-pci (dry run first), and refuses one on its host driver with exit 4', () => {
    expect(runCli([...sim, 'detach', '0000:01:10.0']).code).toBe(0);
    const dry = runCli([...sim, 'adopt', '--domain', 'vm1', '--dry-run', '0000:01:10.0']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/set-active|active/);
    expect(jsonOf<{ active: unknown[] }>(runCli([...sim, 'status', '--json'])).active).toEqual([]);

    const adopted = runCli([...sim, 'adopt', '--domain', 'vm1', '0000:01:10.0']);
    expect(adopted.code, adopted.stderr).toBe(0);
    expect(adopted.stdout).toContain('adopted for domain vm1 (qemu): 0000:01:10.0');

    const refused = runCli([...sim, 'adopt', '--domain', 'vm1', '0000:01:10.1', '--json']);
    expect(refused.code).toBe(4);
    expect(JSON.parse(refused.stderr).error.code).toBe('HOSTDEV_NOT_ON_STUB');
    const taken = runCli([...sim, 'adopt', '--domain', 'vm2', '0000:01:10.0', '--json']);
    expect(taken.code).toBe(4);
    expect(JSON.parse(taken.stderr).error.code).toBe('HOSTDEV_IN_USE');
  });
});
