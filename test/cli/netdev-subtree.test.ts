import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonOf, runCli } from '../support/cli.js';

// A virtio NIC's interface is one level down (DEVICE/virtio2/net/eth0), found through
// /sys/class/net; the host's use of it (here a default route) is then seen, shown and guarded.
const NIC = '0000:00:19.0';
let dir = '';
let root = '';
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'hostdev-netdev-'));
  root = path.join(dir, 'host');
  expect(runCli(['sim', 'create', root, '--preset', 'workstation']).code).toBe(0);
  const device = path.join(root, 'sys/devices/pci0000:00', NIC);
  rmSync(path.join(device, 'net'), { recursive: true, force: true });
  mkdirSync(path.join(device, 'virtio2/net/eth0'), { recursive: true });
  mkdirSync(path.join(root, 'sys/class/net'), { recursive: true });
  symlinkSync(`../../devices/pci0000:00/${NIC}/virtio2/net/eth0`, path.join(root, 'sys/class/net/eth0'));
  mkdirSync(path.join(root, 'sys/devices/virtual/net/lo'), { recursive: true });
  symlinkSync('../../devices/virtual/net/lo', path.join(root, 'sys/class/net/lo'));
  mkdirSync(path.join(root, 'proc/net'), { recursive: true });
  writeFileSync(
    path.join(root, 'proc/net/route'),
    'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\neth0\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n',
  );
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hs = (...args: string[]) => runCli(['--root', root, '--state-dir', path.join(dir, 'state'), ...args]);

describe('netdevs under a function', () => {
  it('are found one level down, and the host use of them is shown, marked in list and refused by detach', () => {
    const show = jsonOf<{ netdevs: string[]; hostUse: { kind: string; detail: string }[] }>(hs('show', NIC, '--json'));
    expect(show.netdevs).toEqual(['eth0']);
    expect(show.hostUse).toEqual([{ kind: 'route', detail: 'eth0 carries route default' }]);
    expect(hs('show', NIC).stdout).toMatch(/Host use +eth0 carries route default \(detach refuses it without --force\)/);
    expect(hs('list').stdout).toMatch(new RegExp(`${NIC} .* e1000e \\*Active\\*`));
    const detach = hs('detach', NIC, '--dry-run');
    expect(detach.code).toBe(4);
    expect(detach.stderr).toContain('is in use by the host: eth0 carries route default');
  });

  it('sim snapshot copies the host use, so a rehearsal on the copy refuses the same detach', () => {
    const copy = path.join(dir, 'copy');
    const snapshot = runCli(['--root', root, 'sim', 'snapshot', copy, '--json']);
    expect(snapshot.code, snapshot.stderr).toBe(0);
    expect(jsonOf<{ hostUse: number }>(snapshot).hostUse).toBe(1);
    const detach = runCli(['--root', copy, '--simulate', 'detach', NIC, '--dry-run']);
    expect(detach.code, detach.stderr).toBe(4);
    expect(detach.stderr).toContain('is in use by the host: eth0 carries route default');
  });
});
