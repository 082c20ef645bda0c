import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_TIMER_MS, readTimeoutFromEnv, readTimeoutNotice } from '../../src/sysfs/bounded-inventory.js';
import { parseVlan } from '../../src/net/vf-net-config.js';
import { runCli } from '../support/cli.js';
import { simHostPerTest } from '../support/sim-host-per-test.js';

// Numeric and empty option values: what Number() or an empty string would quietly turn into
// something else is refused (exit 2) or, for the read bound, capped with a warning.

const host = simHostPerTest('hostdev-options-', 'sriov-nic');
const VF = '0000:01:10.3';
const G = () => ['--root', host.root, '--state-dir', host.stateDir, '--simulate'];

describe('--vlan takes decimal digits only', () => {
  it('refuses "", " ", 1e3, 0x7, +3, -1, 4095 and 1.0 with exit 2; the VF stays where it was', () => {
    for (const vlan of ['', ' ', '1e3', '0x7', '+3', '-1', '4095', '1.0', '07 ']) {
      const run = runCli([...G(), 'assign', '--domain', 'vm3', '--mac', '52:54:00:00:00:33', '--vlan', vlan, VF]);
      expect(run.code, `--vlan ${JSON.stringify(vlan)}: ${run.stderr}`).toBe(2);
      expect(run.stderr).toContain('is not a VLAN ID');
    }
    expect(runCli([...G(), 'status', '--json']).stdout).not.toContain(VF);
    for (const good of ['0', '3', '4094', '007']) expect(parseVlan(good)).toBe(Number(good));
  });
});

describe('HOSTDEV_READ_TIMEOUT_MS above 2^31-1', () => {
  it('is capped at 2^31-1 ms (Node would fire the timer after 1 ms) and the command says so', () => {
    expect(readTimeoutFromEnv({ HOSTDEV_READ_TIMEOUT_MS: '99999999999' })).toBe(MAX_TIMER_MS);
    expect(readTimeoutFromEnv({ HOSTDEV_READ_TIMEOUT_MS: '60000' })).toBe(60000);
    expect(readTimeoutNotice({ HOSTDEV_READ_TIMEOUT_MS: '60000' })).toBeNull();
    const run = runCli([...G(), 'vf', 'list', '0000:01:00.0'], { env: { HOSTDEV_READ_TIMEOUT_MS: '99999999999' } });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(`HOSTDEV_READ_TIMEOUT_MS=99999999999 is above ${MAX_TIMER_MS} ms`);
    const wait = runCli([...G(), 'reset', '--wait', '99999999999', VF]);
    expect(wait.code).toBe(2);
  });
});

describe('empty --state-dir, HOSTDEV_STATE_DIR and --hypervisor are refused', () => {
  it('does not use (and chmod) the current directory', () => {
    const cwd = fs.mkdtempSync(path.join(path.dirname(host.root), 'cwd-'));
    fs.chmodSync(cwd, 0o755);
    for (const [args, env, says] of [
      [['--root', host.root, '--simulate', '--state-dir', '', 'status'], {}, '--state-dir is empty'],
      [['--root', host.root, 'status'], { HOSTDEV_STATE_DIR: '' }, 'HOSTDEV_STATE_DIR is empty'],
      [['--root', host.root, '--simulate', '--state-dir', ' ', 'detach', VF], {}, '--state-dir is empty'],
    ] as const) {
      const run = (() => {
        const here = process.cwd();
        process.chdir(cwd);
        try {
          return runCli(args, { env });
        } finally {
          process.chdir(here);
        }
      })();
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toContain(says);
    }
    expect(fs.statSync(cwd).mode & 0o777).toBe(0o755);
    expect(fs.readdirSync(cwd)).toEqual([]);
  });

  it('--hypervisor "" for assign, release and qemu-args', () => {
    for (const args of [
      ['assign', '--domain', 'vm1', '--hypervisor', '', VF],
      ['release', '--domain', 'vm1', '--hypervisor', ''],
      ['qemu-args', '--domain', 'vm1', '--hypervisor', ' '],
    ]) {
      const run = runCli([...G(), ...args]);
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(2);
      expect(run.stderr).toContain('--hypervisor is empty');
    }
  });
});
