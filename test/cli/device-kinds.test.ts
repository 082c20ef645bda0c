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

describe('positional keys of mixed kinds: assign and release, all or nothing (the path --domain-xml takes)', () => {
  const NIC = '0000:00:19.0';
  const MDEV = 'mdev:4b20d080-1b54-4048-85b3-a6a62d165c01';
  const driver = (): string | null => jsonOf<{ driver: string | null }>(cli(['--json', 'show', NIC])).driver;

  it('assigns a PCI function (bare address and pci: key), an mdev, a USB and a SCSI device in one command and releases them by key', () => {
    const dry = cli(['assign', '--domain', 'mix', NIC, MDEV, 'usb:1-1.2', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(driver()).toBe('e1000e');
    const assigned = cli(['assign', '--domain', 'mix', NIC, MDEV, 'usb:1-1.2', 'scsi:2:0:1:0']);
    expect(assigned.code, assigned.stderr).toBe(0);
    expect(assigned.stdout.split('\n')[0]).toBe(`assigned to domain mix (qemu): ${NIC}, ${MDEV}, usb:1-1.2, scsi:2:0:1:0`);
    expect(driver()).toBe('vfio-pci');
    type Status = { active: { key: string; usedBy: { vm: string } }[]; devices?: { key: string; usedBy: { vm: string } }[] };
    const status = jsonOf<Status>(cli(['--json', 'status']));
    expect(status.active.map((entry) => `${entry.usedBy.vm} ${entry.key}`)).toEqual([`mix pci:${NIC}`]);
    expect(status.devices?.map((entry) => `${entry.usedBy.vm} ${entry.key}`)).toEqual([`mix ${MDEV}`, 'mix scsi:2:0:1:0', 'mix usb:1-1.2']);

    const scsi = cli(['release', '--domain', 'mix', 'scsi:2:0:1:0']);
    expect(scsi.stdout.trim()).toBe('released 1 mediated/USB/SCSI device(s) of domain mix: scsi:2:0:1:0');
    const released = cli(['--json', 'release', '--domain', 'mix', `pci:${NIC}`, 'usb:1-1.2']);
    expect(released.code, released.stderr).toBe(0);
    const report = jsonOf<{ released: string[]; devices: { released: string[] } }>(released);
    expect([report.released, report.devices.released]).toEqual([[NIC], ['usb:1-1.2']]);
    expect(driver()).toBe('e1000e');
    expect(cli(['release', '--domain', 'mix']).code).toBe(0);
    expect(jsonOf<Status>(cli(['--json', 'status'])).devices).toBeUndefined();
  });

  it('one device another domain holds fails the whole command: the PCI function goes back to its driver', () => {
    expect(cli(['assign', '--domain', 'first', 'usb:1-1.2']).code).toBe(0);
    const refused = cli(['--json', 'assign', '--domain', 'second', NIC, MDEV, 'usb:1-1.2']);
    expect(refused.code).toBe(4);
    expect(JSON.parse(refused.stderr).error).toMatchObject({ code: 'HOSTDEV_IN_USE', message: 'USB device usb:1-1.2 is in use by driver qemu, domain first' });
    expect(driver()).toBe('e1000e');
    const status = jsonOf<{ active: unknown[]; devices?: { key: string }[] }>(cli(['--json', 'status']));
    expect([status.active, status.devices?.map((entry) => entry.key)]).toEqual([[], ['usb:1-1.2']]);
    expect(cli(['release', '--domain', 'first']).code).toBe(0);
  });

  it('PCI-only options need a PCI function among the devices; --shareable needs a scsi: key; keys alone name a holder', () => {
    expect(cli(['assign', '--domain', 'opt', '--unmanaged', MDEV]).code).toBe(2);
    const shareable = cli(['--json', 'assign', '--domain', 'opt', '--shareable', NIC, MDEV]);
    expect([shareable.code, JSON.parse(shareable.stderr).error.message]).toEqual([2, '--shareable applies to scsi: keys only']);
    const shared = cli(['--json', 'assign', '--domain', 'opt', '--shareable', MDEV, 'scsi:2:0:1:0']);
    expect(shared.code, shared.stderr).toBe(0);
    expect(cli(['assign', '--domain', 'opt2', '--shareable', 'scsi:2:0:1:0']).code).toBe(0);
    expect(cli(['release', '--domain', 'opt2']).code).toBe(0);
    expect(cli(['release', '--domain', 'opt']).code).toBe(0);

    const held = cli(['--json', 'assign', '--domain', 'held', MDEV, '--holder-pid', String(process.pid)]);
    expect(held.code, held.stderr).toBe(0);
    const holders = jsonOf<{ holders: { owner: { vm: string }; holder: { kind: string; pid?: number } }[] }>(cli(['--json', 'status'])).holders;
    expect(holders.map((h) => [h.owner.vm, h.holder.kind, h.holder.pid])).toEqual([['held', 'pid', process.pid]]);
    expect(cli(['release', '--domain', 'held']).code).toBe(0);
  });
});

describe('domains lists the domains that hold devices of every kind', () => {
  const NIC = '0000:00:19.0';
  const MDEV = 'mdev:4b20d080-1b54-4048-85b3-a6a62d165c01';

  it('PCI functions in devices, the other kinds in otherKeys (a shared SCSI device under each domain); the text names them all', () => {
    expect(cli(['assign', '--domain', 'dom-a', NIC, MDEV, '--holder-pid', String(process.pid)]).code).toBe(0);
    expect(cli(['assign', '--domain', 'dom-b', 'usb:1-1.2']).code).toBe(0);
    expect(cli(['assign', '--domain', 'dom-c', '--shareable', 'scsi:2:0:0:0']).code).toBe(0);
    expect(cli(['assign', '--domain', 'dom-d', '--shareable', 'scsi:2:0:0:0']).code).toBe(0);
    type Domain = { domain: string; devices: { key: string; address: string }[]; otherKeys?: string[]; holder: { alive: boolean | null } | null };
    const domains = jsonOf<Domain[]>(cli(['--json', 'domains']));
    expect(domains.map((d) => [d.domain, d.devices.map((device) => device.address), d.otherKeys, d.holder?.alive ?? null])).toEqual([
      ['dom-a', [NIC], [MDEV], true],
      ['dom-c', [], ['scsi:2:0:0:0'], null],
      ['dom-d', [], ['scsi:2:0:0:0'], null],
      ['dom-b', [], ['usb:1-1.2'], null],
    ]);
    const text = cli(['domains']).stdout;
    expect(text).toMatch(new RegExp(`qemu/dom-a +${NIC}, ${MDEV} +pid ${process.pid} \\(alive\\)`));
    expect(text).toMatch(/qemu\/dom-b +usb:1-1\.2 /);
    expect(text).toMatch(/qemu\/dom-d +scsi:2:0:0:0 /);
    for (const domain of ['dom-a', 'dom-b', 'dom-c', 'dom-d']) expect(cli(['release', '--domain', domain]).code).toBe(0);
    expect(jsonOf<Domain[]>(cli(['--json', 'domains']))).toEqual([]);
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
