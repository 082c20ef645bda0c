import type { PciAddress } from './address.js';
import { isHostdevError } from './errors.js';
import { loadModuleStep, reattachSteps, resetChoice, resetSteps, restorePointOf } from './plan-device.js';
import type { Fallback, HostView, Plan, ResetChoice, StepGroup } from './plan-types.js';
import { formatOwner, removeChange, sameOwner, TableIndex, toInactive, type Owner, type TableChange } from './tables.js';

export interface ReleaseRequest {
  readonly owner: Owner;
  /** The devices to release; all of the domain's when absent. */
  readonly addresses?: readonly PciAddress[] | undefined;
}

/**
 * releaseDomain: only the (driver, domain)'s devices; each moves to inactive, is reset, and managed
 * ones go back to their original driver. A failure on one device never stops the others (the
 * executor carries on; a device whose reattach failed stays inactive).
 *
 * Then the founding fix: every device of the request that no longer exists on the host is removed
 * from BOTH tables, unconditionally, in the same commit, and reported as pruned. libvirt
 * (virHostdevReAttachPCIDevices) once left such devices in its lists, and the address could never
 * be assigned again until the daemon restarted.
 */
export function planRelease(view: HostView, request: ReleaseRequest): Plan {
  const index = new TableIndex(view.tables);
  const requested = request.addresses ?? index.ownedBy(request.owner).map((entry) => entry.address);
  const addresses = [...new Set(requested)];
  const releasing = new Set<PciAddress>();
  const notes: string[] = [];
  const pruned: PciAddress[] = [];

  for (const address of addresses) {
    const device = view.devices.get(address) ?? null;
    const found = index.find(address);
    if (device === null) {
      if (found) pruned.push(address);
      else notes.push(`${address} is neither on this host nor in the tables; nothing to do`);
      continue;
    }
    if (found?.table !== 'active') {
      notes.push(`${address} is not assigned to any domain; skipped`);
    } else if (!sameOwner(found.entry.usedBy, request.owner)) {
      notes.push(`${address} is used by ${formatOwner(found.entry.usedBy)}, not by this domain; skipped`);
    } else {
      releasing.add(address);
    }
  }

  const resets: ResetChoice[] = [];
  const resetGroups: StepGroup[] = [];
  const reattachGroups: StepGroup[] = [];
  const changes: TableChange[] = [];
  const fallbacks: Fallback[] = [];
  const loaded = new Set<string>();
  for (const address of releasing) {
    const device = view.devices.get(address)!;
    const entry = index.active(address)!;
    try {
      const choice = resetChoice(device, view, index, request.owner, releasing);
      if (choice === null) notes.push(`${address} has no reset method; not reset`);
      else {
        resets.push(choice);
        resetGroups.push({ address, phase: 'reset', restore: restorePointOf(device), steps: resetSteps(view.files, choice) });
      }
    } catch (error) {
      // An unsafe bus reset is skipped for this device only: the release itself must go on.
      if (!isHostdevError(error)) throw error;
      notes.push(`${address} not reset: ${error.message}`);
    }
    const inactive = toInactive(entry);
    if (!entry.managed) {
      changes.push({ kind: 'set-inactive', entry: inactive });
      continue;
    }
    const steps = reattachSteps(view.files, device, inactive);
    const probes = steps.some((step) => step.kind === 'write' && step.action === 'probe');
    const loads = probes && entry.originalDriver !== null ? loadModuleStep(entry.originalDriver, view, loaded) : [];
    if (steps.length > 0) {
      reattachGroups.push({ address, phase: 'reattach', restore: restorePointOf(device), steps: [...loads, ...steps] });
      fallbacks.push({ address, phase: 'reattach', change: { kind: 'set-inactive', entry: inactive } });
    }
    changes.push(removeChange(address));
  }
  for (const address of pruned) changes.push(removeChange(address));

  return {
    operation: 'release',
    onFailure: 'continue',
    fallbacks,
    groups: [...resetGroups, ...reattachGroups],
    changes,
    pruned,
    resets,
    notes,
  };
}
