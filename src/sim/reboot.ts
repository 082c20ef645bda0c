import fs from 'node:fs';
import path from 'node:path';
import { isStubDriver } from '../core/stub-driver.js';
import { newBoot } from './host-model.js';
import type { SimKernel } from './kernel.js';

/** What `hostdev sim reboot` did. */
export interface RebootSummary {
  readonly bootId: string;
  /** Devices that were on a stub driver (vfio-pci or a variant) and were let go of. */
  readonly leftStub: readonly string[];
  /** PFs whose VFs went (sriov_numvfs back to 0). */
  readonly vfsRemoved: readonly string[];
  /** Devices bound to a host driver again by the probe at boot. */
  readonly probed: readonly string[];
}

/**
 * A reboot of the simulated host, as Linux comes up again: a new boot id, every function the bus
 * has (removed ones come back, as a rescan finds them), no driver_override, SR-IOV disabled
 * (sriov_numvfs is 0 until something sets it: the VFs are gone), and every function probed by the
 * drivers whose ID tables match it, so devices are back on their host drivers; a function whose IDs
 * are in vfio-pci's own table (vfio-pci.ids on the kernel command line) goes to vfio-pci by that
 * probe, as it would at boot. Writes go through the simulated kernel, with its semantics.
 */
export async function rebootSimulatedHost(kernel: SimKernel): Promise<RebootSummary> {
  const devicesDir = kernel.layout.pciDevicesDir;
  const list = (): string[] => fs.readdirSync(devicesDir).sort();
  const driverOf = (address: string): string | null => {
    try {
      return path.basename(fs.readlinkSync(path.join(devicesDir, address, 'driver')));
    } catch {
      return null;
    }
  };
  const read = (address: string, file: string): string | null => {
    try {
      return fs.readFileSync(path.join(devicesDir, address, file), 'utf8').trim();
    } catch {
      return null;
    }
  };
  await kernel.write('/sys/bus/pci/rescan', '1');
  const leftStub: string[] = [];
  for (const address of list()) {
    const driver = driverOf(address);
    if (driver === null || !isStubDriver(driver)) continue;
    await kernel.write(`/sys/bus/pci/devices/${address}/driver_override`, '\n');
    await kernel.write(`/sys/bus/pci/drivers/${driver}/unbind`, address);
    leftStub.push(address);
  }
  const vfsRemoved: string[] = [];
  for (const address of list()) {
    const numVfs = read(address, 'sriov_numvfs');
    if (numVfs === null || numVfs === '0') continue;
    await kernel.write(`/sys/bus/pci/devices/${address}/sriov_numvfs`, '0');
    vfsRemoved.push(address);
  }
  const probed: string[] = [];
  for (const address of list()) {
    const override = read(address, 'driver_override');
    if (override !== null && override !== '(null)') await kernel.write(`/sys/bus/pci/devices/${address}/driver_override`, '\n');
    if (driverOf(address) !== null) continue;
    try {
      await kernel.write('/sys/bus/pci/drivers_probe', address);
    } catch {
      // No driver wants it: it stays unbound, as at boot.
    }
    if (driverOf(address) !== null) probed.push(address);
  }
  return { bootId: newBoot(kernel.root), leftStub, vfsRemoved, probed };
}
