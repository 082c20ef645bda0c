import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tryParseAddress } from '../../src/core/address.js';
import { canonicalAddress, parseUevent } from '../../src/sysfs/attributes.js';
import { parentFromPath } from '../../src/sysfs/read-device.js';

const hexDigit = fc.constantFrom(...'0123456789abcdefABCDEF'.split(''));
const hexString = (length: number): fc.Arbitrary<string> => fc.array(hexDigit, { minLength: length, maxLength: length }).map((a) => a.join(''));
const addressLike = fc
  .tuple(hexString(4), hexString(2), hexString(2), fc.constantFrom('0', '1', '7', '8', 'a'), fc.constantFrom(':', '_', '.'))
  .map(([domain, bus, slot, fn, sep]) => `${domain}${sep}${bus}:${slot}.${fn}`);

describe('canonicalAddress', () => {
  it('accepts exactly the names tryParseAddress gives back unchanged', () => {
    fc.assert(
      fc.property(fc.oneof(addressLike, fc.string()), (name) => {
        const parsed = tryParseAddress(name);
        expect(canonicalAddress(name)).toBe(parsed !== null && parsed === name ? name : null);
      }),
      { numRuns: 2000 },
    );
    expect(canonicalAddress('0000:00:1f.7')).toBe('0000:00:1f.7');
    expect(canonicalAddress('0000:00:20.0')).toBeNull();
    expect(canonicalAddress('0000:00:1F.7')).toBeNull();
  });
});

describe('parentFromPath', () => {
  it('names the bridge above a device, or null on a root bus', () => {
    expect(parentFromPath('../../../devices/pci0000:00/0000:00:1c.0/0000:01:00.0')).toBe('0000:00:1c.0');
    expect(parentFromPath('../../../devices/pci0000:00/0000:00:1c.0//0000:01:00.0/')).toBe('0000:00:1c.0');
    expect(parentFromPath('../../../devices/pci0000:00/0000:00:02.0')).toBeNull();
    expect(parentFromPath('0000:00:02.0')).toBeNull();
    expect(parentFromPath('/0000:00:1c.0/0000:01:00.0')).toBe('0000:00:1c.0');
  });
});

describe('parseUevent', () => {
  it('reads the ids and the class as the attribute files give them', () => {
    const text = 'DRIVER=igb\nPCI_CLASS=20000\nPCI_ID=8086:10C9\nPCI_SUBSYS_ID=8086:A03C\nPCI_SLOT_NAME=0000:01:00.0\nMODALIAS=pci:v00008086d000010C9sv00008086sd0000A03Cbc02sc00i00\n';
    expect(parseUevent(text)).toEqual({
      vendor: '8086',
      device: '10c9',
      subsystemVendor: '8086',
      subsystemDevice: 'a03c',
      pciClass: { class: '0200', progIf: '00' },
    });
    expect(parseUevent('PCI_CLASS=C0330\n').pciClass).toEqual({ class: '0c03', progIf: '30' });
    expect(parseUevent('PCI_CLASS=0000\n').pciClass).toEqual({ class: '0000', progIf: '00' });
  });

  it('leaves out what is absent or malformed (the files are read instead)', () => {
    expect(parseUevent('')).toEqual({});
    expect(parseUevent('PCI_ID=8086-10C9\nPCI_CLASS=1234567\nPCI_SUBSYS_ID=80861:0C9\nPCI_CLASS=xyz')).toEqual({});
  });

  it('takes an id pair exactly when it is two 4-digit hex ids around a colon', () => {
    const pairLike = fc
      .tuple(fc.oneof(hexString(4), hexString(3), fc.string({ maxLength: 5 })), fc.constantFrom(':', '-', ''), fc.oneof(hexString(4), hexString(5), fc.string({ maxLength: 5 })))
      .map(([a, sep, b]) => `${a}${sep}${b}`);
    fc.assert(
      fc.property(pairLike, (value) => {
        fc.pre(!value.includes('\n'));
        const match = /^([0-9A-Fa-f]{4}):([0-9A-Fa-f]{4})$/.exec(value);
        const ids = parseUevent(`PCI_ID=${value}\nPCI_SUBSYS_ID=${value}\n`);
        const expected = match === null ? {} : { vendor: match[1]!.toLowerCase(), device: match[2]!.toLowerCase() };
        expect({ vendor: ids.vendor, device: ids.device }).toEqual({ vendor: undefined, device: undefined, ...expected });
        expect(ids.subsystemVendor).toBe(expected.vendor);
        expect(ids.subsystemDevice).toBe(expected.device);
      }),
      { numRuns: 2000 },
    );
  });
});
