import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { buildHost } from '../../src/sim/builder.js';
import { presets } from '../../src/sim/presets.js';
import { namedOps } from '../../src/sysfs/batch-ops.js';
import { readEntryFactsBounded, type EntryDepth } from '../../src/sysfs/entry-facts.js';
import { SysfsLayout } from '../../src/sysfs/paths.js';

/**
 * The facts the table walk reads of each entry's device, at each depth: the ops of a depth are taken
 * by name, so what a depth reads more (or an op added) cannot shift what the others give.
 */
const PF = '0000:01:00.0' as PciAddress; // sriov-nic's first igb port
const GONE = '0000:7f:00.0' as PciAddress;
let dir: string;
let layout: SysfsLayout;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'hostdev-entry-facts-'));
  buildHost(path.join(dir, 'host'), presets['sriov-nic']!);
  layout = new SysfsLayout(path.join(dir, 'host'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const read = (depth: EntryDepth) => readEntryFactsBounded(layout, [PF, GONE], { timeoutMs: 30_000, stallMs: 10_000, depth });

describe('readEntryFactsBounded', () => {
  it('links: present and the driver, no identity; a gone address is not present', async () => {
    const facts = await read('links');
    expect(facts.get(PF)).toEqual({ present: true, driver: 'igb', identity: null });
    expect(facts.get(GONE)).toEqual({ present: false, driver: null, identity: null });
  });

  it('ids: the card from its uevent, no serials', async () => {
    const facts = await read('ids');
    expect(facts.get(PF)).toEqual({
      present: true,
      driver: 'igb',
      identity: { vendor: '8086', device: '10c9', subsystemVendor: '8086', subsystemDevice: 'a03c', class: '0200', serialNumber: null, vpd: null },
    });
    expect(facts.get(GONE)?.present).toBe(false);
  });

  it('serials: also the DSN from config space and the VPD', async () => {
    const identity = (await read('serials')).get(PF)?.identity;
    expect(identity).toMatchObject({ vendor: '8086', device: '10c9', class: '0200', serialNumber: '00-1b-21-ff-ff-8a-3c-14' });
    expect(identity?.vpd).toMatchObject({ productName: 'Intel(R) Gigabit ET Dual Port Server Adapter', partNumber: 'E66393-003', serialNumber: '001B218A3C14' });
  });

  it('ids: without a uevent, the vendor, device and class files', async () => {
    rmSync(layout.device(PF, 'uevent'));
    const identity = (await read('ids')).get(PF)?.identity;
    expect(identity).toMatchObject({ vendor: '8086', device: '10c9', class: '0200', subsystemVendor: null, subsystemDevice: null });
  });
});

describe('namedOps', () => {
  it('lists the ops in key order and gives each name its position', () => {
    const named = namedOps({ a: { kind: 'link', file: '' }, b: { kind: 'read', file: 'x' }, c: { kind: 'list', file: 'net' } });
    expect(named.list.map((op) => op.file)).toEqual(['', 'x', 'net']);
    expect(named.index).toEqual({ a: 0, b: 1, c: 2 });
  });
});
