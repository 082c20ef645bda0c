import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { udevRules } from '../../src/core/claims.js';
import type { PciAddress } from '../../src/core/address.js';
import type { DeviceKey } from '../../src/core/device-key.js';

const BOOT = fileURLToPath(new URL('../../deploy/boot/', import.meta.url));
const UNIT = path.join(BOOT, 'hostdev-claims.service');
const SCRIPTS = ['install.sh', 'initramfs-tools/hooks/hostdev-claims', 'initramfs-tools/scripts/init-top/hostdev-claims'];

function has(command: string, args: readonly string[]): boolean {
  const run = spawnSync(command, args, { encoding: 'utf8' });
  return run.error === undefined && run.status === 0;
}

const analyze = has('systemd-analyze', ['--version']);
/**
 * `udevadm verify` came with systemd 254; Debian 12's udev (252) has no such verb, so
 * scripts/ensure-system-deps.sh unpacks the backports' udevadm (254) into .cache/udevadm.
 */
const UNPACKED = fileURLToPath(new URL('../../.cache/udevadm/', import.meta.url));
const udevadm: { command: string; env: NodeJS.ProcessEnv } | null = has('udevadm', ['verify', '--help'])
  ? { command: 'udevadm', env: process.env }
  : existsSync(path.join(UNPACKED, 'bin/udevadm'))
    ? { command: path.join(UNPACKED, 'bin/udevadm'), env: { ...process.env, LD_LIBRARY_PATH: path.join(UNPACKED, 'usr/lib/x86_64-linux-gnu/systemd') } }
    : null;
const udevVerify = udevadm !== null && spawnSync(udevadm.command, ['verify', '--help'], { env: udevadm.env }).status === 0;

function verifyRules(text: string): { code: number | null; output: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'hostdev-boot-rules-'));
  try {
    const file = path.join(dir, '70-hostdev-claims.rules');
    writeFileSync(file, text);
    const run = spawnSync(udevadm!.command, ['verify', file], { encoding: 'utf8', env: udevadm!.env });
    return { code: run.status, output: `${run.stdout}${run.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const shells = ['sh', 'dash', 'bash', 'busybox'].filter((shell) => has(shell, shell === 'busybox' ? ['sh', '-c', 'true'] : ['-c', 'true']));

function verifyUnit(file: string): { code: number | null; output: string } {
  const run = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
  return { code: run.status, output: `${run.stdout}${run.stderr}` };
}

describe.skipIf(!analyze)('hostdev-claims.service (systemd-analyze verify; skipped when systemd-analyze is not installed)', () => {
  it('passes systemd-analyze verify', () => {
    expect(verifyUnit(UNIT)).toEqual({ code: 0, output: '' });
  });

  it('is checked for real: a misspelt directive makes the same verify complain', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hostdev-boot-unit-'));
    try {
      const copy = path.join(dir, 'hostdev-claims.service');
      copyFileSync(UNIT, copy);
      writeFileSync(copy, readFileSync(copy, 'utf8').replace('Type=oneshot', 'Type=oneshoot'));
      expect(verifyUnit(copy).output).toContain('Failed to parse service type');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs `claims apply` early: no default dependencies, before basic.target, after local filesystems and udev coldplug', () => {
    const unit = readFileSync(UNIT, 'utf8');
    expect(unit).toMatch(/^DefaultDependencies=no$/m);
    expect(unit).toMatch(/^Before=.*\bbasic\.target\b/m);
    expect(unit).toMatch(/^After=.*\blocal-fs\.target\b.*\bsystemd-udev-trigger\.service\b/m);
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/env hostdev --no-daemon claims apply /m);
    expect(unit).toMatch(/^Type=oneshot$/m);
  });
});

describe.skipIf(!udevVerify)('the generated udev rules (udevadm verify; skipped when no udevadm 254+ is installed or unpacked in .cache/udevadm)', () => {
  const rules = udevRules([claim('0000:03:00.0', 'vfio-pci', '144d', 'a808'), claim('0000:02:10.0', 'mlx5_vfio_pci', '15b3', '101e')]);

  it('pass udevadm verify', () => {
    const result = verifyRules(rules);
    expect(result.code, result.output).toBe(0);
  });

  it('are checked for real: an assignment where a match belongs makes the same verify fail', () => {
    const result = verifyRules(rules.replace('SUBSYSTEM=="pci"', 'SUBSYSTEM="pci"'));
    expect(result.code).toBe(1);
    expect(result.output).toContain('Invalid operator for SUBSYSTEM');
  });
});

describe('the boot shell scripts', () => {
  it.each(SCRIPTS)('%s parses in every POSIX shell here (sh -n)', (script) => {
    expect(shells.length).toBeGreaterThan(0);
    for (const shell of shells) {
      const args = shell === 'busybox' ? ['sh', '-n', path.join(BOOT, script)] : ['-n', path.join(BOOT, script)];
      const run = spawnSync(shell, args, { encoding: 'utf8' });
      expect(run.status, `${shell}: ${run.stderr}`).toBe(0);
    }
  });

  it.each(SCRIPTS)('%s is executable, has a #!/bin/sh line and no bashism (checked by dash in posix mode)', (script) => {
    const file = path.join(BOOT, script);
    expect(statSync(file).mode & 0o111).not.toBe(0);
    expect(readFileSync(file, 'utf8').split('\n')[0]).toBe('#!/bin/sh');
    expect(readFileSync(file, 'utf8')).not.toMatch(/\[\[|\bfunction\b|\$\{[A-Za-z_]+\/|<<<|\bsource\b|\blocal\b/);
  });

  it('the initramfs scripts answer `prereqs` with nothing (they need no other script) and the init-top one sorts before udev', () => {
    for (const script of SCRIPTS.slice(1)) {
      const run = spawnSync('sh', [path.join(BOOT, script), 'prereqs'], { encoding: 'utf8' });
      expect(run.status).toBe(0);
      expect(run.stdout.trim()).toBe('');
    }
    expect('hostdev-claims' < 'udev').toBe(true);
  });

  it('install.sh with DESTDIR puts the unit and the initramfs files in place and enables nothing', () => {
    const dest = mkdtempSync(path.join(tmpdir(), 'hostdev-boot-install-'));
    try {
      const run = spawnSync('sh', [path.join(BOOT, 'install.sh')], { env: { ...process.env, DESTDIR: dest, PATH: '/usr/bin:/bin' }, encoding: 'utf8' });
      expect(run.status, run.stderr).toBe(0);
      expect(run.stdout).toContain(`installed under ${dest} (nothing enabled)`);
      expect(readFileSync(path.join(dest, 'etc/systemd/system/hostdev-claims.service'), 'utf8')).toBe(readFileSync(UNIT, 'utf8'));
      expect(statSync(path.join(dest, 'etc/initramfs-tools/hooks/hostdev-claims')).mode & 0o777).toBe(0o755);
      expect(statSync(path.join(dest, 'etc/initramfs-tools/scripts/init-top/hostdev-claims')).mode & 0o777).toBe(0o755);
      expect(existsSync(path.join(dest, 'etc/hostdev/claims.d'))).toBe(true);
    } finally {
      rmSync(dest, { recursive: true, force: true });
    }
  });
});

function claim(address: string, driver: string, vendor: string, device: string) {
  return { key: `pci:${address}` as DeviceKey, address: address as PciAddress, driver, match: { vendor, device } };
}
