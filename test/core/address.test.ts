import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatAddress, nodedevName, parseAddress, tryParseAddress } from '../../src/core/address.js';
import { HostdevError } from '../../src/core/errors.js';

describe('PCI addresses', () => {
  it('accepts the full sysfs spelling and lower-cases it', () => {
    expect(parseAddress('0000:01:00.2')).toBe('0000:01:00.2');
    expect(parseAddress('0000:AF:1F.7')).toBe('0000:af:1f.7');
  });

  it('accepts the short spelling as domain 0', () => {
    expect(parseAddress('01:00.2')).toBe('0000:01:00.2');
  });

  it("accepts libvirt's nodedev name", () => {
    expect(parseAddress('pci_0000_01_00_2')).toBe('0000:01:00.2');
    expect(nodedevName(parseAddress('0000:01:00.2'))).toBe('pci_0000_01_00_2');
  });

  it.each([
    '',
    '../0000:01:00.2',
    '/sys/bus/pci/devices/0000:01:00.2',
    '0000:01:00.2/',
    '0000:01:00.2 ',
    '0000:01:00.8',
    '0000:01:20.0',
    '1:0.2',
    '0000:01:00.2\n',
    'pci_0000_01_00_2_x',
  ])('refuses %j with a usage error before it reaches a path', (input) => {
    expect(() => parseAddress(input)).toThrow(HostdevError);
    try {
      parseAddress(input);
    } catch (error) {
      expect((error as HostdevError).code).toBe('HOSTDEV_BAD_ADDRESS');
      expect((error as HostdevError).exitCode).toBe(2);
    }
  });

  it('round-trips every valid address through format and parse', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xff }),
        fc.integer({ min: 0, max: 0x1f }),
        fc.integer({ min: 0, max: 7 }),
        (domain, bus, slot, fn) => {
          const address = formatAddress({ domain, bus, slot, function: fn });
          expect(tryParseAddress(address)).toBe(address);
          expect(tryParseAddress(nodedevName(address))).toBe(address);
        },
      ),
    );
  });
});
