import type { PciAddress } from './address.js';
import type { PciDevice } from './device.js';
import { resetUnsafe, type Blocker } from './plan-errors.js';
import type { HostView, ResetChoice, RestorePoint, Step, WriteAction } from './plan-types.js';
import { DEFAULT_STUB_DRIVER, isStubDriver, moduleOf } from './stub-driver.js';
import { sameOwner, TableIndex, type InactiveEntry, type Owner } from './tables.js';
import type { KernelFiles } from './kernel-files.js';

/** The per-device building blocks of every plan: detach, reattach, restore, reset. */

const CLEAR = '\n';

function write(address: PciAddress, action: WriteAction, hostPath: string, value: string): Step {
  return { kind: 'write', address, action, hostPath, value };
}

export function restorePointOf(device: PciDevice): RestorePoint {
  return { driver: device.driver, driverOverride: device.driverOverride };
}

export function loadModuleStep(driver: string, view: HostView, alreadyPlanned: Set<string>): Step[] {
  if (view.loadedDrivers.has(driver) || alreadyPlanned.has(driver)) return [];
  alreadyPlanned.add(driver);
  return [{ kind: 'load-module', module: moduleOf(driver), driver }];
}

/**
 * Device -> stub: driver_override, unbind from the current driver, drivers_probe, read back.
 * Never new_id: it would make the stub grab every device with the same IDs.
 * A device already on the stub needs no write.
 */
export function detachSteps(files: KernelFiles, device: PciDevice, stubDriver: string): Step[] {
  if (device.driver === stubDriver) return [];
  const address = device.address;
  const steps: Step[] = [write(address, 'set-override', files.device(address, 'driver_override'), stubDriver)];
  if (device.driver !== null) {
    steps.push(write(address, 'unbind', files.driver(device.driver, 'unbind'), address));
  }
  steps.push(write(address, 'probe', files.driversProbe, address));
  steps.push({ kind: 'verify-driver', address, expected: stubDriver });
  return steps;
}

/**
 * Stub -> original driver: clear driver_override, unbind from the stub, drivers_probe, read back.
 * A device that was on the stub before hostdev took it stays there. One that had no driver is
 * probed too (as libvirt does), so a driver loaded since binds; it may stay unbound, but not on a stub.
 */
export function reattachSteps(files: KernelFiles, device: PciDevice, entry: InactiveEntry): Step[] {
  const address = device.address;
  const original = entry.originalDriver;
  if (original !== null && original === entry.stubDriver) return [];
  if (original === null) return probeForHostDriver(files, device, false);
  if (device.driver === original && device.driverOverride === null) return [];
  const steps: Step[] = [];
  if (device.driverOverride !== null) {
    steps.push(write(address, 'clear-override', files.device(address, 'driver_override'), CLEAR));
  }
  if (device.driver !== null && device.driver !== original) {
    steps.push(write(address, 'unbind', files.driver(device.driver, 'unbind'), address));
  }
  if (device.driver !== original) {
    steps.push(write(address, 'probe', files.driversProbe, address));
  }
  steps.push({ kind: 'verify-driver', address, expected: original });
  return steps;
}

/**
 * Off the stub (or no driver) -> whichever host driver the kernel picks: clear driver_override,
 * unbind from the stub, drivers_probe, read back (`bound`: some host driver must have taken it).
 * A device already on a host driver needs no write.
 */
export function probeForHostDriver(files: KernelFiles, device: PciDevice, bound: boolean): Step[] {
  const address = device.address;
  if (device.driver !== null && !isStubDriver(device.driver) && device.driverOverride === null) return [];
  const steps: Step[] = [];
  if (device.driverOverride !== null) {
    steps.push(write(address, 'clear-override', files.device(address, 'driver_override'), CLEAR));
  }
  if (device.driver !== null && isStubDriver(device.driver)) {
    steps.push(write(address, 'unbind', files.driver(device.driver, 'unbind'), address));
  }
  steps.push(write(address, 'probe', files.driversProbe, address));
  steps.push({ kind: 'verify-host-driver', address, bound });
  return steps;
}

/**
 * Whatever state `device` is in now -> the restore point, with an explicit bind (not a probe)
 * so that the device goes back to exactly the driver it had. Used by rollbacks.
 */
export function restoreSteps(files: KernelFiles, device: PciDevice, restore: RestorePoint): Step[] {
  const address = device.address;
  const steps: Step[] = [];
  if (device.driverOverride !== restore.driverOverride) {
    steps.push(
      write(address, 'set-override', files.device(address, 'driver_override'), restore.driverOverride ?? CLEAR),
    );
  }
  if (device.driver !== restore.driver) {
    if (device.driver !== null) {
      steps.push(write(address, 'unbind', files.driver(device.driver, 'unbind'), address));
    }
    if (restore.driver !== null) {
      steps.push(write(address, 'bind', files.driver(restore.driver, 'bind'), address));
    }
    steps.push({ kind: 'verify-driver', address, expected: restore.driver });
  }
  return steps;
}

/** Who blocks a device (for group and bus-reset checks): a domain other than `owner`, or a host driver. */
export function blockerOf(
  device: PciDevice,
  index: TableIndex,
  owner: Owner | null,
  together: ReadonlySet<string>,
): Blocker | null {
  if (together.has(device.address)) return null;
  const active = index.active(device.address);
  if (active) return owner !== null && sameOwner(active.usedBy, owner) ? null : { kind: 'domain', owner: active.usedBy };
  if (device.driver !== null && !isStubDriver(device.driver)) return { kind: 'host', driver: device.driver };
  return null;
}

/**
 * The reset the kernel will do for `device` (its first reset_method), or null when it has none.
 * A bus-level reset also resets the other functions on the bus: refused when one is in use
 * outside `together` (the devices of the same request) and not owned by `owner`.
 */
export function resetChoice(
  device: PciDevice,
  view: HostView,
  index: TableIndex,
  owner: Owner | null,
  together: ReadonlySet<string>,
): ResetChoice | null {
  const method = device.resetMethods[0];
  if (method === undefined) return null;
  if (method === 'bus') {
    for (const sibling of view.busSiblings.get(device.address) ?? []) {
      if (sibling === device.address) continue;
      const other = view.devices.get(sibling);
      if (!other) continue;
      const blocker = blockerOf(other, index, owner, together);
      if (blocker) throw resetUnsafe(device.address, sibling, blocker);
    }
  }
  return { address: device.address, method };
}

export function resetSteps(files: KernelFiles, choice: ResetChoice): Step[] {
  return [write(choice.address, 'reset', files.device(choice.address, 'reset'), '1')];
}

/** Says why a device goes to a driver other than vfio-pci that nobody asked for. */
export function variantNote(address: PciAddress, stubDriver: string): string[] {
  if (stubDriver === DEFAULT_STUB_DRIVER) return [];
  return [`${address} goes to ${stubDriver}, the vfio-pci variant driver modules.alias names for it (--driver vfio-pci to override)`];
}
