import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { PciAddress } from '../../src/core/address.js';
import type { HostUsagePort } from '../../src/host/host-usage-port.js';
import { SimHostUsage } from '../../src/host/sim-host-usage.js';
import { HostdevManager } from '../../src/manager/hostdev-manager.js';
import { buildHost } from '../../src/sim/builder.js';
import { presets } from '../../src/sim/presets.js';
import type { NetPort } from '../../src/net/net-port.js';
import type { KernelPort } from '../../src/sysfs/kernel-port.js';
import { SimKernel } from '../../src/sim/kernel.js';

/** A simulated host in a temp dir with its own state dir, and the manager over it. */
export interface SimManagerHost {
  readonly root: string;
  readonly stateDir: string;
  readonly kernel: KernelPort;
  open(options?: { kernel?: KernelPort; hostUsage?: HostUsagePort; net?: NetPort }): Promise<HostdevManager>;
  /** Opens a manager, runs `fn` with it, closes it. */
  withManager<T>(fn: (manager: HostdevManager) => Promise<T>, options?: { kernel?: KernelPort }): Promise<T>;
  /** Reads a sysfs attribute of the tree as text (trimmed). */
  read(hostPath: string): string;
  driverOf(address: string): string | null;
  cleanup(): void;
}

export function simKernel(root: string): KernelPort {
  return new SimKernel(root);
}

export function simManagerHost(preset: string): SimManagerHost {
  const base = mkdtempSync(path.join(tmpdir(), 'hostdev-manager-'));
  const root = path.join(base, 'root');
  const stateDir = path.join(base, 'state');
  const spec = presets[preset];
  if (!spec) throw new Error(`no preset ${preset}`);
  buildHost(root, spec);
  const kernel = simKernel(root);
  const open = (options: { kernel?: KernelPort; hostUsage?: HostUsagePort; net?: NetPort } = {}): Promise<HostdevManager> =>
    HostdevManager.open({
      root,
      stateDir,
      kernel: options.kernel ?? kernel,
      hostUsage: options.hostUsage ?? new SimHostUsage(root),
      ...(options.net === undefined ? {} : { net: options.net }),
    });
  return {
    root,
    stateDir,
    kernel,
    open,
    withManager: async (fn, options = {}) => {
      const manager = await open(options);
      try {
        return await fn(manager);
      } finally {
        manager.close();
      }
    },
    read: (hostPath) => readFileSync(path.join(root, hostPath), 'utf8').trim(),
    driverOf: (address) => {
      try {
        return path.basename(readlinkSync(path.join(root, 'sys/bus/pci/devices', address, 'driver')));
      } catch {
        return null;
      }
    },
    cleanup: () => rmSync(base, { recursive: true, force: true }),
  };
}

/**
 * Every file (content) and symlink (target) under ROOT/sys and ROOT/dev: two equal snapshots
 * mean the host looks the same to anyone reading it. The simulator's own bookkeeping
 * (ROOT/.hostdev-sim, which counts resets) is left out.
 */
export function treeSnapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names.sort()) {
      const full = path.join(dir, name);
      const rel = path.relative(root, full);
      // The kernel's event counter: a rollback puts the devices back, but the events it made were sent.
      if (rel === 'sys/kernel/uevent_seqnum') continue;
      const stat = lstatSync(full);
      if (stat.isSymbolicLink()) out.set(rel, `-> ${readlinkSync(full)}`);
      else if (stat.isDirectory()) {
        out.set(rel, 'dir');
        walk(full);
      } else out.set(rel, readFileSync(full).toString('base64'));
    }
  };
  walk(path.join(root, 'sys'));
  walk(path.join(root, 'dev'));
  return out;
}

/**
 * Records every write before passing it on. Fails the Nth write (1-based), or writes whose path
 * matches `failOn`, with EIO; `swallow` makes matching writes succeed without doing anything (what
 * Linux does with a drivers_probe that binds nothing).
 */
export class RecordingKernel implements KernelPort {
  readonly writes: Array<{ hostPath: string; value: string }> = [];
  readonly modules: string[] = [];
  failAt: number | null = null;
  failOn: ((hostPath: string, value: string) => boolean) | null = null;
  swallow: ((hostPath: string, value: string) => boolean) | null = null;

  constructor(private readonly inner: KernelPort) {}

  async write(hostPath: string, value: string): Promise<void> {
    this.writes.push({ hostPath, value });
    if (this.swallow?.(hostPath, value)) return;
    if (this.failAt === this.writes.length || this.failOn?.(hostPath, value)) {
      const { KernelWriteError } = await import('../../src/sysfs/kernel-port.js');
      throw new KernelWriteError(hostPath, value, 'EIO');
    }
    await this.inner.write(hostPath, value);
  }

  loadModule(name: string): Promise<void> {
    this.modules.push(name);
    return this.inner.loadModule(name);
  }
}

export const pci = (text: string): PciAddress => text as PciAddress;
