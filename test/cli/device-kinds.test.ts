import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimulatedHost } from '../../src/sim-entry.js';
import { jsonOf, runCli } from '../support/cli.js';

// The commands a virsh or mdevctl user types, hostdev's way, on the virt-host preset.
const GPU = '0000:00:02.0';
const UUID = 'c297db4a-f4c2-11e6-90f6-d3b88d6c9525';
let base = '';
let root = '';
const cli = (args: string[]) => runCli(['--root', root, '--simulate', '--no-daemon', ...args]);

beforeAll(() => {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-cli-kinds-'));
  root = path.join(base, 'host');
  createSimulatedHost(root, { preset: 'virt-host' });
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('mdev, assign/release of mdev: and usb: keys, qemu-args, status', () => {
  it('mdev create --dry-run prints the write; create, list, assign, qemu-args, release, remove', () => {
    const dry = cli(['mdev', 'create', GPU, 'i915-GVTg_V5_4', '--uuid', UUID, '--dry-run']);
    expect(dry.stdout.trim()).toBe(`dry run: would write /sys/class/mdev_bus/${GPU}/mdev_supported_types/i915-GVTg_V5_4/create "${UUID}"`);
    const made = cli(['mdev', 'create', GPU, 'i915-GVTg_V5_4', '--uuid', UUID]);
    expect(made.code).toBe(0);
    expect(made.stdout.trim()).toBe(`created mdev:${UUID} (type i915-GVTg_V5_4 on ${GPU})`);
    const listed = jsonOf<{ devices: { key: string }[]; parents: { name: string }[] }>(cli(['--json', 'mdev', 'list']));
    expect(listed.devices.map((d) => d.key)).toContain(`mdev:${UUID}`);
    expect(listed.parents.map((p) => p.name)).toEqual([GPU]);

    expect(cli(['assign', '--domain', 'vm1', `mdev:${UUID}`, 'usb:1-1.2']).stdout.trim()).toBe(`assigned to domain vm1 (qemu): mdev:${UUID}, usb:1-1.2`);
    const again = cli(['--json', 'assign', '--domain', 'vm2', `mdev:${UUID}`]);
    expect(again.code).toBe(4);
    expect(JSON.parse(again.stderr).error.message).toBe(`mediated device mdev:${UUID} is in use by driver qemu, domain vm1`);
    expect(cli(['assign', '--domain', 'vm2', '0000:00:19.0', 'usb:1-4']).code).toBe(2);
    expect(cli(['assign', '--domain', 'vm2', '--driver', 'vfio-pci', 'usb:1-4']).code).toBe(2);
    const ambiguous = cli(['assign', '--domain', 'vm2', 'usb:0781:5581']);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toContain('Multiple USB devices for 781:5581, use <address> to specify one');

    const args = jsonOf<string[]>(cli(['--json', 'qemu-args', '--domain', 'vm1']));
    expect(args).toContain(`vfio-pci,sysfsdev=/sys/bus/mdev/devices/${UUID},id=hostdev-mdev-${UUID},bus=hostdev-mdev-${UUID}-rp`);
    expect(args).toContain('usb-host,hostbus=1,hostport=1.2,id=hostdev-usb-1-1_2,bus=hostdev-xhci.0');
    const status = cli(['status']);
    expect(status.stdout).toContain(`Mediated and USB devices (2), ownership only:`);
    expect(status.stdout).toMatch(new RegExp(`mdev:${UUID} +qemu/vm1`));
    expect(cli(['mdev', 'remove', UUID]).code).toBe(4);

    expect(cli(['release', '--domain', 'vm1', 'usb:1-1.2']).stdout.trim()).toBe('released 1 mediated/USB device(s) of domain vm1: usb:1-1.2');
    const rest = cli(['release', '--domain', 'vm1']);
    expect(rest.code).toBe(0);
    expect(rest.stdout).toContain(`released 1 mediated/USB device(s) of domain vm1: mdev:${UUID}`);
    expect(cli(['mdev', 'remove', UUID]).stdout.trim()).toBe(`removed mdev:${UUID}`);
    expect(Object.keys(jsonOf<object>(cli(['--json', 'status'])))).not.toContain('devices');
  });
});

describe('mdev definitions (mdevctl define/start at boot)', () => {
  it('create --persist writes a definition; start-defined makes what is missing, leaves what is there; remove --undefine drops it', () => {
    const made = jsonOf<{ definition: string }>(cli(['--json', 'mdev', 'create', GPU, 'i915-GVTg_V5_4', '--uuid', UUID, '--persist']));
    expect(made.definition).toBe(path.join(root, 'etc/hostdev/mdev.d', `${UUID}.json`));
    expect(JSON.parse(readFileSync(made.definition, 'utf8'))).toEqual({ uuid: UUID, parent: GPU, type: 'i915-GVTg_V5_4', start: 'auto', attrs: [] });
    expect(cli(['mdev', 'start-defined']).stdout.trim()).toBe(`mdev:${UUID} is there already`);
    // a reboot: the mdev is gone, its definition is not
    expect(cli(['mdev', 'remove', UUID]).code).toBe(0);
    expect(existsSync(made.definition)).toBe(true);
    expect(cli(['mdev', 'start-defined', '--dry-run']).stdout.trim()).toBe(
      `dry run: would write /sys/class/mdev_bus/${GPU}/mdev_supported_types/i915-GVTg_V5_4/create "${UUID}"`,
    );
    expect(cli(['mdev', 'start-defined']).stdout.trim()).toBe(`created mdev:${UUID} (type i915-GVTg_V5_4 on ${GPU})`);
    expect(jsonOf<{ devices: { key: string }[] }>(cli(['--json', 'mdev', 'list'])).devices.map((d) => d.key)).toContain(`mdev:${UUID}`);
    // a definition whose parent is not there: reported, exit 8, the others still made
    const other = 'd297db4a-f4c2-11e6-90f6-d3b88d6c9525';
    writeFileSync(path.join(root, 'etc/hostdev/mdev.d', `${other}.json`), JSON.stringify({ uuid: other, parent: '0000:09:00.0', type: 'x' }));
    const partial = cli(['mdev', 'start-defined']);
    expect(partial.code).toBe(8);
    expect(partial.stderr).toContain(`mdev:${other} not made: 0000:09:00.0 is not a mediated device parent on this host`);
    rmSync(path.join(root, 'etc/hostdev/mdev.d', `${other}.json`));
    expect(cli(['mdev', 'remove', UUID, '--undefine']).code).toBe(0);
    expect(existsSync(made.definition)).toBe(false);
    expect(cli(['mdev', 'start-defined']).stdout.trim()).toBe('no mediated device is defined');
  });
});
