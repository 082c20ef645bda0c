import { describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { claimFileText, claimMismatch, parseClaimFile, parseMatch, udevRules, type Claim } from '../../src/core/claims.js';
import type { DeviceKey } from '../../src/core/device-key.js';
import { HostdevError } from '../../src/core/errors.js';
import { ownerCell } from '../../src/core/tables.js';

const CLAIM: Claim = {
  key: 'pci:0000:03:00.0' as DeviceKey,
  address: '0000:03:00.0' as PciAddress,
  driver: 'vfio-pci',
  match: { vendor: '144d', device: 'a808' },
};

describe('claims (core)', () => {
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
    const error = claimMismatch(CLAIM.address, CLAIM.match, { vendor: '15b3', device: '101e', driver: 'mlx5_core' });
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
