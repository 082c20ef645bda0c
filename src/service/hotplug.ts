import type { PciAddress } from '../core/address.js';
import { HostdevError, isHostdevError } from '../core/errors.js';
import type { DeviceKey } from '../core/device-key.js';
import { deviceAddArguments, type GuestPlacement, type Placement } from '../core/hotplug.js';
import { hostdevDeviceId } from '../core/qemu-args.js';
import type { QmpPort } from '../qmp/qmp-client.js';

/** What a VM did with a `device_del` of each device. */
interface UnplugOutcome<T = PciAddress> {
  /** QEMU announced DEVICE_DELETED: the VM let the device go. */
  readonly gone: readonly T[];
  /** The VM had no device by that id (never plugged, or already gone). */
  readonly absent: readonly T[];
  /** Still in the VM when the wait ended. */
  readonly held: readonly T[];
}

/**
 * Asks the VM to give the devices back (`device_del`, by the ids `qemu-args` and `hotplug` give) and
 * waits, within `timeoutMs` in all, for QEMU's DEVICE_DELETED of each. Events are counted from
 * before the first request, so one that comes at once is not missed.
 */
export function unplugFromVm(qmp: QmpPort, addresses: readonly PciAddress[], timeoutMs: number): Promise<UnplugOutcome> {
  return unplugIds(qmp, addresses.map((address) => ({ ref: address, id: hostdevDeviceId(address) })), timeoutMs);
}

async function unplugIds<T>(qmp: QmpPort, devices: readonly { readonly ref: T; readonly id: string }[], timeoutMs: number): Promise<UnplugOutcome<T>> {
  const since = qmp.eventMark();
  const asked: { readonly ref: T; readonly id: string }[] = [];
  const absent: T[] = [];
  for (const device of devices) {
    try {
      await qmp.execute('device_del', { id: device.id });
      asked.push(device);
    } catch (error) {
      if (isHostdevError(error) && error.details['qmpClass'] === 'DeviceNotFound') absent.push(device.ref);
      else throw error;
    }
  }
  const deadline = Date.now() + timeoutMs;
  const gone: T[] = [];
  const held: T[] = [];
  for (const { ref, id } of asked) {
    const event = await qmp.waitForEvent((e) => e.event === 'DEVICE_DELETED' && e.data['device'] === id, {
      since,
      timeoutMs: Math.max(0, deadline - Date.now()),
    });
    (event === null ? held : gone).push(ref);
  }
  return { gone, absent, held };
}

/** A device of another kind in the VM: its id and the block node behind it (NVMe, SCSI), if any. */
export interface GuestUnplug<T extends string = DeviceKey> {
  readonly key: T;
  readonly id: string;
  readonly node: string | null;
}

/** Deletes the block nodes; one QEMU no longer has is passed over. What could not be deleted, one line each. */
async function deleteNodes(qmp: QmpPort, nodes: readonly string[]): Promise<string[]> {
  const left: string[] = [];
  for (const node of nodes) {
    try {
      await qmp.execute('blockdev-del', { 'node-name': node });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (!/Failed to find node/.test(message)) left.push(`${node}: ${message}`);
    }
  }
  return left;
}

/**
 * Devices of other kinds out of the VM: `device_del` and DEVICE_DELETED as for PCI functions, then
 * `blockdev-del` of the block node of each device the VM let go of (or did not have), in that order,
 * as libvirt detaches a disk. A device still held keeps its node.
 */
export async function unplugGuestDevices<T extends string>(
  qmp: QmpPort,
  devices: readonly GuestUnplug<T>[],
  timeoutMs: number,
): Promise<UnplugOutcome<T> & { readonly nodesLeft: readonly string[] }> {
  const outcome = await unplugIds(qmp, devices.map((device) => ({ ref: device.key, id: device.id })), timeoutMs);
  const out = new Set<T>([...outcome.gone, ...outcome.absent]);
  const nodesLeft = await deleteNodes(qmp, devices.flatMap((device) => (out.has(device.key) && device.node !== null ? [device.node] : [])));
  return { ...outcome, nodesLeft };
}

/**
 * `blockdev-add` (NVMe, SCSI) then `device_add` of each placed device in order. When QEMU refuses
 * one, the devices plugged before it are unplugged again (within `rollbackWaitMs`), the block nodes
 * added are deleted, and `giveBack` gets every device the VM does not hold, so the assign is undone
 * for them; a device the VM would not give back stays assigned, and the error names it.
 */
export async function plugGuestDevices<T extends string>(
  qmp: QmpPort,
  vm: string,
  place: readonly (Pick<GuestPlacement, 'id' | 'blockdev' | 'device'> & { readonly key: T })[],
  giveBack: (keys: readonly T[]) => Promise<unknown>,
  rollbackWaitMs: number,
  /** What the error's details call the device: a PCI function's `address`, another kind's `key`. */
  detailName: 'address' | 'key' = 'key',
): Promise<void> {
  const plugged: GuestUnplug<T>[] = [];
  for (const placement of place) {
    const node = placement.blockdev === null ? null : String(placement.blockdev['node-name']);
    let added = false;
    try {
      if (placement.blockdev !== null) {
        await qmp.execute('blockdev-add', placement.blockdev);
        added = true;
      }
      await qmp.execute('device_add', placement.device);
      plugged.push({ key: placement.key, id: placement.id, node });
    } catch (error) {
      const undone = await unplugGuestDevices(qmp, plugged, rollbackWaitMs);
      const nodesLeft = [...undone.nodesLeft, ...(added && node !== null ? await deleteNodes(qmp, [node]) : [])];
      const held = new Set<T>(undone.held);
      await giveBack(place.map((p) => p.key).filter((key) => !held.has(key)));
      const reason = error instanceof Error ? error.message : String(error);
      const kept = undone.held.length > 0 ? `; ${undone.held.join(', ')} did not leave ${vm} and stay(s) assigned to it` : '';
      const nodes = nodesLeft.length > 0 ? `; block nodes left in QEMU: ${nodesLeft.join('; ')}` : '';
      throw new HostdevError('HOSTDEV_QMP', `hot-plug of ${placement.key} into ${vm} failed (${reason}); the assign was rolled back${kept}${nodes}`, {
        hint:
          undone.held.length > 0
            ? `Run hostdev unplug for ${undone.held.join(', ')} once the guest can give it back.`
            : 'QEMU must be able to open the device (a PCI function or an NVMe controller on a VFIO driver with /dev/vfio reachable from QEMU, an mdev\'s sysfs node, a SCSI generic node). Nothing is left assigned.',
        details: { [detailName]: placement.key, domain: vm, held: undone.held, nodesLeft },
        cause: error,
      });
    }
  }
}

/** `device_add` of each placed PCI function in order, as `plugGuestDevices` does for the other kinds. */
export function plugIntoVm(
  qmp: QmpPort,
  vm: string,
  place: readonly Placement[],
  giveBack: (addresses: readonly PciAddress[]) => Promise<unknown>,
  rollbackWaitMs: number,
): Promise<void> {
  return plugGuestDevices(
    qmp,
    vm,
    place.map((p) => ({ key: p.address, id: p.id, blockdev: null, device: deviceAddArguments(p) })),
    giveBack,
    rollbackWaitMs,
    'address',
  );
}
