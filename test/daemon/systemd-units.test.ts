import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const UNITS = fileURLToPath(new URL('../../systemd/', import.meta.url));
const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
// scripts/ensure-system-deps.sh installs Debian's systemd; only a host without it (not Debian, no root) skips.
const missing = analyze.error !== undefined || analyze.status !== 0;
if (missing) process.stdout.write('systemd-analyze is not installed (scripts/ensure-system-deps.sh installs it as root): the unit checks are skipped\n');

function verify(dir: string): { code: number | null; output: string } {
  const run = spawnSync('systemd-analyze', ['verify', path.join(dir, 'hostdev.socket'), path.join(dir, 'hostdev.service')], { encoding: 'utf8' });
  return { code: run.status, output: `${run.stdout}${run.stderr}` };
}

describe.skipIf(missing)('the systemd units', () => {
  it('pass systemd-analyze verify', () => {
    const result = verify(UNITS);
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });

  it('are checked for real: a misspelt directive makes the same verify complain', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hostdev-units-'));
    try {
      for (const unit of ['hostdev.socket', 'hostdev.service']) copyFileSync(path.join(UNITS, unit), path.join(dir, unit));
      const service = path.join(dir, 'hostdev.service');
      writeFileSync(service, readFileSync(service, 'utf8').replace('Type=exec', 'Type=exek'));
      const result = verify(dir);
      // verify exits 0 on a directive it ignores, and says so: the first test asks for no output at all.
      expect(result.output).toContain('Failed to parse service type');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('hostdev-mdev.service (mdev start-defined at boot) passes verify and runs that command once', () => {
    const run = spawnSync('systemd-analyze', ['verify', path.join(UNITS, 'hostdev-mdev.service')], { encoding: 'utf8' });
    expect(`${run.stdout}${run.stderr}`).toBe('');
    expect(run.status).toBe(0);
    const unit = readFileSync(path.join(UNITS, 'hostdev-mdev.service'), 'utf8');
    expect(unit).toMatch(/^Type=oneshot$/m);
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/env hostdev mdev start-defined$/m);
  });

  it('have both listeners on one socket unit, Type=exec, and keep /sys and /dev/vfio writable', () => {
    const socket = readFileSync(path.join(UNITS, 'hostdev.socket'), 'utf8');
    const service = readFileSync(path.join(UNITS, 'hostdev.service'), 'utf8');
    expect(socket.match(/^ListenStream=.*$/gm)).toEqual(['ListenStream=/run/hostdev/hostdev.sock', 'ListenStream=/run/hostdev/hostdev-ro.sock']);
    expect(service).toMatch(/^Type=exec$/m);
    expect(service).toMatch(/^ProtectSystem=strict$/m);
    for (const off of ['ProtectKernelTunables', 'PrivateDevices']) expect(service).toMatch(new RegExp(`^${off}=no$`, 'm'));
    expect(service).not.toMatch(/^DevicePolicy=/m);
    expect(service).not.toMatch(/^(ReadOnlyPaths|InaccessiblePaths)=.*\/(sys|dev)/m);
  });
});
