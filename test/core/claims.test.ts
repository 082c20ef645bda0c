import { describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { claimFileText, claimIdentityOf, claimMismatch, matchesClaim, parseClaimFile, parseMatch, udevRules, type Claim } from '../../src/core/claims.js';
import type { HardwareIdentity } from '../../src/core/hardware-identity.js';
import type { DeviceKey } from '../../src/core/device-key.js';
import { HostdevError } from '../../src/core/errors.js';
import { ownerCell } from '../../src/core/tables.js';

const CLAIM: Claim = {
  key: 'pci:0000:03:00.0' as DeviceKey,
  address: '0000:03:00.0' as PciAddress,
  driver: 'vfio-pci',
  match: { vendor: '144d', device: 'a808' },
};

const UNKNOWN: HardwareIdentity = { vendor: null, device: null, subsystemVendor: null, subsystemDevice: null, class: null, serialNumber: null, vpd: null };

describe('claims (core)', () => {
  it('a claim with the identity of its card: read back from its file, and a card of the same model with another serial does not match', () => {
    const card: HardwareIdentity = { ...UNKNOWN, vendor: '144d', device: 'a808', subsystemVendor: '144d', subsystemDevice: 'a801', class: '0108', serialNumber: '00-00-00-00-00-00-00-01' };
    const claim: Claim = { ...CLAIM, identity: claimIdentityOf(card) };
    expect(parseClaimFile(claimFileText(claim))).toEqual(claim);
    expect(matchesClaim(claim, { hardware: card, driver: 'nvme' })).toBe(true);
    const other = { hardware: { ...card, serialNumber: '00-00-00-00-00-00-00-02' }, driver: 'nvme' };
    expect(matchesClaim(claim, other)).toBe(false);
    expect(matchesClaim(claim, { hardware: { ...card, subsystemDevice: 'a802' }, driver: 'nvme' })).toBe(false);
    // A serial not known on one side is not compared (the claim of an older file, a card without DSN).
    expect(matchesClaim(CLAIM, other)).toBe(true);
    expect(claimMismatch(claim.address, claim, other).message).toBe(
      '0000:03:00.0 is 144d:a808 SN 00-00-00-00-00-00-00-02 on driver nvme, not the 144d:a808 SN 00-00-00-00-00-00-00-01 the claim is for: not bound',
    );
  });

  it('a claim file reads back as the claim it was written from', () => {
    expect(parseClaimFile(claimFileText(CLAIM))).toEqual(CLAIM);
  });

  it('a file that is not a claim says why', () => {
    expect(parseClaimFile('address=03:00.0\ndriver=vfio-pci\nvendor=144d\n')).toBe('vendor:device "144d:" is not 4 hex digits each');
    expect(parseClaimFile('address=nowhere\n')).toBe('address "nowhere" is not a PCI address');
    expect(parseClaimFile('address=0000:03:00.0\ndriver=../evil\nvendor=144d\ndevice=a808\n')).toBe('driver "../evil" is not a driver name');
    expect(parseClaimFile('just words')).toBe('line "just words" is not key=value');
  });

  it('--match takes VENDOR:DEVICE as lspci -nn prints it, and refuses anything else with HOSTDEV_USAGE', () => {
    expect(parseMatch('8086:10CA')).toEqual({ vendor: '8086', device: '10ca' });
    expect(parseMatch('0x8086:0x10ca')).toEqual({ vendor: '8086', device: '10ca' });
    for (const bad of ['8086', '8086:10ca:1', '808:10ca', 'zzzz:10ca']) {
      expect(() => parseMatch(bad)).toThrowError(expect.objectContaining({ code: 'HOSTDEV_USAGE' }) as HostdevError);
    }
  });

  it('a mismatch names the address, what is there and what the claim is for', () => {
    const error = claimMismatch(CLAIM.address, CLAIM, { hardware: { ...UNKNOWN, vendor: '15b3', device: '101e' }, driver: 'mlx5_core' });
    expect(error.code).toBe('HOSTDEV_CLAIM_MISMATCH');
    expect(error.exitCode).toBe(4);
    expect(error.message).toBe('0000:03:00.0 is 15b3:101e on driver mlx5_core, not the 144d:a808 the claim is for: not bound');
    expect(error.hint).toContain('hostdev unclaim 0000:03:00.0');
  });

  it('the udev rules have one add rule per claim, matched on address and IDs, setting driver_override and loading the stub', () => {
    const text = udevRules([CLAIM]);
    expect(text.split('\n').filter((line) => line.startsWith('ACTION'))).toEqual([
      'ACTION=="add", SUBSYSTEM=="pci", KERNEL=="0000:03:00.0", ATTR{vendor}=="0x144d", ATTR{device}=="0xa808", ATTR{driver_override}="vfio-pci", RUN{builtin}+="kmod load vfio-pci"',
    ]);
    expect(udevRules([]).split('\n').filter((line) => line.startsWith('ACTION'))).toEqual([]);
  });

  it('the OWNER of a claimed inactive entry is hostdev/claim, of a plain detach hostdev (detached)', () => {
    expect(ownerCell({ table: 'inactive', claimed: true })).toBe('hostdev/claim');
    expect(ownerCell({ table: 'inactive' })).toBe('hostdev (detached)');
  });
});
