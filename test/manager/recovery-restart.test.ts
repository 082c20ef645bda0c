import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { pciKey } from '../../src/core/device-key.js';
import type { RecoveryReport } from '../../src/manager/recovery.js';
import { SimKernel } from '../../src/sim/kernel.js';
import { presets } from '../../src/sim/presets.js';
import { jsonOf, runCli } from '../support/cli.js';
import {
  driverOf,
  isolatedSpec,
  reopen,
  runWorkerOk,
  simSetup,
  snapshot,
  type SimSetup,
  type WorkerOp,
} from './recovery-support.js';

/** Issue 5's restart scenarios: what hostdev finds when it starts after changes made while it was not running. */

const bases: string[] = [];
afterAll(() => {
  for (const base of bases) fs.rmSync(base, { recursive: true, force: true });
});

function host(spec: Parameters<typeof simSetup>[0]): SimSetup {
  const setup = simSetup(spec);
  bases.push(setup.base);
  return setup;
}

async function prepare(setup: SimSetup, script: readonly WorkerOp[]): Promise<void> {
  const lines = await runWorkerOk({ ...setup, script });
  expect(lines.filter((line) => line.i !== undefined && !line.ok)).toEqual([]);
}

/** A raw write as `echo VALUE > PATH` on the host, with hostdev not running. */
async function byHand(setup: SimSetup, hostPath: string, value: string): Promise<void> {
  const kernel = new SimKernel(setup.root, { env: {} });
  try {
    await kernel.write(hostPath, value);
  } finally {
    kernel.close();
  }
}

function cliStatus(setup: SimSetup): { json: { recovery: RecoveryReport; active: unknown[]; inactive: unknown[] }; stderr: string } {
  const run = runCli(['--root', setup.root, '--state-dir', setup.stateDir, '--simulate', '--json', 'status']);
  expect(run.code).toBe(0);
  return { json: jsonOf(run), stderr: run.stderr };
}

describe('restart scenarios', () => {
  it('(a) VFs removed while hostdev was not running are dropped with a warning naming them; the rest is kept', async () => {
    const setup = host(presets['sriov-nic']!);
    // PF 01:00.0 has VFs 01:10.0 and 01:10.2; PF 01:00.1 has 01:10.1 and 01:10.3.
    await prepare(setup, [
      { op: 'assign', domain: 'vm1', addresses: ['0000:01:10.0', '0000:01:10.2'] },
      { op: 'assign', domain: 'vm2', addresses: ['0000:01:10.1'] },
      { op: 'detach', address: '0000:01:10.3' },
    ]);
    await byHand(setup, '/sys/bus/pci/devices/0000:01:00.0/sriov_numvfs', '0');
    expect(fs.existsSync(`${setup.root}/sys/bus/pci/devices/0000:01:10.0`)).toBe(false);

    const { json, stderr } = cliStatus(setup); // the first start after the change
    expect(json.recovery.pruned).toEqual([
      { key: 'pci:0000:01:10.0', address: '0000:01:10.0', table: 'active', usedBy: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' } },
      { key: 'pci:0000:01:10.2', address: '0000:01:10.2', table: 'active', usedBy: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' } },
    ]);
    expect(stderr).toContain('warning: 0000:01:10.0 is no longer on this host; dropped from the active table (it was used by driver qemu, domain vm1)');
    expect(stderr).toContain('warning: 0000:01:10.2 is no longer on this host');
    const after = snapshot(setup, []);
    expect(after.tables.active.map((e) => [e.address, e.usedBy.domain])).toEqual([['0000:01:10.1', 'vm2']]);
    expect(after.tables.inactive.map((e) => e.address)).toEqual(['0000:01:10.3']);
    // The next start has nothing left to drop, and the address can be used again once it is back.
    expect((await reopen(setup)).pruned).toEqual([]);
    await byHand(setup, '/sys/bus/pci/devices/0000:01:00.0/sriov_numvfs', '2');
    await prepare(setup, [{ op: 'assign', domain: 'vm3', addresses: ['0000:01:10.0'] }]);
  });

  it('(b) devices detached unmanaged survive a restart in the inactive table', async () => {
    const { spec, addresses } = isolatedSpec(2);
    const setup = host(spec);
    await prepare(setup, addresses.map((address) => ({ op: 'detach' as const, address })));
    const { json } = cliStatus(setup); // a new process
    expect(json.inactive).toEqual(
      addresses.map((address) => ({ key: `pci:${address}`, address, managed: false, stubDriver: 'vfio-pci', originalDriver: 'igb', bootId: expect.any(String), hardware: expect.objectContaining({ vendor: '8086' }) })),
    );
    expect(json.recovery).toEqual({ repaired: [], pruned: [], drift: [], vfConfig: [], rebooted: [], warnings: [] });
    expect(addresses.map((address) => driverOf(setup.root, address))).toEqual(['vfio-pci', 'vfio-pci']);
    // and they are still usable as unmanaged devices by a later process
    await prepare(setup, [{ op: 'assign', domain: 'vm1', addresses: [addresses[0]!], managed: false }]);
  });

  it('(c) a driver changed by hand is reported as drift, neither trusted nor silently fixed', async () => {
    const { spec, addresses } = isolatedSpec(2);
    const [inactive, active] = addresses as [PciAddress, PciAddress];
    const setup = host(spec);
    await prepare(setup, [
      { op: 'detach', address: inactive },
      { op: 'assign', domain: 'vm1', addresses: [active] },
    ]);
    await byHand(setup, '/sys/bus/pci/drivers/vfio-pci/unbind', inactive);
    await byHand(setup, `/sys/bus/pci/devices/${active}/driver_override`, '\n');
    await byHand(setup, '/sys/bus/pci/drivers/vfio-pci/unbind', active);
    await byHand(setup, '/sys/bus/pci/drivers/igb/bind', active);
    const before = snapshot(setup, addresses);

    const { json } = cliStatus(setup);
    expect(json.recovery.drift).toEqual([
      { key: pciKey(active), address: active, table: 'active', usedBy: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' }, expectedDriver: 'vfio-pci', actualDriver: 'igb' },
      { key: pciKey(inactive), address: inactive, table: 'inactive', usedBy: null, expectedDriver: 'vfio-pci', actualDriver: null },
    ]);
    expect(json.recovery.warnings).toEqual([
      `${active} (assigned to driver qemu, domain vm1) should be on vfio-pci but is on igb: changed outside hostdev; check the device, then \`hostdev release --domain vm1 ${active}\``,
      `${inactive} (detached, no owner) should be on vfio-pci but is on no driver: changed outside hostdev; check the device, then \`hostdev reattach ${inactive}\``,
    ]);
    expect(snapshot(setup, addresses)).toEqual(before); // no write, no table change
  });
});
