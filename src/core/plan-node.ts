import type { PciAddress } from './address.js';
import type { PciDevice } from './device.js';
import { isBridge } from './iommu.js';
import { hostInUse, inUse, noIommuGroup, notEndpoint, notFound, resetNotEndpoint, resetUnsupported } from './plan-errors.js';
import {
  detachSteps,
  loadModuleStep,
  probeForHostDriver,
  reattachSteps,
  resetChoice,
  resetSteps,
  restorePointOf,
  variantNote,
} from './plan-device.js';
import { stubFor, type HostView, type Phase, type Plan, type Step, type StepGroup } from './plan-types.js';
import { isVfioDriver } from './stub-driver.js';
import { pciKey } from './device-key.js';
import { removeChange, TableIndex, type InactiveEntry, type TableChange } from './tables.js';

/** Plans of the node-device commands (libvirt's nodedev-detach, nodedev-reattach, nodedev-reset). */

interface DetachRequest {
  readonly address: PciAddress;
  /** null: the one made for the device (its vfio-pci variant when modules.alias names one, else vfio-pci). */
  readonly stubDriver: string | null;
  readonly force: boolean;
  /**
   * A device found on its stub with no entry is recorded as taken from that stub (a reattach leaves
   * it there); `fromBoot` records it as taken from no driver instead, so a reattach probes for its
   * host driver: a claim put it on the stub at boot, before any host driver could bind.
   */
  readonly fromBoot?: boolean;
}

function emptyPlan(operation: Plan['operation']): Plan {
  return { operation, onFailure: 'rollback', fallbacks: [], groups: [], changes: [], pruned: [], resets: [], notes: [] };
}

function group(device: PciDevice, phase: Phase, steps: Step[]): StepGroup[] {
  return steps.length === 0 ? [] : [{ address: device.address, phase, restore: restorePointOf(device), steps }];
}

/** Vanished devices of the inactive table: nobody owns them, so nothing can release them later. */
function vanishedInactive(view: HostView): PciAddress[] {
  return view.tables.inactive
    .filter((entry) => view.devices.has(entry.address) && view.devices.get(entry.address) === null)
    .map((entry) => entry.address);
}

function pruneChanges(addresses: readonly PciAddress[]): TableChange[] {
  return addresses.map(removeChange);
}

export function existingDevice(view: HostView, address: PciAddress): PciDevice {
  const device = view.devices.get(address);
  if (!device) throw notFound(address);
  return device;
}

export function planDetach(view: HostView, request: DetachRequest): Plan {
  const index = new TableIndex(view.tables);
  const device = existingDevice(view, request.address);
  const active = index.active(device.address);
  if (active) throw inUse(device.address, active.usedBy);
  // Unbinding a bridge from pcieport cuts hotplug and AER off for everything behind it, and no stub takes one.
  if (isBridge(device)) throw notEndpoint(device, 'detached for guests');
  const known = index.inactive(device.address);
  const stubDriver = known?.stubDriver ?? stubFor(view, device.address, request.stubDriver);
  if (isVfioDriver(stubDriver) && device.iommuGroup === null) throw noIommuGroup(device, stubDriver);
  const uses = view.hostUse.get(device.address) ?? [];
  if (device.driver !== stubDriver && uses.length > 0 && !request.force) throw hostInUse(device, uses);

  const steps = detachSteps(view.files, device, stubDriver);
  const loads = steps.length > 0 ? loadModuleStep(stubDriver, view, new Set()) : [];
  const entry: InactiveEntry = known ?? {
    key: pciKey(device.address),
    address: device.address,
    managed: false,
    stubDriver,
    originalDriver: request.fromBoot === true && device.driver === stubDriver ? null : device.driver,
  };
  const notes =
    steps.length === 0
      ? [`${device.address} is already on ${stubDriver}`]
      : request.stubDriver === null && !known
        ? variantNote(device.address, stubDriver)
        : [];
  return {
    ...emptyPlan('detach'),
    groups: group(device, 'detach', [...loads, ...steps]),
    changes: [{ kind: 'set-inactive', entry }],
    notes,
  };
}

export function planReattach(view: HostView, address: PciAddress): Plan {
  const index = new TableIndex(view.tables);
  const pruned = vanishedInactive(view);
  const device = view.devices.get(address) ?? null;
  const active = index.active(address);
  if (device === null) {
    if (active) throw inUse(address, active.usedBy);
    if (!pruned.includes(address)) throw notFound(address);
    return { ...emptyPlan('reattach'), changes: pruneChanges(pruned), pruned };
  }
  if (active) throw inUse(address, active.usedBy);

  const others = pruneChanges(pruned);
  const entry = index.inactive(address);
  if (entry) {
    const steps = reattachSteps(view.files, device, entry);
    const loads =
      entry.originalDriver !== null && steps.some((step) => step.kind === 'write' && step.action === 'probe')
        ? loadModuleStep(entry.originalDriver, view, new Set())
        : [];
    const notes =
      entry.originalDriver === entry.stubDriver
        ? [`${address} was on ${entry.stubDriver} before hostdev took it; it stays there`]
        : [];
    return {
      ...emptyPlan('reattach'),
      groups: group(device, 'reattach', [...loads, ...steps]),
      changes: [...others, removeChange(address)],
      pruned,
      notes,
    };
  }
  // Not taken by hostdev. On a stub (detached by hand or by another tool) or on no driver: hand it
  // to whichever host driver claims it, as libvirt's nodedev-reattach does, and check one did.
  const steps = probeForHostDriver(view.files, device, true);
  if (steps.length === 0) {
    return {
      ...emptyPlan('reattach'),
      changes: others,
      pruned,
      notes: [`${address} is not detached (driver ${device.driver}); nothing to do`],
    };
  }
  return {
    ...emptyPlan('reattach'),
    groups: group(device, 'reattach', steps),
    changes: others,
    pruned,
    notes: [
      `${address} was not detached by hostdev (driver ${device.driver ?? 'none'}): its original driver is unknown, the kernel picks one`,
    ],
  };
}

export function planReset(view: HostView, address: PciAddress): Plan {
  const index = new TableIndex(view.tables);
  const device = existingDevice(view, address);
  const active = index.active(address);
  if (active) throw inUse(address, active.usedBy);
  if (isBridge(device)) throw resetNotEndpoint(device);
  const choice = resetChoice(device, view, index, null, new Set([address]));
  if (choice === null) throw resetUnsupported(device);
  return { ...emptyPlan('reset'), groups: group(device, 'reset', resetSteps(view.files, choice)), resets: [choice] };
}
