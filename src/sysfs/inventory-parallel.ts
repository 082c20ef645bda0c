import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Inventory, InventoryWarning, PciDevice } from '../core/device.js';
import { planInventory, readFunctions } from './inventory.js';
import type { SliceRequest } from './inventory-worker.js';
import { DEFAULT_PCI_IDS_PATH } from './pci-ids.js';
import type { SysfsLayout } from './paths.js';

export interface ParallelReadOptions {
  /** Default /usr/share/misc/pci.ids; null for no names. */
  readonly pciIdsPath?: string | null;
  /** Threads reading, the caller's included. Default: the CPUs available, at most 4. */
  readonly threads?: number;
  /** Below this many functions one thread reads everything (a worker costs a few ms to start). */
  readonly minFunctions?: number;
}

/**
 * readInventory for the CLI on large hosts: the same result, with the functions split into
 * contiguous slices read by worker threads while this thread reads the first one. Reading sysfs
 * is thousands of small system calls; on a host with spare CPUs they run side by side.
 */
export async function readInventoryParallel(layout: SysfsLayout, options: ParallelReadOptions = {}): Promise<Inventory> {
  const pciIdsPath = options.pciIdsPath === undefined ? DEFAULT_PCI_IDS_PATH : options.pciIdsPath;
  const plan = planInventory(layout, pciIdsPath === null ? { names: null } : { pciIdsPath });
  const threads = Math.max(1, Math.min(options.threads ?? Math.min(availableParallelism(), 4), 16));
  const minFunctions = options.minFunctions ?? 1024;
  if (threads === 1 || plan.addresses.length < minFunctions) {
    const devices = readFunctions(layout, plan.addresses, plan.names, plan.iommuEnabled, plan.warnings);
    return { devices, warnings: plan.warnings, iommuEnabled: plan.iommuEnabled };
  }

  // The workers start while this thread reads: give it a larger first slice to cover their start-up.
  const total = plan.addresses.length;
  const own = Math.ceil(total / threads + total / (4 * threads));
  const per = Math.ceil((total - own) / (threads - 1));
  const slices = [plan.addresses.slice(0, own)];
  for (let start = own; start < total; start += per) slices.push(plan.addresses.slice(start, start + per));

  const pending = slices.slice(1).map((addresses) => {
    const request: SliceRequest = { root: layout.root, addresses, pciIdsPath: plan.names === null ? null : pciIdsPath, iommuEnabled: plan.iommuEnabled };
    return runSlice(request);
  });
  const warnings = plan.warnings;
  const first = readFunctions(layout, slices[0]!, plan.names, plan.iommuEnabled, warnings);
  const rest = await Promise.all(pending);
  const devices: PciDevice[] = first;
  for (const slice of rest) {
    for (const device of slice.devices) devices.push(device);
    for (const warning of slice.warnings) warnings.push(warning);
  }
  return { devices, warnings, iommuEnabled: plan.iommuEnabled };
}

function runSlice(request: SliceRequest): Promise<{ devices: PciDevice[]; warnings: InventoryWarning[] }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./inventory-worker.js', import.meta.url), { workerData: request });
    worker.once('message', (result: { devices: PciDevice[]; warnings: InventoryWarning[] }) => resolve(result));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`inventory worker exited with code ${code}`));
    });
  });
}
