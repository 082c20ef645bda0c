import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PciAddress } from '../../src/core/address.js';
import type { Tables } from '../../src/core/tables.js';
import { SimHostUsage } from '../../src/host/sim-host-usage.js';
import { HostdevManager } from '../../src/manager/hostdev-manager.js';
import type { RecoveryReport } from '../../src/manager/recovery.js';
import { buildHost } from '../../src/sim/builder.js';
import { SimKernel } from '../../src/sim/kernel.js';
import type { HostSpec, NodeSpec } from '../../src/sim/spec.js';
import { StateStore } from '../../src/state/store.js';

/** Helpers of the process tests (crash, concurrency, restart). */

/** The worker script, from test/manager/ or from the benchmark's compiled copy (dist-check/test/manager/). */
export const WORKER = [
  fileURLToPath(new URL('./fixtures/ops-worker.mjs', import.meta.url)),
  fileURLToPath(new URL('../../../test/manager/fixtures/ops-worker.mjs', import.meta.url)),
].find((file) => fs.existsSync(file))!;

export type WorkerOp =
  | { readonly op: 'assign'; readonly domain: string; readonly addresses: readonly string[]; readonly managed?: boolean }
  | { readonly op: 'release'; readonly domain: string; readonly addresses?: readonly string[] }
  | { readonly op: 'detach'; readonly address: string }
  | { readonly op: 'reattach'; readonly address: string };

export interface WorkerConfig {
  readonly root: string;
  readonly stateDir: string;
  readonly script?: readonly WorkerOp[];
  readonly random?: { seed: number; count: number; devices: readonly string[]; domains: readonly string[] };
  readonly journal?: boolean;
  readonly lockTimeoutMs?: number;
}

export interface WorkerLine {
  readonly i?: number;
  readonly op?: string;
  readonly ok?: boolean;
  readonly code?: string;
  readonly message?: string;
  readonly domain?: string;
  readonly addresses?: string[];
  readonly changes?: Array<{ kind: string; entry?: { address: string; usedBy?: { domain: string } }; address?: string }>;
  readonly released?: string[];
  readonly writes?: number;
  readonly opened?: boolean;
  readonly recovery?: { repaired: unknown[]; pruned: unknown[]; drift: unknown[]; warnings: string[] };
  readonly done?: boolean;
  readonly ms?: number;
  readonly startedAt?: number;
  readonly endedAt?: number;
}

export interface WorkerRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly lines: WorkerLine[];
  readonly stderr: string;
}

/** Runs the ops worker in a fresh node process (faults: the simulator's HOSTDEV_SIM_FAULTS). */
export function runWorker(config: WorkerConfig, faults?: readonly unknown[]): Promise<WorkerRun> {
  const env = { ...process.env };
  if (faults) env['HOSTDEV_SIM_FAULTS'] = JSON.stringify(faults);
  else delete env['HOSTDEV_SIM_FAULTS'];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, JSON.stringify(config)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const lines = stdout
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as WorkerLine);
      resolve({ code, signal, lines, stderr });
    });
  });
}

/** Runs a worker that must finish cleanly; throws with its output otherwise. */
export async function runWorkerOk(config: WorkerConfig): Promise<WorkerLine[]> {
  const run = await runWorker(config);
  if (run.code !== 0 || !run.lines.some((line) => line.done)) {
    throw new Error(`worker failed (${run.code ?? run.signal}):\n${run.stderr}\n${JSON.stringify(run.lines)}`);
  }
  return run.lines;
}

/**
 * `count` NIC functions, each alone behind its own root port (ACS), so each is its own IOMMU
 * group: assign conflicts come from the tables, not from group sharing.
 */
export function isolatedSpec(count: number): { spec: HostSpec; addresses: PciAddress[] } {
  const ports: NodeSpec[] = [];
  const addresses: PciAddress[] = [];
  for (let i = 0; i < count; i++) {
    const bus = i + 1;
    ports.push({
      kind: 'bridge',
      at: `${(1 + (i >> 3)).toString(16)}.${i & 7}`,
      vendor: '8086',
      device: 'a110',
      port: 'root-port',
      secondaryBus: bus,
      children: [{ at: '00.0', vendor: '8086', device: '1533', class: '020000', driver: 'igb', flr: true }],
    });
    addresses.push(`0000:${bus.toString(16).padStart(2, '0')}:00.0` as PciAddress);
  }
  return {
    spec: { description: `${count} isolated NICs`, drivers: { 'vfio-pci': { loaded: true } }, roots: [{ devices: ports }] },
    addresses,
  };
}

export interface SimSetup {
  readonly base: string;
  readonly root: string;
  readonly stateDir: string;
}

export function simSetup(spec: HostSpec): SimSetup {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'hostdev-recovery-'));
  const root = path.join(base, 'root');
  buildHost(root, spec);
  return { base, root, stateDir: path.join(base, 'state') };
}

/**
 * Opens the manager in this (test) process, which is not the one that was killed: recovery
 * runs as in any fresh process. Returns what it reported and how many sysfs writes it made.
 */
export async function reopen(setup: SimSetup): Promise<RecoveryReport & { writes: number }> {
  const kernel = new SimKernel(setup.root, { env: {} });
  try {
    const manager = await HostdevManager.open({
      root: setup.root,
      stateDir: setup.stateDir,
      kernel,
      hostUsage: new SimHostUsage(setup.root),
    });
    manager.close();
    return { ...manager.recovery, writes: kernel.writes.length };
  } finally {
    kernel.close();
  }
}

export function driverOf(root: string, address: string): string | null {
  try {
    return path.basename(fs.readlinkSync(path.join(root, 'sys/bus/pci/devices', address, 'driver')));
  } catch {
    return null;
  }
}

export function overrideOf(root: string, address: string): string | null {
  const text = fs.readFileSync(path.join(root, 'sys/bus/pci/devices', address, 'driver_override'), 'utf8').trim();
  return text === '(null)' || text === '' ? null : text;
}

/** The host and the tables, in one comparable value. */
export interface Snapshot {
  readonly tables: Tables;
  readonly drivers: Record<string, { driver: string | null; override: string | null }>;
  readonly journal: number;
}

export function snapshot(setup: SimSetup, addresses: readonly string[]): Snapshot {
  const store = StateStore.open(setup.stateDir);
  try {
    const drivers: Snapshot['drivers'] = {};
    for (const address of addresses) {
      drivers[address] = { driver: driverOf(setup.root, address), override: overrideOf(setup.root, address) };
    }
    return { tables: store.readTables(), drivers, journal: store.readJournal().length };
  } finally {
    store.close();
  }
}

/**
 * The invariants the process tests hold: no device on a stub without a table entry, no table entry whose
 * device is on its host driver, no device in two tables (or two domains: the address is the
 * key), journal empty. Returns the violations (empty when all hold).
 */
export function violations(state: Snapshot, hostDrivers: Readonly<Record<string, string | null>>): string[] {
  const problems: string[] = [];
  const recorded = new Map<string, { stub: string; where: string }>();
  for (const entry of state.tables.active) {
    if (recorded.has(entry.address)) problems.push(`${entry.address} twice in active`);
    recorded.set(entry.address, { stub: entry.stubDriver, where: `active (${entry.usedBy.domain})` });
  }
  for (const entry of state.tables.inactive) {
    if (recorded.has(entry.address)) problems.push(`${entry.address} in active and inactive`);
    recorded.set(entry.address, { stub: entry.stubDriver, where: 'inactive' });
  }
  for (const [address, { driver, override }] of Object.entries(state.drivers)) {
    const entry = recorded.get(address);
    if (entry && driver !== entry.stub) problems.push(`${address} is ${entry.where} but on ${driver ?? 'no driver'}`);
    if (!entry && driver !== hostDrivers[address]) {
      problems.push(`${address} is in no table but on ${driver ?? 'no driver'}, not on ${hostDrivers[address] ?? 'no driver'}`);
    }
    if (!entry && override !== null) problems.push(`${address} is in no table but keeps driver_override ${override}`);
  }
  if (state.journal !== 0) problems.push(`journal has ${state.journal} rows`);
  return problems;
}
