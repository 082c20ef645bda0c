import type { PciAddress } from './address.js';
import type { PciDevice } from './device.js';
import type { DeviceKey } from './device-key.js';
import type { KernelFiles } from './kernel-files.js';
import { detachSteps, reattachSteps } from './plan-device.js';
import type { Step } from './plan-types.js';
import { removeChange, toInactive, type Located, type Owner, type TableChange } from './tables.js';

/**
 * Which boot of the host a table entry was made in: Linux's random boot id, new at every boot.
 * Under --root it is read from the same path below the root (the simulator keeps one there).
 */
export const BOOT_ID_FILE = 'proc/sys/kernel/random/boot_id';

/**
 * What an inactive entry of an earlier boot becomes: `reapply` puts the device back on its stub
 * (driverctl's saved overrides, re-applied at every boot); `reattach` gives it to the host for good
 * (libvirt's nodedev-detach, which a reboot undoes) and drops the entry.
 */
export type DetachedAfterReboot = 'reapply' | 'reattach';
export const DETACHED_AFTER_REBOOT: readonly DetachedAfterReboot[] = ['reapply', 'reattach'];

/** Whether an entry was made in an earlier boot. One without a boot id (written before hostdev knew boots) is this boot's. */
export function fromEarlierBoot(entry: { readonly bootId?: string | null }, bootId: string | null): boolean {
  return bootId !== null && entry.bootId !== undefined && entry.bootId !== null && entry.bootId !== bootId;
}

/** What the reconcile after a reboot does to one entry of an earlier boot. */
export interface RebootAction {
  readonly key: DeviceKey;
  readonly address: PciAddress;
  /** Where the entry was, and who held it before the reboot (null: detached, no owner). */
  readonly formerTable: 'active' | 'inactive';
  readonly formerOwner: Owner | null;
  /** released: an active entry let go (managed: back to its original driver, out of the tables; unmanaged: inactive);
   * reapplied: inactive, put back on its stub; reattached: inactive, given back to the host;
   * not-reapplied: inactive, but another card than the entry's is at the address now: left on its driver. */
  readonly action: 'released' | 'reapplied' | 'reattached' | 'not-reapplied';
  /** The driver the device should be on afterwards, and the table the entry ends in. */
  readonly driver: string | null;
  readonly table: 'inactive' | null;
  readonly steps: readonly Step[];
  readonly change: TableChange;
}

/**
 * The reconcile after a reboot, for entries of an earlier boot whose device is present (vanished ones are pruned
 * by the one vanished-device rule first). No VM survives a reboot: an active entry is released as a release would
 * (a managed device back to its original driver and out of the tables; an unmanaged one stays detached: inactive).
 * An inactive entry (unmanaged ones released just now included) stays inactive and is put back on its stub,
 * unless `mode` is `reattach`. A device at an address in `changed` (another card than the entry was made
 * for) is never put on a stub: its entry stays inactive, the device on its driver.
 */
export function planAfterReboot(
  files: KernelFiles,
  stale: readonly Located[],
  devices: ReadonlyMap<PciAddress, PciDevice>,
  mode: DetachedAfterReboot,
  changed: ReadonlySet<PciAddress> = new Set(),
): RebootAction[] {
  const actions: RebootAction[] = [];
  for (const place of stale) {
    const entry = place.entry;
    const device = devices.get(entry.address);
    if (device === undefined) continue;
    const inactive = toInactive(entry);
    const base = {
      key: entry.key,
      address: entry.address,
      formerTable: place.table,
      formerOwner: place.table === 'active' ? place.entry.usedBy : null,
    };
    const giveBack = mode === 'reattach' || (place.table === 'active' && entry.managed);
    if (giveBack) {
      const stays = inactive.originalDriver !== null && inactive.originalDriver === inactive.stubDriver;
      actions.push({
        ...base,
        action: place.table === 'active' ? 'released' : 'reattached',
        driver: inactive.originalDriver,
        table: null,
        steps: stays ? [] : reattachSteps(files, device, inactive),
        change: removeChange(entry.address),
      });
      continue;
    }
    if (changed.has(entry.address)) {
      actions.push({
        ...base,
        action: place.table === 'active' ? 'released' : 'not-reapplied',
        driver: device.driver,
        table: 'inactive',
        steps: [],
        change: { kind: 'set-inactive', entry: inactive },
      });
      continue;
    }
    actions.push({
      ...base,
      action: place.table === 'active' ? 'released' : 'reapplied',
      driver: inactive.stubDriver,
      table: 'inactive',
      steps: detachSteps(files, device, inactive.stubDriver),
      change: { kind: 'set-inactive', entry: inactive },
    });
  }
  return actions;
}
