import { describe, expect, it } from 'vitest';
import { deviceSerialNumber, hardwareChanged, parseVpd, type HardwareIdentity } from '../../src/core/hardware-identity.js';
import { buildConfigSpace } from '../../src/sim/config-space.js';
import { swapCard } from '../../src/sim/swap.js';
import { vpdBytes } from '../../src/sim/tree-writer.js';
import { jsonOf, runCli } from '../support/cli.js';
import { simHostCli, simHostPerTest } from '../support/sim-host-per-test.js';

/** Hardware identity: an address is no identity; entries remember the card they were made for. */

const host = simHostPerTest('hostdev-hwid-', 'workstation');
const NIC = '0000:06:00.0'; // I210 (igb), with a Device Serial Number
const NIC2 = '0000:07:00.0'; // same IOMMU group
const PF = '0000:02:00.0'; // 82576 with DSN and VPD

const { cli, ok } = simHostCli(host);
interface Status {
  active: Array<{ address: string; hardware?: HardwareIdentity }>;
  inactive: Array<{ address: string; hardware?: HardwareIdentity }>;
  hardwareChanged?: Array<{ address: string; message: string; owner: { vm: string } | null }>;
}
const status = (): Status => jsonOf<Status>(ok('--json', 'status'));

describe('parsing', () => {
  it('reads the DSN from the extended capabilities and the VPD read-only fields, as lspci does', () => {
    const config = buildConfigSpace({
      vendor: 0x8086, device: 0x1533, subsystemVendor: 0x8086, subsystemDevice: 1, classCode: 0x020000, revision: 3,
      bridge: false, multifunction: false, pcie: 'endpoint', flr: true, acs: true, serialNumber: '00-1b-21-ff-ff-9b-00-42',
    });
    expect(deviceSerialNumber((at, n) => config.subarray(at, at + n))).toBe('00-1b-21-ff-ff-9b-00-42');
    expect(deviceSerialNumber((at, n) => config.subarray(at, Math.min(at + n, 64)))).toBeNull(); // an unprivileged reader
    const vpd = parseVpd(vpdBytes({ productName: 'Card', partNumber: 'PN-1', serialNumber: 'SN-9' }));
    expect(vpd).toEqual({ productName: 'Card', partNumber: 'PN-1', serialNumber: 'SN-9', engineeringChange: null, manufacturer: null });
    expect(parseVpd(Buffer.from('garbage'))).toBeNull();
  });

  it('compares IDs and serials known on both sides only', () => {
    const card: HardwareIdentity = { vendor: '8086', device: '10ca', subsystemVendor: '8086', subsystemDevice: 'a03c', class: '0200', serialNumber: null, vpd: null };
    expect(hardwareChanged(card, { ...card })).toBe(false);
    expect(hardwareChanged(card, { ...card, device: '101e' })).toBe(true);
    expect(hardwareChanged(card, { ...card, serialNumber: '00-00-00-00-00-00-00-01' })).toBe(false);
    expect(hardwareChanged({ ...card, serialNumber: '00-00-00-00-00-00-00-02' }, { ...card, serialNumber: '00-00-00-00-00-00-00-01' })).toBe(true);
  });
});

describe('a card swapped at the same address', () => {
  it('entries record the card; show prints its serials and VPD fields', () => {
    ok('assign', '--domain', 'vm1', PF);
    const entry = status().active.find((e) => e.address === PF)!;
    expect(entry.hardware).toMatchObject({ vendor: '8086', device: '10c9', class: '0200', serialNumber: '00-1b-21-ff-ff-8a-3c-16', vpd: { partNumber: 'E66393-003', serialNumber: '001B218A3C16' } });
    const shown = jsonOf<{ serialNumber: string | null; vpd: { serialNumber: string } | null }>(ok('--json', 'show', PF));
    expect(shown.serialNumber).toBe('00-1b-21-ff-ff-8a-3c-16');
    expect(shown.vpd?.serialNumber).toBe('001B218A3C16');
    const text = ok('show', PF).stdout;
    expect(text).toMatch(/Serial number\s+00-1b-21-ff-ff-8a-3c-16/);
    expect(text).toContain('Part number: E66393-003; Serial: 001B218A3C16');
  });

  it('with other IDs: status says so, release refuses with HOSTDEV_HARDWARE_CHANGED, --force proceeds', () => {
    ok('assign', '--domain', 'vm1', NIC, NIC2);
    swapCard(host.root, NIC, { vendor: '15b3', device: '101e', serialNumber: '00-02-c9-ff-ff-00-00-01' });
    const changed = status().hardwareChanged ?? [];
    expect(changed).toEqual([expect.objectContaining({ address: NIC, owner: expect.objectContaining({ vm: 'vm1' }) })]);
    expect(changed[0]!.message).toMatch(new RegExp(`^hardware changed at ${NIC.replace(/\./g, '\\.')}: was 8086:1533 SN 00-1b-21-ff-ff-9b-00-\\w\\w, now 15b3:101e SN 00-02-c9-ff-ff-00-00-01$`));
    expect(ok('status').stdout).toMatch(/hardware changed at 0000:06:00\.0: was 8086:1533 SN \S+, now 15b3:101e SN 00-02-c9-ff-ff-00-00-01 \(active, qemu\/vm1\)/);
    const refused = cli('--json', 'release', '--domain', 'vm1');
    expect(refused.code).toBe(4);
    const error = JSON.parse(refused.stderr) as { error: { code: string; message: string; hint: string } };
    expect(error.error.code).toBe('HOSTDEV_HARDWARE_CHANGED');
    expect(error.error.message).toContain(`hardware changed at ${NIC}`);
    expect(error.error.message).toContain('vfio-pci');
    expect(error.error.message).toContain('driver qemu, domain vm1');
    expect(error.error.hint).toContain('--force');
    expect(status().active.map((e) => e.address)).toEqual([NIC, NIC2]); // nothing done
    // --force proceeds: the other card does not bind to igb, so it stays detached (exit 8, never lost); its group mate is released.
    const forced = cli('release', '--domain', 'vm1', '--force');
    expect(forced.code, forced.stderr).toBe(8);
    expect(forced.stderr).toContain(`${NIC} (reattach): PCI device ${NIC} did not bind to igb`);
    expect(status().active).toEqual([]);
    expect(status().inactive.map((e) => e.address)).toEqual([NIC]);
  });

  it('with the same IDs but another serial: detach refuses an inactive entry, reattach too, --force proceeds and records the new card', () => {
    ok('detach', NIC);
    swapCard(host.root, NIC, { serialNumber: '00-1b-21-ff-ff-9b-00-99' });
    expect((status().hardwareChanged ?? []).map((c) => c.message)).toEqual([expect.stringMatching(/was 8086:1533 SN 00-1b-21-ff-ff-9b-00-\w\w, now 8086:1533 SN 00-1b-21-ff-ff-9b-00-99$/)]);
    expect(cli('reattach', NIC).code).toBe(4);
    expect(cli('detach', NIC).code).toBe(4);
    ok('detach', NIC, '--force');
    // Like the other optional sections, absent when nothing changed: status --json keeps its shape.
    expect(status()).not.toHaveProperty('hardwareChanged');
    expect(status().inactive[0]!.hardware?.serialNumber).toBe('00-1b-21-ff-ff-9b-00-99');
    ok('reattach', NIC);
  });

  it('assign of a device detached for another card refuses without --force', () => {
    ok('detach', PF);
    swapCard(host.root, PF, { vpd: { productName: 'Other', serialNumber: 'OTHER-1' } });
    const refused = cli('assign', '--domain', 'vm2', PF);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain(`hardware changed at ${PF}: was 8086:10c9 SN 001B218A3C16, now 8086:10c9 SN OTHER-1`);
    ok('assign', '--domain', 'vm2', PF, '--force');
  });
});
