import { parentPort, workerData } from 'node:worker_threads';
import type { PciAddress } from '../core/address.js';
import type { InventoryWarning } from '../core/device.js';
import { readFunctions } from './inventory.js';
import { cachedPciIds } from './pci-ids.js';
import { SysfsLayout } from './paths.js';

/** One slice of a parallel inventory read (see inventory-parallel.ts). */
export interface SliceRequest {
  readonly root: string;
  readonly addresses: readonly PciAddress[];
  /** null: no names. */
  readonly pciIdsPath: string | null;
  readonly iommuEnabled: boolean;
}

const request = workerData as SliceRequest;
const warnings: InventoryWarning[] = [];
const names = request.pciIdsPath === null ? null : cachedPciIds(request.pciIdsPath);
const devices = readFunctions(new SysfsLayout(request.root), request.addresses, names, request.iommuEnabled, warnings);
parentPort?.postMessage({ devices, warnings });
