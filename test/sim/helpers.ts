import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildHost } from '../../src/sim/builder.js';
import { presets } from '../../src/sim/presets.js';
import type { HostSpec } from '../../src/sim/spec.js';
import { KernelWriteError } from '../../src/sysfs/kernel-port.js';

const made: string[] = [];

/** tmpfs when there is one: simulated trees are thousands of small files. */
const TMP = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();

export function tempRoot(prefix = 'hostdev-sim-'): string {
  const dir = fs.mkdtempSync(path.join(TMP, prefix));
  made.push(dir);
  return dir;
}

export function cleanupRoots(): void {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

export function presetRoot(name: string): string {
  const spec = presets[name];
  if (!spec) throw new Error(`no preset ${name}`);
  return specRoot(spec);
}

export function specRoot(spec: HostSpec): string {
  const root = path.join(tempRoot(), 'host');
  buildHost(root, spec);
  return root;
}

export function dev(root: string, address: string, file = ''): string {
  return path.join(root, 'sys/bus/pci/devices', address, file);
}

export function readAttr(root: string, address: string, file: string): string {
  return fs.readFileSync(dev(root, address, file), 'utf8').trim();
}

export function driverOf(root: string, address: string): string | null {
  try {
    return path.basename(fs.readlinkSync(dev(root, address, 'driver')));
  } catch {
    return null;
  }
}

export function groupOf(root: string, address: string): number | null {
  try {
    return Number(path.basename(fs.readlinkSync(dev(root, address, 'iommu_group'))));
  } catch {
    return null;
  }
}

export function addresses(root: string): string[] {
  return fs.readdirSync(path.join(root, 'sys/bus/pci/devices')).sort();
}

export function virtfns(root: string, pf: string): string[] {
  return fs
    .readdirSync(dev(root, pf))
    .filter((f) => /^virtfn\d+$/.test(f))
    .sort((a, b) => Number(a.slice(6)) - Number(b.slice(6)))
    .map((f) => path.basename(fs.readlinkSync(dev(root, pf, f))));
}

/** `lspci -A linux-sysfs -O sysfs.path=ROOT/sys/bus/pci -Dnnk`, parsed: class, vendor, device, driver. */
export function lspci(root: string): Map<string, { cls: string; vendor: string; device: string; driver: string | null }> {
  const out = execFileSync('lspci', ['-A', 'linux-sysfs', '-O', `sysfs.path=${root}/sys/bus/pci`, '-Dnnk'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const rows = new Map<string, { cls: string; vendor: string; device: string; driver: string | null }>();
  let current: string | null = null;
  for (const line of out.split('\n')) {
    const head = /^(\S+) .*?\[([0-9a-f]{4})\]: .*\[([0-9a-f]{4}):([0-9a-f]{4})\]( \(rev [0-9a-f]+\))?$/.exec(line);
    if (head) {
      current = head[1]!;
      rows.set(current, { cls: head[2]!, vendor: head[3]!, device: head[4]!, driver: null });
      continue;
    }
    const drv = /^\tKernel driver in use: (\S+)/.exec(line);
    if (drv && current) rows.get(current)!.driver = drv[1]!;
  }
  return rows;
}

/** The errno a kernel write failed with, or null when it succeeded. */
export async function errnoOf(promise: Promise<unknown>): Promise<string | null> {
  try {
    await promise;
    return null;
  } catch (error) {
    if (error instanceof KernelWriteError) return error.errno;
    throw error;
  }
}
