import type { PciAddress } from './address.js';
import type { PciDevice } from './device.js';
import {
  groupConflict,
  hostInUse,
  inUse,
  noIommuGroup,
  notEndpoint,
  unmanagedNotDetached,
} from './plan-errors.js';
import { blockerOf, detachSteps, loadModuleStep, resetChoice, resetSteps, restorePointOf, variantNote } from './plan-device.js';
import { existingDevice } from './plan-node.js';
import { stubFor, type HostView, type Plan, type ResetChoice, type StepGroup } from './plan-types.js';
import { isStubDriver, isVfioDriver } from './stub-driver.js';
import { pciKey } from './device-key.js';
import { TableIndex, type ActiveEntry, type Owner, type TableChange } from './tables.js';

export interface AssignRequest {
  readonly owner: Owner;
  readonly addresses: readonly PciAddress[];
  /** Managed devices are detached from the host here; unmanaged ones must already be on a stub. */
  readonly managed: boolean;
  /** Functions of `addresses` assigned unmanaged whatever `managed` says (libvirt's managed='no' on one hostdev of several). */
  readonly unmanaged?: readonly PciAddress[];
  /** null: each device's own (its vfio-pci variant when modules.alias names one, else vfio-pci). */
  readonly stubDriver: string | null;
  /** Take every endpoint of the devices' IOMMU groups along. */
  readonly withGroup: boolean;
  readonly force: boolean;
}

function isEndpoint(device: PciDevice): boolean {
  return device.headerType === null || device.headerType === 'endpoint';
}

function unique(addresses: readonly PciAddress[]): PciAddress[] {
  return [...new Set(addresses)];
}

/** --with-group: the request plus every endpoint of its devices' groups not already this domain's. */
function withGroups(view: HostView, index: TableIndex, request: AssignRequest): PciAddress[] {
  const all = [...request.addresses];
  for (const address of request.addresses) {
    const group = view.devices.get(address)?.iommuGroup;
    if (group === null || group === undefined) continue;
    for (const member of view.groups.get(group) ?? []) {
      const device = view.devices.get(member);
      if (!device || !isEndpoint(device)) continue;
      // This domain's already; another domain's is a conflict that phase 2 names.
      if (index.active(member)) continue;
      all.push(member);
    }
  }
  return unique(all);
}

/**
 * prepareDomain, libvirt's numbered phases, all or nothing:
 *   1. every device exists, is an endpoint, is not active (not even for this domain), is not used by the host;
 *   2. every other endpoint of its IOMMU group is unbound, on a stub, in this request or this domain's;
 *   3. managed devices are detached; unmanaged ones must already be on a stub;
 *   4. reset;
 *   5. move to active with usedBy.
 * Phases 1-2 are checks here; the executor applies 3-4 and rolls back in reverse on any failure.
 */
export function planAssign(view: HostView, request: AssignRequest): Plan {
  const index = new TableIndex(view.tables);
  const addresses = request.withGroup ? withGroups(view, index, request) : unique(request.addresses);
  const together = new Set<string>(addresses);

  // Phase 1: existence, type, ownership, host use.
  const devices = addresses.map((address) => {
    const device = existingDevice(view, address);
    const active = index.active(address);
    if (active) throw inUse(address, active.usedBy);
    if (!isEndpoint(device)) throw notEndpoint(device);
    const stub = index.inactive(address)?.stubDriver ?? stubFor(view, address, request.stubDriver);
    if (isVfioDriver(stub) && device.iommuGroup === null) throw noIommuGroup(device, stub);
    const uses = view.hostUse.get(address) ?? [];
    if (!isStubDriver(device.driver) && uses.length > 0 && !request.force) throw hostInUse(device, uses);
    return device;
  });

  // Phase 2: IOMMU group viability.
  for (const device of devices) {
    if (device.iommuGroup === null) continue;
    for (const member of view.groups.get(device.iommuGroup) ?? []) {
      if (member === device.address) continue;
      const other = view.devices.get(member);
      if (!other || !isEndpoint(other)) continue;
      const blocker = blockerOf(other, index, request.owner, together);
      if (blocker) throw groupConflict(device.address, device.iommuGroup, member, blocker);
    }
  }

  // Phase 3: detach managed devices; unmanaged ones must already be detached.
  const notes: string[] = [];
  const loaded = new Set<string>();
  const detachGroups: StepGroup[] = [];
  const entries: ActiveEntry[] = [];
  for (const device of devices) {
    const known = index.inactive(device.address);
    const managed = known ? known.managed : request.managed && !(request.unmanaged ?? []).includes(device.address);
    const stubDriver =
      known?.stubDriver ?? (isStubDriver(device.driver) && !managed ? device.driver! : stubFor(view, device.address, request.stubDriver));
    if (!managed && !known && !isStubDriver(device.driver)) throw unmanagedNotDetached(device);
    if (known && !known.managed && request.managed) {
      notes.push(
        `${device.address} was detached by hand (\`hostdev detach\`), so it is assigned unmanaged: a release leaves it on ` +
          `${known.stubDriver} in the inactive table (reattach it to give it back to the host)`,
      );
    }
    const steps = managed ? detachSteps(view.files, device, stubDriver) : [];
    if (steps.length > 0 && request.stubDriver === null && !known) notes.push(...variantNote(device.address, stubDriver));
    if (steps.length > 0) {
      detachGroups.push({
        address: device.address,
        phase: 'detach',
        restore: restorePointOf(device),
        steps: [...loadModuleStep(stubDriver, view, loaded), ...steps],
      });
    }
    entries.push({
      key: pciKey(device.address),
      address: device.address,
      usedBy: request.owner,
      managed,
      stubDriver,
      originalDriver: known ? known.originalDriver : device.driver,
    });
  }

  // Phase 4: reset (a bus reset may only touch devices of this request or of this domain).
  const resets: ResetChoice[] = [];
  const resetGroups: StepGroup[] = [];
  for (const device of devices) {
    const choice = resetChoice(device, view, index, request.owner, together);
    if (choice === null) {
      notes.push(`${device.address} has no reset method; not reset`);
      continue;
    }
    resets.push(choice);
    resetGroups.push({
      address: device.address,
      phase: 'reset',
      restore: restorePointOf(device),
      steps: resetSteps(view.files, choice),
    });
  }

  // Phase 5: active, used by the domain.
  const changes: TableChange[] = entries.map((entry) => ({ kind: 'set-active', entry }));
  return {
    operation: 'assign',
    onFailure: 'rollback',
    fallbacks: [],
    groups: [...detachGroups, ...resetGroups],
    changes,
    pruned: [],
    resets,
    notes,
  };
}
