import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSimulatedHost } from '../../src/sim-entry.js';
import { driverOf as driverOfOn } from '../sim/helpers.js';
import { jsonOf, runCli } from '../support/cli.js';

// `assign --domain-xml FILE` and `release --domain-xml FILE` on the virt-host preset, with domain XML
// files written from libvirt's formatdomain (test/fixtures/libvirt).
const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'libvirt');
const fixture = (name: string): string => path.join(FIXTURES, name);
const NIC = '0000:00:19.0';
const MDEV = 'mdev:4b20d080-1b54-4048-85b3-a6a62d165c01';

let base = '';
let root = '';
const cli = (args: string[]) => runCli(['--root', root, '--state-dir', path.join(base, 'state'), '--simulate', '--no-daemon', ...args]);
const driverOf = (address: string): string | null => driverOfOn(root, address);
const errorOf = (run: { stderr: string }): { code: string; message: string; details: Record<string, unknown> } => JSON.parse(run.stderr).error;

interface StatusJson {
  active: { key: string; usedBy: { vm: string }; managed: boolean }[];
  devices?: { key: string; usedBy: { vm: string } }[];
}

beforeEach(() => {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-domain-xml-'));
  root = path.join(base, 'host');
  createSimulatedHost(root, { preset: 'virt-host' });
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

describe('assign --domain-xml: the <hostdev> elements of a libvirt domain', () => {
  it("a virsh dumpxml with a managed PCI hostdev, an mdev and a USB device by vendor/product: all to the domain of its <name>; release --domain-xml gives them back", () => {
    const assigned = cli(['assign', '--domain-xml', fixture('desktop-passthrough.xml')]);
    expect(assigned.stderr).toBe('');
    expect(assigned.stdout.split('\n')[0]).toBe(`assigned to domain win11 (qemu): ${NIC}, ${MDEV}, usb:1-1.2`);
    expect(driverOf(NIC)).toBe('vfio-pci');
    const status = jsonOf<StatusJson>(cli(['--json', 'status']));
    expect(status.active.map((entry) => [entry.key, entry.usedBy.vm, entry.managed])).toEqual([[`pci:${NIC}`, 'win11', true]]);
    expect(status.devices?.map((entry) => [entry.key, entry.usedBy.vm])).toEqual([
      [MDEV, 'win11'],
      ['usb:1-1.2', 'win11'],
    ]);

    const released = jsonOf<{ released: string[]; devices: { released: string[] } }>(cli(['--json', 'release', '--domain-xml', fixture('desktop-passthrough.xml')]));
    expect([released.released, released.devices.released]).toEqual([[NIC], [MDEV, 'usb:1-1.2']]);
    expect(driverOf(NIC)).toBe('e1000e');
    expect(jsonOf<StatusJson>(cli(['--json', 'status'])).devices).toBeUndefined();
  });

  it("--json of the assign is the PCI report with the other devices under `devices`; --dry-run changes nothing", () => {
    const dry = jsonOf<{ dryRun: boolean; writes: unknown[]; devices: { assigned: string[] } }>(cli(['--json', 'assign', '--dry-run', '--domain-xml', fixture('desktop-passthrough.xml')]));
    expect(dry.dryRun).toBe(true);
    expect(dry.writes.length).toBeGreaterThan(0);
    expect(dry.devices.assigned).toEqual([MDEV, 'usb:1-1.2']);
    expect(driverOf(NIC)).toBe('e1000e');
    expect(jsonOf<StatusJson>(cli(['--json', 'status'])).active).toEqual([]);
  });

  it("decimal addresses, no domain attribute and no managed attribute (libvirt's default: unmanaged), a USB device by bus and devnum", () => {
    const refused = cli(['--json', 'assign', '--domain-xml', fixture('decimal-and-bus-address.xml')]);
    expect(refused.code).toBe(4);
    expect(errorOf(refused).code).toBe('HOSTDEV_UNMANAGED_NOT_DETACHED');
    expect(driverOf(NIC)).toBe('e1000e');

    expect(cli(['detach', NIC]).code).toBe(0);
    const assigned = cli(['assign', '--domain', 'edge', '--domain-xml', fixture('decimal-and-bus-address.xml')]);
    expect(assigned.stdout.split('\n')[0]).toBe(`assigned to domain edge (qemu): ${NIC}, usb:1-1.3`);
  });

  it('a bare <hostdev> (virsh attach-device) needs --domain', () => {
    expect(errorOf(cli(['--json', 'assign', '--domain-xml', fixture('attach-hostdev.xml')])).code).toBe('HOSTDEV_USAGE');
    expect(cli(['assign', '--domain', 'vm1', '--domain-xml', fixture('attach-hostdev.xml')]).stdout.split('\n')[0]).toBe(`assigned to domain vm1 (qemu): ${NIC}`);
  });

  it("a <disk type='nvme'> is its namespace: the controller goes to vfio-pci with it and back to nvme with its release", () => {
    const assigned = cli(['assign', '--domain-xml', fixture('nvme-disk.xml')]);
    expect(assigned.code, assigned.stderr).toBe(0);
    expect(driverOf('0000:01:00.0')).toBe('vfio-pci');
    expect(jsonOf<StatusJson>(cli(['--json', 'status'])).devices?.map((entry) => [entry.key, entry.usedBy.vm])).toEqual([['nvme:0000:01:00.0/2', 'db1']]);
    const released = cli(['release', '--domain-xml', fixture('nvme-disk.xml')]);
    expect(released.code, released.stderr).toBe(0);
    expect(driverOf('0000:01:00.0')).toBe('nvme');
    expect(jsonOf<StatusJson>(cli(['--json', 'status'])).devices).toBeUndefined();
  });

  it("a <hostdev type='scsi'> is its scsi: key (ownership only); <shareable/> lets two domains hold it; managed='yes' is libvirt's refusal", () => {
    const assigned = cli(['assign', '--domain-xml', fixture('scsi-tape.xml')]);
    expect(assigned.code, assigned.stderr).toBe(0);
    expect(assigned.stdout.split('\n')[0]).toBe('assigned to domain backup (qemu): scsi:2:0:1:0');
    expect(jsonOf<StatusJson>(cli(['--json', 'status'])).devices?.map((entry) => [entry.key, entry.usedBy.vm])).toEqual([['scsi:2:0:1:0', 'backup']]);
    // held non-shareable by backup: another domain's <shareable/> hostdev is refused with libvirt's message
    const shared = path.join(base, 'shared.xml');
    writeFileSync(shared, "<hostdev mode='subsystem' type='scsi'><source><adapter name='scsi_host2'/><address bus='0' target='1' unit='0'/></source><shareable/></hostdev>\n");
    const refused = cli(['--json', 'assign', '--domain', 'other', '--domain-xml', shared]);
    expect(refused.code).toBe(4);
    expect(errorOf(refused)).toMatchObject({ code: 'HOSTDEV_IN_USE', message: "Requested operation is not valid: SCSI device 2:0:1:0 is already in use by other domain(s) as 'non-shareable'" });
    expect(cli(['release', '--domain-xml', fixture('scsi-tape.xml')]).code).toBe(0);
    expect(cli(['assign', '--domain', 'a', '--domain-xml', shared]).code).toBe(0);
    expect(cli(['assign', '--domain', 'b', '--domain-xml', shared]).code).toBe(0);
    expect(jsonOf<{ devices: { key: string; sharedBy: { vm: string }[] }[] }>(cli(['--json', 'status'])).devices).toMatchObject([{ key: 'scsi:2:0:1:0', usedBy: { vm: 'a' }, shareable: true, sharedBy: [{ vm: 'b' }] }]);
    const managed = path.join(base, 'managed.xml');
    writeFileSync(managed, "<hostdev mode='subsystem' type='scsi' managed='yes'><source><adapter name='scsi_host2'/><address bus='0' target='0' unit='0'/></source></hostdev>\n");
    const run = cli(['--json', 'assign', '--domain', 'c', '--domain-xml', managed]);
    expect(run.code).toBe(2);
    expect(errorOf(run)).toMatchObject({ code: 'HOSTDEV_SCSI_MANAGED', message: "SCSI host device doesn't support managed mode (<hostdev mode='subsystem' type='scsi'> (device 1))" });
  });

  it("a SCSI <hostdev> with <readonly/>, sgio and rawio: kept on the entry, qemu-args opens it read-only and says rawio needs CAP_SYS_RAWIO; a bad sgio is refused", () => {
    const xml = path.join(base, 'readonly.xml');
    writeFileSync(
      xml,
      "<hostdev mode='subsystem' type='scsi' sgio='unfiltered' rawio='yes'><source><adapter name='scsi_host2'/><address bus='0' target='1' unit='0'/></source><readonly/></hostdev>\n",
    );
    const assigned = cli(['assign', '--domain', 'tape', '--domain-xml', xml]);
    expect(assigned.code, assigned.stderr).toBe(0);
    expect(jsonOf<{ devices: { identity: unknown }[] }>(cli(['--json', 'status'])).devices[0]?.identity).toMatchObject({ readOnly: true, sgio: 'unfiltered', rawio: true });
    const args = cli(['--json', 'qemu-args', '--domain', 'tape']);
    expect(jsonOf<string[]>(args)).toContain('{"driver":"host_device","filename":"/dev/sg1","node-name":"hostdev-scsi-2_0_1_0-backend","read-only":true}');
    expect(args.stderr).toMatch(/scsi:2:0:1:0 has rawio: start QEMU with CAP_SYS_RAWIO/);
    const bad = path.join(base, 'bad-sgio.xml');
    writeFileSync(bad, "<hostdev mode='subsystem' type='scsi' sgio='maybe'><source><adapter name='scsi_host2'/><address bus='0' target='0' unit='0'/></source></hostdev>\n");
    const refused = cli(['--json', 'assign', '--domain', 'x', '--domain-xml', bad]);
    expect(refused.code).toBe(2);
    expect(errorOf(refused)).toMatchObject({ code: 'HOSTDEV_DOMAIN_XML', message: expect.stringMatching(/sgio='maybe' is not filtered or unfiltered/) });
  });

  it('malformed XML, a bad address, an unreadable file and devices given twice are refused with what is wrong', () => {
    const broken = path.join(base, 'broken.xml');
    writeFileSync(broken, "<domain>\n  <name>x</name>\n  <devices>\n    <hostdev type='pci'>\n  </devices>\n</domain>\n");
    const malformed = errorOf(cli(['--json', 'assign', '--domain-xml', broken]));
    expect(malformed.code).toBe('HOSTDEV_DOMAIN_XML');
    expect(malformed.message).toMatch(/is not well-formed XML: line \d+/);

    const slot = path.join(base, 'slot.xml');
    writeFileSync(slot, "<domain><name>x</name><devices><hostdev mode='subsystem' type='pci' managed='yes'><source><address bus='0x00' slot='0x40' function='0'/></source></hostdev></devices></domain>");
    expect(errorOf(cli(['--json', 'assign', '--domain-xml', slot]))).toMatchObject({
      code: 'HOSTDEV_DOMAIN_XML',
      message: "<hostdev mode='subsystem' type='pci'> (device 1): slot='0x40' of <address> is not a number from 0 to 31",
    });
    expect(errorOf(cli(['--json', 'assign', '--domain-xml', path.join(base, 'none.xml')]))).toMatchObject({ code: 'HOSTDEV_DOMAIN_XML', details: { errno: 'ENOENT' } });
    expect(errorOf(cli(['--json', 'assign', '--domain-xml', fixture('attach-hostdev.xml'), '--domain', 'vm1', NIC])).code).toBe('HOSTDEV_USAGE');
    expect(errorOf(cli(['--json', 'assign', NIC])).code).toBe('HOSTDEV_USAGE');
  });
});
