import { realpathSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { simServicePerTest } from '../support/sim-service.js';
import { jsonOf, runCli } from '../support/cli.js';

// SCSI generic devices in the tables, on the virt-host preset: a SAS HBA (mpt3sas, SCSI host 2) with a
// disk at 2:0:0:0 (sg0, sda) and an LTO tape drive at 2:0:1:0 (sg1, no block device).
const TAPE = 'scsi:2:0:1:0';
const DISK = 'scsi:2:0:0:0';
const vm = (name: string) => ({ driver: 'qemu', domain: name, hypervisor: 'qemu', vm: name });

const sim = simServicePerTest('hostdev-scsi-', 'virt-host');

/** The HBA's PCI address, from the SCSI inventory. */
async function adapter(): Promise<string> {
  const tape = (await sim.service.listKind('scsi')).report.find((device) => device.key === TAPE) as { adapter: string };
  return tape.adapter;
}

describe('SCSI assign and release: ownership, with the /dev/sgN recorded', () => {
  it('assigns scsi:2:0:1:0 (no driver change), refuses it to another domain with libvirt\'s message, releases it', async () => {
    const dry = await sim.service.assignDevices({ domain: 'vm1', devices: [TAPE], dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, assigned: [TAPE] });
    expect((await sim.service.status()).devices).toBeUndefined();
    expect(await sim.service.assignDevices({ domain: 'vm1', devices: [TAPE] })).toMatchObject({ assigned: [TAPE] });
    expect((await sim.service.status()).devices).toEqual([
      { key: TAPE, kind: 'scsi', usedBy: vm('vm1'), identity: { kind: 'scsi', sg: 'sg1', vendor: 'HP', model: 'Ultrium 6-SCSI' } },
    ]);
    const listed = (await sim.service.listKind('scsi')).report.find((device) => device.key === TAPE)!;
    expect(listed).toMatchObject({ driver: 'st', table: 'active', owner: { vm: 'vm1' } });
    await expect(sim.service.assignDevices({ domain: 'vm2', devices: [TAPE] })).rejects.toMatchObject({
      code: 'HOSTDEV_IN_USE',
      message: "Requested operation is not valid: SCSI device 2:0:1:0 is already in use by other domain(s) as 'non-shareable'",
      details: { key: TAPE, shareable: false },
    });
    await expect(sim.service.assignDevices({ domain: 'vm1', devices: [TAPE] })).rejects.toMatchObject({ code: 'HOSTDEV_IN_USE' });
    await expect(sim.service.assignDevices({ domain: 'vm1', devices: ['scsi:2:0:5:0'] })).rejects.toMatchObject({ code: 'HOSTDEV_DEVICE_NOT_FOUND' });
    const released = await sim.service.release({ domain: 'vm1' });
    expect(released.devices).toMatchObject({ released: [TAPE], pruned: [] });
    expect((await sim.service.status()).devices).toBeUndefined();
  });

  it('a SCSI device that left the host (its HBA unbound) is pruned by status, departed, and back when it returns', async () => {
    await sim.service.assignDevices({ domain: 'vm1', devices: [TAPE] });
    const hba = await adapter();
    await sim.host.kernel.write(`/sys/bus/pci/devices/${hba}/driver/unbind`, hba);
    const status = await sim.service.status();
    expect(status.devices).toEqual([]);
    expect(status.prunedDevices).toEqual([{ key: TAPE, usedBy: vm('vm1'), awaited: true }]);
    expect(status.departedDevices).toMatchObject([{ entry: { key: TAPE, identity: { sg: 'sg1' } }, prunedBy: 'status', back: false }]);
    await sim.host.kernel.write('/sys/bus/pci/drivers/mpt3sas/bind', hba);
    expect((await sim.service.status()).departedDevices).toMatchObject([{ entry: { key: TAPE }, back: true }]);
    expect((await sim.service.release({ domain: 'vm1' })).devices).toMatchObject({ released: [], pruned: [TAPE] });
    expect((await sim.service.status()).departedDevices).toBeUndefined();
  });
});

describe("--shareable: libvirt's <shareable/> SCSI devices, held by several domains", () => {
  it('several domains hold a device each took shareable; a non-shareable request is refused; the last release frees it', async () => {
    await sim.service.assignDevices({ domain: 'vm1', devices: [DISK], shareable: true });
    await sim.service.assignDevices({ domain: 'vm2', devices: [DISK], shareable: true });
    await expect(sim.service.assignDevices({ domain: 'vm3', devices: [DISK] })).rejects.toMatchObject({
      code: 'HOSTDEV_IN_USE',
      message: "Requested operation is not valid: SCSI device 2:0:0:0 is already in use by other domain(s) as 'shareable'",
      details: { holders: [vm('vm1'), vm('vm2')], shareable: true },
    });
    await expect(sim.service.assignDevices({ domain: 'vm2', devices: [DISK], shareable: true })).rejects.toMatchObject({ code: 'HOSTDEV_IN_USE' });
    // the holders survive a restart (schema version 9's device_sharer)
    await sim.reopen();
    expect((await sim.service.status()).devices).toEqual([
      { key: DISK, kind: 'scsi', usedBy: vm('vm1'), identity: expect.objectContaining({ sg: 'sg0' }), shareable: true, sharedBy: [vm('vm2')] },
    ]);
    // vm1 lets go: vm2 holds it alone (still shareable)
    expect(await sim.service.releaseDevices({ domain: 'vm1', devices: [DISK] })).toMatchObject({ released: [DISK] });
    expect((await sim.service.status()).devices).toEqual([expect.objectContaining({ key: DISK, usedBy: vm('vm2'), shareable: true })]);
    await expect(sim.service.releaseDevices({ domain: 'vm1' })).rejects.toMatchObject({ code: 'HOSTDEV_DOMAIN_NOT_FOUND' });
    await sim.service.assignDevices({ domain: 'vm3', devices: [DISK], shareable: true });
    expect((await sim.service.release({ domain: 'vm2' })).devices).toMatchObject({ released: [DISK] });
    expect((await sim.service.release({ domain: 'vm3' })).devices).toMatchObject({ released: [DISK] });
    expect((await sim.service.status()).devices).toBeUndefined();
  });

  it('a shareable request for a device held non-shareable is refused as non-shareable; --shareable takes SCSI keys only', async () => {
    await sim.service.assignDevices({ domain: 'vm1', devices: [DISK] });
    await expect(sim.service.assignDevices({ domain: 'vm2', devices: [DISK], shareable: true })).rejects.toMatchObject({
      code: 'HOSTDEV_IN_USE',
      message: "Requested operation is not valid: SCSI device 2:0:0:0 is already in use by other domain(s) as 'non-shareable'",
    });
    await expect(sim.service.assignDevices({ domain: 'vm2', devices: ['usb:1-4'], shareable: true })).rejects.toMatchObject({ code: 'HOSTDEV_USAGE' });
    await expect(sim.service.assign({ domain: 'vm2', addresses: [TAPE], shareable: [DISK] })).rejects.toMatchObject({
      code: 'HOSTDEV_USAGE',
      message: `${DISK} is named shareable but the assign does not name it`,
    });
    expect((await sim.service.status()).devices).toEqual([expect.objectContaining({ key: DISK, usedBy: vm('vm1') })]);
  });

  it('a shared device that leaves the host stays awaited for the domains that still hold it', async () => {
    await sim.service.assignDevices({ domain: 'vm1', devices: [DISK], shareable: true });
    await sim.service.assignDevices({ domain: 'vm2', devices: [DISK], shareable: true });
    const hba = await adapter();
    await sim.host.kernel.write(`/sys/bus/pci/devices/${hba}/driver/unbind`, hba);
    expect((await sim.service.release({ domain: 'vm1' })).devices).toMatchObject({ released: [], pruned: [DISK] });
    expect((await sim.service.status()).departedDevices).toMatchObject([{ entry: { key: DISK, usedBy: vm('vm2') } }]);
    expect((await sim.service.release({ domain: 'vm2' })).devices).toMatchObject({ pruned: [DISK] });
    expect((await sim.service.status()).departedDevices).toBeUndefined();
  });
});

describe('the command line: assign --shareable scsi:KEY', () => {
  it('shares a SCSI device between two domains; --shareable with a PCI function is a usage error', () => {
    const cli = (args: string[]) => runCli(['--root', sim.root, '--state-dir', sim.stateDir, '--simulate', '--no-daemon', ...args]);
    expect(cli(['assign', '--domain', 'vm1', '--shareable', DISK]).code).toBe(0);
    const second = cli(['assign', '--domain', 'vm2', '--shareable', DISK]);
    expect(second.stdout.split('\n')[0]).toBe(`assigned to domain vm2 (qemu): ${DISK}`);
    const refused = cli(['--json', 'assign', '--domain', 'vm3', DISK]);
    expect(refused.code).toBe(4);
    expect(JSON.parse(refused.stderr).error).toMatchObject({ code: 'HOSTDEV_IN_USE', details: { shareable: true } });
    expect(cli(['assign', '--domain', 'vm3', '--shareable', '0000:00:19.0']).code).toBe(2);
    expect(cli(['status']).stdout).toMatch(new RegExp(`${DISK} +qemu/vm1, qemu/vm2 \\(shareable\\)`));
    // list and show name every holder too
    expect(jsonOf<{ key: string; owner: { vm: string }; sharedBy?: { vm: string }[] }[]>(cli(['--json', 'list', '--kind', 'scsi']))[0]).toMatchObject({
      key: DISK,
      owner: { vm: 'vm1' },
      sharedBy: [{ vm: 'vm2' }],
    });
    expect(cli(['list', '--kind', 'scsi']).stdout).toMatch(new RegExp(`${DISK} .* qemu/vm1,qemu/vm2`));
    const status = jsonOf<{ devices: unknown[] }>(cli(['--json', 'status']));
    expect(status.devices).toMatchObject([{ key: DISK, usedBy: { vm: 'vm1' }, shareable: true, sharedBy: [{ vm: 'vm2' }] }]);
  });
});

describe('qemu-args: a SCSI generic device as libvirt gives it to QEMU', () => {
  it('-blockdev host_device on /dev/sgN and -device scsi-generic on a virtio-scsi controller, one LUN each', async () => {
    await sim.service.assignDevices({ domain: 'vm1', devices: [TAPE, DISK] });
    const args = await sim.service.qemuArgs({ domain: 'vm1' });
    expect(args.argv).toEqual([
      '-device',
      'virtio-scsi-pci,id=hostdev-scsi',
      '-blockdev',
      '{"driver":"host_device","filename":"/dev/sg0","node-name":"hostdev-scsi-2_0_0_0-backend","read-only":false}',
      '-device',
      'scsi-generic,bus=hostdev-scsi.0,channel=0,scsi-id=0,lun=0,drive=hostdev-scsi-2_0_0_0-backend,id=hostdev-scsi-2_0_0_0',
      '-blockdev',
      '{"driver":"host_device","filename":"/dev/sg1","node-name":"hostdev-scsi-2_0_1_0-backend","read-only":false}',
      '-device',
      'scsi-generic,bus=hostdev-scsi.0,channel=0,scsi-id=0,lun=1,drive=hostdev-scsi-2_0_1_0-backend,id=hostdev-scsi-2_0_1_0',
    ]);
    expect(args.otherKeys).toEqual([DISK, TAPE]);
    // a domain sharing the disk gets it too
    await sim.service.releaseDevices({ domain: 'vm1' });
    await sim.service.assignDevices({ domain: 'vm1', devices: [DISK], shareable: true });
    await sim.service.assignDevices({ domain: 'vm2', devices: [DISK], shareable: true });
    expect((await sim.service.qemuArgs({ domain: 'vm2' })).argv).toContain('{"driver":"host_device","filename":"/dev/sg0","node-name":"hostdev-scsi-2_0_0_0-backend","read-only":false}');
  });

  it('a device without a generic node (sg not loaded) is left out with a warning that says so', async () => {
    await sim.service.assignDevices({ domain: 'vm1', devices: [TAPE] });
    rmSync(path.join(realpathSync(path.join(sim.root, 'sys/bus/scsi/devices/2:0:1:0')), 'scsi_generic'), { recursive: true });
    const args = await sim.service.qemuArgs({ domain: 'vm1' });
    expect(args.argv).toEqual([]);
    expect(args.warnings).toEqual([`${TAPE} is assigned to vm1 but has no /dev/sgN (is the sg module loaded?): left out`]);
  });
});

describe("a SCSI hostdev's <readonly/>, sgio and rawio (libvirt's options)", () => {
  it('readonly opens the node read-only in qemu-args; rawio is kept and qemu-args says QEMU needs CAP_SYS_RAWIO; sgio is kept on the entry', async () => {
    await sim.service.assignDevices({ domain: 'vm1', devices: [TAPE], scsi: { readOnly: true, rawio: true, sgio: 'unfiltered' } });
    await sim.service.assignDevices({ domain: 'vm1', devices: [DISK] });
    const args = await sim.service.qemuArgs({ domain: 'vm1' });
    expect(args.argv).toContain('{"driver":"host_device","filename":"/dev/sg1","node-name":"hostdev-scsi-2_0_1_0-backend","read-only":true}');
    expect(args.argv).toContain('{"driver":"host_device","filename":"/dev/sg0","node-name":"hostdev-scsi-2_0_0_0-backend","read-only":false}');
    expect(args.warnings).toEqual([`${TAPE} has rawio: start QEMU with CAP_SYS_RAWIO (libvirt grants it to the QEMU process)`]);
    const entries = (await sim.service.status()).devices ?? [];
    expect(entries.find((e) => e.key === TAPE)?.identity).toEqual({ kind: 'scsi', sg: 'sg1', vendor: 'HP', model: 'Ultrium 6-SCSI', readOnly: true, sgio: 'unfiltered', rawio: true });
    expect(entries.find((e) => e.key === DISK)?.identity).toEqual({ kind: 'scsi', sg: 'sg0', vendor: 'ATA', model: 'ST4000NM0035-1V4' });
  });

  it("refuses sgio on a shareable device with libvirt's message, and the options on an assign that names no SCSI device", async () => {
    await expect(sim.service.assignDevices({ domain: 'vm1', devices: [DISK], shareable: true, scsi: { sgio: 'filtered' } })).rejects.toMatchObject({
      code: 'HOSTDEV_USAGE',
      message: expect.stringMatching(/^'sgio' is not supported for SCSI generic device yet/),
    });
    await expect(sim.service.assignDevices({ domain: 'vm1', devices: ['usb:1-1.2'], scsi: { readOnly: true } })).rejects.toMatchObject({ code: 'HOSTDEV_USAGE' });
    expect((await sim.service.status()).devices ?? []).toEqual([]);
  });

  it('the command line: assign --readonly --rawio --sgio for scsi: keys; a bad --sgio and the options with a PCI function are usage errors', () => {
    const cli = (args: string[]) => runCli(['--root', sim.root, '--state-dir', sim.stateDir, '--simulate', '--no-daemon', ...args]);
    expect(cli(['assign', '--domain', 'vm1', '--sgio', 'sometimes', TAPE]).code).toBe(2);
    expect(cli(['assign', '--domain', 'vm1', '--readonly', '0000:00:19.0']).code).toBe(2);
    const done = cli(['assign', '--domain', 'vm1', '--readonly', '--sgio', 'filtered', TAPE]);
    expect(done.code, done.stderr).toBe(0);
    expect(jsonOf<string[]>(cli(['--json', 'qemu-args', '--domain', 'vm1']))).toContain(
      '{"driver":"host_device","filename":"/dev/sg1","node-name":"hostdev-scsi-2_0_1_0-backend","read-only":true}',
    );
  });
});
