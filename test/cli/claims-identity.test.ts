import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { swapCard } from '../../src/sim/swap.js';
import { driverOf as driverOfOn } from '../sim/helpers.js';
import { jsonOf, runCli } from '../support/cli.js';
import { simHostCli, simHostPerTest } from '../support/sim-host-per-test.js';

/** Claims keep the card's identity beyond vendor:device; claims across a (simulated) reboot. */

const host = simHostPerTest('hostdev-claim-id-', 'workstation');
const NIC = '0000:06:00.0'; // I210 (igb), with a Device Serial Number
const NVME = '0000:03:00.0';
const VF = '0000:02:10.0'; // a VF of 0000:02:00.0, gone after a reboot
const NIC2 = '0000:07:00.0'; // igb, same group as NIC
const ONBOARD = '0000:00:19.0'; // e1000e
const { cli, ok } = simHostCli(host);

const driverOf = (address: string): string | null => driverOfOn(host.root, address);
const claimFile = (address: string): string => path.join(host.root, 'etc/hostdev/claims.d', `pci-${address}`);
interface ApplyItem {
  address: string;
  outcome: string;
  detail: string;
  error: { code: string; message: string } | null;
}

describe('a claim keeps the identity of its card', () => {
  it('records subsystem IDs, class and the DSN; after a reboot a card of the same model with another serial is not bound (HOSTDEV_CLAIM_MISMATCH naming both)', () => {
    ok('claim', NIC);
    const text = fs.readFileSync(claimFile(NIC), 'utf8');
    expect(text).toMatch(/^vendor=8086\ndevice=1533\nsubsystem_vendor=[0-9a-f]{4}\nsubsystem_device=[0-9a-f]{4}\nclass=0200\ndsn=00-1b-21-ff-ff-9b-00-\w\w\n/m);
    const dsn = /dsn=(\S+)/.exec(text)![1]!;
    const claims = jsonOf<{ address: string; state: string }[]>(ok('--json', 'claims'));
    expect(claims.map((c) => [c.address, c.state])).toEqual([[NIC, 'applied']]);

    expect(runCli(['sim', 'reboot', host.root]).code).toBe(0);
    swapCard(host.root, NIC, { serialNumber: '00-1b-21-ff-ff-9b-00-99' });
    // The first command after the reboot re-applies inactive entries of the earlier boot: not this one, another card is there.
    const apply = cli('--json', 'claims', 'apply');
    expect(apply.code, apply.stderr).toBe(8);
    const items = jsonOf<{ claims: ApplyItem[] }>(apply).claims;
    expect(items).toEqual([expect.objectContaining({ address: NIC, outcome: 'mismatch', error: expect.objectContaining({ code: 'HOSTDEV_CLAIM_MISMATCH' }) })]);
    expect(items[0]!.error!.message).toBe(`${NIC} is 8086:1533 SN 00-1b-21-ff-ff-9b-00-99 on driver igb, not the 8086:1533 SN ${dsn} the claim is for: not bound`);
    expect(driverOf(NIC)).toBe('igb');
    expect(jsonOf<{ state: string }[]>(ok('--json', 'claims')).map((c) => c.state)).toEqual(['mismatch']);
  });

  it("a card of the claim's model with another serial that the udev rule bound at boot is given back to its host driver by claims apply", () => {
    ok('claim', NIC);
    expect(runCli(['sim', 'reboot', host.root]).code).toBe(0);
    swapCard(host.root, NIC, { serialNumber: '00-1b-21-ff-ff-9b-00-99' });
    // What the rule does at the card's add event (it cannot read the serial): driver_override, then the stub binds.
    const sys = `/sys/bus/pci`;
    for (const [file, value] of [
      [`${sys}/devices/${NIC}/driver_override`, 'vfio-pci'],
      [`${sys}/drivers/igb/unbind`, NIC],
      [`${sys}/drivers_probe`, NIC],
    ] as const) {
      const write = runCli(['--root', host.root, 'sim', 'write', file, value]);
      expect(write.code, write.stderr).toBe(0);
    }
    expect(driverOf(NIC)).toBe('vfio-pci');

    const dry = jsonOf<{ claims: ApplyItem[] }>(cli('--json', 'claims', 'apply', '--dry-run')).claims;
    expect(dry[0]!.detail).toMatch(/udev rule bound it to vfio-pci at boot: it would be given back to its host driver$/);
    expect(driverOf(NIC)).toBe('vfio-pci');

    const apply = cli('--json', 'claims', 'apply');
    expect(apply.code, apply.stderr).toBe(8);
    const [item] = jsonOf<{ claims: ApplyItem[] }>(apply).claims;
    expect(item).toMatchObject({ address: NIC, outcome: 'mismatch', error: { code: 'HOSTDEV_CLAIM_MISMATCH' } });
    expect(item!.detail).toMatch(/: given back to igb$/);
    expect(driverOf(NIC)).toBe('igb');
    expect(fs.readFileSync(path.join(host.root, `sys/bus/pci/devices/${NIC}/driver_override`), 'utf8').trim()).toBe('(null)');
    expect(jsonOf<{ state: string }[]>(ok('--json', 'claims')).map((c) => c.state)).toEqual(['mismatch']);
    // Once back on its host driver it is left there.
    expect(jsonOf<{ claims: ApplyItem[] }>(cli('--json', 'claims', 'apply')).claims[0]!.detail).not.toMatch(/udev rule/);
    expect(driverOf(NIC)).toBe('igb');
  });

  it('the udev rule matches the subsystem IDs and class too', () => {
    ok('claim', NIC);
    const rules = fs.readFileSync(path.join(host.root, 'etc/udev/rules.d/70-hostdev-claims.rules'), 'utf8');
    expect(rules).toMatch(
      new RegExp(`KERNEL=="${NIC}", ATTR\\{vendor\\}=="0x8086", ATTR\\{device\\}=="0x1533", ATTR\\{subsystem_vendor\\}=="0x[0-9a-f]{4}", ATTR\\{subsystem_device\\}=="0x[0-9a-f]{4}", ATTR\\{class\\}=="0x0200\\*", ATTR\\{driver_override\\}="vfio-pci"`),
    );
  });
});

describe('a reboot with claimed, active and inactive entries', () => {
  it('the first command releases the active entries of the earlier boot, re-applies the inactive and the claimed one; claims apply then finds it applied', () => {
    ok('claim', NVME);
    ok('assign', '--domain', 'vm1', VF);
    ok('assign', '--domain', 'vm2', NIC, NIC2);
    ok('detach', ONBOARD);
    expect(runCli(['sim', 'reboot', host.root]).code).toBe(0);
    expect([driverOf(NVME), driverOf(NIC), driverOf(ONBOARD)]).toEqual(['nvme', 'igb', 'e1000e']);

    const apply = cli('--json', 'claims', 'apply');
    expect(apply.code, apply.stderr).toBe(0);
    expect(jsonOf<{ claims: ApplyItem[] }>(apply).claims.map((c) => [c.address, c.outcome])).toEqual([[NVME, 'already']]);
    expect([driverOf(NVME), driverOf(NIC), driverOf(NIC2), driverOf(ONBOARD)]).toEqual(['vfio-pci', 'igb', 'igb', 'vfio-pci']);
    const status = jsonOf<{ active: unknown[]; inactive: { address: string }[]; recovery: { rebooted?: { released: { address: string }[]; reapplied: { address: string }[] } } }>(
      ok('--json', 'status'),
    );
    expect(status.active).toEqual([]);
    expect(status.inactive.map((e) => e.address)).toEqual([ONBOARD, NVME]);
    expect(ok('status').stdout).toMatch(/0000:03:00\.0\s+hostdev\/claim/);
  });
});
