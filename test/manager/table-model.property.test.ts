import fc from 'fast-check';
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { isHostdevError } from '../../src/core/errors.js';
import { SimHostUsage } from '../../src/host/sim-host-usage.js';
import { HostdevManager } from '../../src/manager/hostdev-manager.js';
import { SimKernel } from '../../src/sim/kernel.js';
import { driverOf, isolatedSpec, simSetup, type SimSetup } from './recovery-support.js';

/**
 * Model-based test of the manager's table logic: random command sequences run against
 * the real HostdevManager on the simulated kernel and against a model of the tables small enough
 * to be obviously right. After every command the stored tables equal the model, and every
 * device is on vfio-pci exactly when a table holds it. "restart" closes and reopens the manager:
 * tables survive and recovery finds nothing to do.
 */

const { spec, addresses } = isolatedSpec(4);
const DOMAINS = ['vm1', 'vm2', 'vm3'];

type ModelEntry = { table: 'active'; domain: string; managed: boolean } | { table: 'inactive'; managed: boolean };
type Model = Map<string, ModelEntry>;

interface Real {
  setup: SimSetup;
  kernel: SimKernel;
  manager: HostdevManager;
}

async function openReal(setup: SimSetup, kernel: SimKernel): Promise<HostdevManager> {
  return HostdevManager.open({ root: setup.root, stateDir: setup.stateDir, kernel, hostUsage: new SimHostUsage(setup.root) });
}

/** Runs `fn`; returns the error code it failed with, or null. */
async function outcome(fn: () => Promise<unknown>): Promise<string | null> {
  try {
    await fn();
    return null;
  } catch (error) {
    if (isHostdevError(error)) return error.code;
    throw error;
  }
}

function check(model: Model, real: Real): void {
  const tables = real.manager.store.readTables();
  const stored = new Map<string, ModelEntry>();
  for (const e of tables.active) stored.set(e.address, { table: 'active', domain: e.usedBy.domain, managed: e.managed });
  for (const e of tables.inactive) stored.set(e.address, { table: 'inactive', managed: e.managed });
  expect(Object.fromEntries([...stored].sort())).toEqual(Object.fromEntries([...model].sort()));
  for (const address of addresses) {
    expect([address, driverOf(real.setup.root, address)]).toEqual([address, model.has(address) ? 'vfio-pci' : 'igb']);
  }
  expect(real.manager.store.readJournal()).toEqual([]);
}

class Assign implements fc.AsyncCommand<Model, Real> {
  constructor(readonly domain: string, readonly targets: readonly string[], readonly managed: boolean) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const targets = [...new Set(this.targets)];
    const unmanagedBare = targets.some((a) => !model.has(a) && !this.managed);
    const expected = targets.some((a) => model.get(a)?.table === 'active')
      ? 'HOSTDEV_IN_USE'
      : unmanagedBare
        ? 'HOSTDEV_UNMANAGED_NOT_DETACHED'
        : null;
    const code = await outcome(() =>
      real.manager.assign({ domain: this.domain, addresses: targets as PciAddress[], managed: this.managed }),
    );
    expect(code).toBe(expected);
    if (code === null) {
      for (const a of targets) {
        const known = model.get(a);
        model.set(a, { table: 'active', domain: this.domain, managed: known ? known.managed : this.managed });
      }
    }
    check(model, real);
  }
  toString = () => `assign ${this.domain} ${this.targets.join(',')}${this.managed ? '' : ' --unmanaged'}`;
}

class Release implements fc.AsyncCommand<Model, Real> {
  constructor(readonly domain: string) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    // A domain that holds nothing is a typo: refused (no device leaves the host in this model).
    const holds = [...model.values()].some((entry) => entry.table === 'active' && entry.domain === this.domain);
    expect(await outcome(() => real.manager.release({ domain: this.domain }))).toBe(holds ? null : 'HOSTDEV_DOMAIN_NOT_FOUND');
    for (const [a, entry] of model) {
      if (entry.table !== 'active' || entry.domain !== this.domain) continue;
      if (entry.managed) model.delete(a);
      else model.set(a, { table: 'inactive', managed: false });
    }
    check(model, real);
  }
  toString = () => `release ${this.domain}`;
}

/** detach and reattach: both refused for an active device; otherwise detach adds to inactive, reattach removes. */
class NodeCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly kind: 'detach' | 'reattach', readonly address: string) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const address = this.address as PciAddress;
    const code = await outcome(() => (this.kind === 'detach' ? real.manager.detach(address) : real.manager.reattach(address)));
    const table = model.get(address)?.table;
    expect(code).toBe(table === 'active' ? 'HOSTDEV_IN_USE' : null);
    if (this.kind === 'detach' && table === undefined) model.set(address, { table: 'inactive', managed: false });
    if (this.kind === 'reattach' && table === 'inactive') model.delete(address);
    check(model, real);
  }
  toString = () => `${this.kind} ${this.address}`;
}

class Restart implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    real.manager.close();
    real.manager = await openReal(real.setup, real.kernel);
    expect(real.manager.recovery).toEqual({ repaired: [], pruned: [], drift: [], vfConfig: [], warnings: [] });
    check(model, real);
  }
  toString = () => 'restart';
}

const address = fc.constantFrom(...addresses);
const domain = fc.constantFrom(...DOMAINS);
const commands = [
  fc.tuple(domain, fc.array(address, { minLength: 1, maxLength: 2 }), fc.boolean()).map(([d, a, m]) => new Assign(d, a, m)),
  domain.map((d) => new Release(d)),
  address.map((a) => new NodeCommand('detach', a)),
  address.map((a) => new NodeCommand('reattach', a)),
  fc.constant(new Restart()),
];

const bases: string[] = [];
afterAll(() => {
  for (const base of bases) fs.rmSync(base, { recursive: true, force: true });
});

describe('manager table logic against a model', () => {
  it('random command sequences keep tables, host and model in agreement', { timeout: 300_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 12 }), async (cmds) => {
        const setup = simSetup(spec);
        bases.push(setup.base);
        const kernel = new SimKernel(setup.root, { env: {} });
        const real: Real = { setup, kernel, manager: await openReal(setup, kernel) };
        try {
          await fc.asyncModelRun(() => ({ model: new Map(), real }), cmds);
        } finally {
          real.manager.close();
          kernel.close();
        }
      }),
      { numRuns: Number(process.env['HOSTDEV_MODEL_RUNS'] ?? 20) },
    );
  });
});
