import { describe, expect, it } from 'vitest';
import { configFromBytes, parseConfigSpace } from '../../src/sysfs/config-space.js';
import { configSpace } from '../support/tiny-sysfs.js';

const parse = (bytes: Uint8Array) => parseConfigSpace(configFromBytes(bytes));

describe('parseConfigSpace', () => {
  it('reads FLR from the PCIe DevCap bit 28', () => {
    expect(parse(configSpace({ vendor: 0x8086, device: 0x10c9, flr: true }))).toMatchObject({ headerType: 'endpoint', flr: true });
    expect(parse(configSpace({ vendor: 0x8086, device: 0x10c9, flr: false }))).toMatchObject({ headerType: 'endpoint', flr: false });
  });

  it('reads revision and subsystem ids from a type-0 header only', () => {
    expect(parse(configSpace({ vendor: 0x8086, device: 2, revision: 0xa1, subsystemDevice: 0x1234 }))).toMatchObject({
      revision: 'a1',
      subsystemVendor: '8086',
      subsystemDevice: '1234',
    });
    expect(parse(configSpace({ vendor: 0x8086, device: 2, headerType: 1 }))).toMatchObject({
      revision: null,
      subsystemVendor: null,
      subsystemDevice: null,
    });
  });

  it('reads the header type', () => {
    expect(parse(configSpace({ vendor: 1, device: 2, headerType: 0x81 })).headerType).toBe('bridge');
    expect(parse(configSpace({ vendor: 1, device: 2, headerType: 2 })).headerType).toBe('cardbus');
    expect(parse(configSpace({ vendor: 1, device: 2, headerType: 5 }))).toMatchObject({ headerType: null, flr: null, revision: null });
  });

  it('finds FLR further down the list and in the Advanced Features capability', () => {
    const config = configSpace({ vendor: 1, device: 2 });
    config[0x40] = 0x05; // MSI first
    config[0x41] = 0x60;
    config[0x60] = 0x13; // AF with FLR
    config[0x63] = 0x03;
    expect(parse(config).flr).toBe(true);
  });

  it('gives flr null when only the 64-byte header is readable (unprivileged)', () => {
    expect(parse(configSpace({ vendor: 1, device: 2, flr: true }).slice(0, 64))).toMatchObject({ headerType: 'endpoint', flr: null });
    expect(parse(new Uint8Array(16))).toMatchObject({ headerType: null, flr: null });
  });

  it('says false without a capability list, and survives a looping list', () => {
    const plain = configSpace({ vendor: 1, device: 2, flr: true });
    plain[6] = 0;
    expect(parse(plain).flr).toBe(false);
    const looping = configSpace({ vendor: 1, device: 2 });
    looping[0x40] = 0x05;
    looping[0x41] = 0x40;
    expect(parse(looping).flr).toBe(false);
  });
});
