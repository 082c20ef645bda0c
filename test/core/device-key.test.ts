import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatAddress, nodedevName, type PciAddress } from '../../src/core/address.js';
import {
  formatKey,
  keyKind,
  parseId,
  parseKey,
  parsePciRef,
  pciAddressOf,
  pciKey,
  tryParseKey,
  type DeviceId,
} from '../../src/core/device-key.js';
import { HostdevError } from '../../src/core/errors.js';

const pciAddress: fc.Arbitrary<PciAddress> = fc
  .record({
    domain: fc.integer({ min: 0, max: 0xffff }),
    bus: fc.integer({ min: 0, max: 0xff }),
    slot: fc.integer({ min: 0, max: 0x1f }),
    function: fc.integer({ min: 0, max: 7 }),
  })
  .map(formatAddress);

const deviceId: fc.Arbitrary<DeviceId> = fc.oneof(
  pciAddress.map((address) => ({ kind: 'pci' as const, address })),
  fc.uuid().map((uuid) => ({ kind: 'mdev' as const, uuid })),
  fc
    .record({
      bus: fc.integer({ min: 1, max: 127 }),
      ports: fc.array(fc.integer({ min: 1, max: 31 }), { minLength: 1, maxLength: 7 }),
    })
    .map(({ bus, ports }) => ({ kind: 'usb' as const, bus, ports })),
  fc
    .record({ controller: pciAddress, namespace: fc.integer({ min: 1, max: 0xfffffffe }) })
    .map(({ controller, namespace }) => ({ kind: 'nvme' as const, controller, namespace })),
  fc
    .tuple(fc.nat(), fc.nat(), fc.nat(), fc.maxSafeNat())
    .map(([host, bus, target, lun]) => ({ kind: 'scsi' as const, host, bus, target, lun })),
);

/** The same address as the CLI takes it: full, upper-case, short (domain 0) or libvirt's nodedev name. */
function spellings(address: PciAddress): string[] {
  const out = [address, address.toUpperCase(), nodedevName(address), `pci:${address.toUpperCase()}`];
  if (address.startsWith('0000:')) out.push(address.slice(5));
  return out;
}

function refusal(input: string): HostdevError {
  try {
    parseKey(input);
  } catch (error) {
    return error as HostdevError;
  }
  throw new Error(`${JSON.stringify(input)} was taken as a key`);
}

describe('device keys', () => {
  it('names each kind in its canonical spelling', () => {
    expect(parseKey('pci:0000:01:10.0')).toBe('pci:0000:01:10.0');
    expect(parseKey('mdev:4B20D080-1B54-4048-85B3-A6A62D165C01')).toBe('mdev:4b20d080-1b54-4048-85b3-a6a62d165c01');
    expect(parseKey('usb:001-1.04')).toBe('usb:1-1.4');
    expect(parseKey('nvme:0000:02:00.0/1')).toBe('nvme:0000:02:00.0/1');
    expect(parseKey('nvme:02:00.0/01')).toBe('nvme:0000:02:00.0/1');
    expect(parseKey('scsi:0:0:2:1')).toBe('scsi:0:0:2:1');
    expect(keyKind(parseKey('scsi:0:0:2:1'))).toBe('scsi');
    expect(keyKind(parseKey('usb:3-2'))).toBe('usb');
  });

  it('takes a bare PCI address in every spelling the CLI takes as a pci: key', () => {
    fc.assert(
      fc.property(pciAddress, (address) => {
        for (const spelling of spellings(address)) {
          expect(parseKey(spelling)).toBe(pciKey(address));
          expect(parsePciRef(spelling)).toBe(address);
        }
        expect(pciAddressOf(pciKey(address))).toBe(address);
      }),
    );
  });

  it('round-trips every key: parse(format(id)) is id and format(parse(key)) is key', () => {
    fc.assert(
      fc.property(deviceId, (id) => {
        const key = formatKey(id);
        expect(parseId(key)).toEqual(id);
        expect(parseKey(key)).toBe(key);
        expect(keyKind(key)).toBe(id.kind);
        expect(pciAddressOf(key)).toBe(id.kind === 'pci' ? id.address : null);
      }),
    );
  });

  it('parsing is idempotent over arbitrary text: whatever it takes, it takes again as the same key', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), deviceId.map((id) => formatKey(id).toUpperCase())), (text) => {
        const key = tryParseKey(text);
        if (key !== null) expect(tryParseKey(key)).toBe(key);
      }),
    );
  });

  it.each([
    '',
    'pci:',
    'pci:0000:01:20.0',
    'PCI:0000:01:00.0',
    'pci:../0000:01:00.0',
    'mdev:not-a-uuid',
    'mdev:4b20d080-1b54-4048-85b3-a6a62d165c01/x',
    'usb:0-1',
    'usb:1-',
    'usb:1-32',
    'usb:1-1.1.1.1.1.1.1.1',
    'usb:128-1',
    'nvme:0000:02:00.0',
    'nvme:0000:02:00.0/0',
    'nvme:0000:02:00.0/4294967295',
    'nvme:/1',
    'scsi:0:0:1',
    'scsi:0:0:1:-1',
    'scsi:a:0:1:0',
    'sata:0:0:1:0',
    '0000:01:00.2 ',
  ])('refuses %j with HOSTDEV_BAD_ADDRESS (exit 2)', (input) => {
    const error = refusal(input);
    expect(error).toBeInstanceOf(HostdevError);
    expect(error.code).toBe('HOSTDEV_BAD_ADDRESS');
    expect(error.exitCode).toBe(2);
    expect(error.hint).toMatch(/pci:0000:01:00\.2/);
  });

  it('an operation on PCI functions refuses a key of another kind by name', () => {
    for (const input of ['mdev:4b20d080-1b54-4048-85b3-a6a62d165c01', 'usb:1-2', 'nvme:0000:02:00.0/1', 'scsi:0:0:0:0']) {
      expect(() => parsePciRef(input)).toThrow(/names a (mdev|usb|nvme|scsi) device; this operation takes PCI devices only/);
    }
  });
});

describe('device key refusals say what was wrong', () => {
  it('a bare address keeps its old message; a key of a known kind is named by kind', () => {
    expect(refusal('0000:01:00.8').message).toBe('"0000:01:00.8" is not a PCI address or a device key');
    expect(refusal('usb:0-1').message).toBe('"usb:0-1" is not a valid usb: key');
  });
});
