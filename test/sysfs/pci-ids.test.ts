import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadPciIds, PciIdsDatabase } from '../../src/sysfs/pci-ids.js';

const db = new PciIdsDatabase(
  Buffer.from(
    [
      '# comment',
      '1234  First Vendor',
      '\t0001  Widget',
      '\t\t1234 0001  Widget subsystem',
      '# a comment inside a block',
      '\t0002  Gadget ünïcode',
      '5678  Second Vendor',
      '\t0003  Other',
      '',
      'C 02  Network controller',
      '\t00  Ethernet controller',
      '\t\t00  prog-if',
      'C ff  Unassigned class',
      '',
    ].join('\n'),
  ),
);

describe('PciIdsDatabase', () => {
  it('finds vendors, devices in their own vendor block only, and UTF-8 names', () => {
    expect(db.vendorName('1234')).toBe('First Vendor');
    expect(db.deviceName('1234', '0001')).toBe('Widget');
    expect(db.deviceName('1234', '0002')).toBe('Gadget ünïcode');
    expect(db.deviceName('1234', '0003')).toBeNull();
    expect(db.deviceName('5678', '0003')).toBe('Other');
    expect(db.vendorName('9999')).toBeNull();
    expect(db.vendorName('../x')).toBeNull();
  });

  it('names classes like lspci: the subclass, else the base class', () => {
    expect(db.className('0200')).toBe('Ethernet controller');
    expect(db.className('0280')).toBe('Network controller');
    expect(db.className('ffff')).toBe('Unassigned class');
    expect(db.className('4000')).toBeNull();
  });

  it('returns null for a missing file', () => {
    expect(loadPciIds('/nonexistent/pci.ids')).toBeNull();
  });

  it.runIf(existsSync('/usr/share/misc/pci.ids'))('reads the Debian database', () => {
    const system = loadPciIds()!;
    expect(system.vendorName('8086')).toBe('Intel Corporation');
    expect(system.deviceName('8086', '10ca')).toBe('82576 Virtual Function');
    expect(system.vendorName('1af4')).toBe('Red Hat, Inc.');
  });
});
