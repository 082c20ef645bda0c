import type { PciAddress } from '../core/address.js';
import { HostdevError, isHostdevError } from '../core/errors.js';
import { deviceAddArguments, type Placement } from '../core/hotplug.js';
import { hostdevDeviceId } from '../core/qemu-args.js';
import type { QmpPort } from '../qmp/qmp-client.js';

/** What a VM did with a `device_del` of each device. */
interface UnplugOutcome {
  /** QEMU announced DEVICE_DELETED: the VM let the device go. */
  readonly gone: readonly PciAddress[];
  /** The VM had no device by that id (never plugged, or already gone). */
  readonly absent: readonly PciAddress[];
  /** Still in the VM when the wait ended. */
  readonly held: readonly PciAddress[];
}

/**
 * Asks the VM to give the devices back (`device_del`, by the ids `qemu-args` and `hotplug` give) and
 * waits, within `timeoutMs` in all, for QEMU's DEVICE_DELETED of each. Events are counted from
 * before the first request, so one that comes at once is not missed.
 */
export async function unplugFromVm(qmp: QmpPort, addresses: readonly PciAddress[], timeoutMs: number): Promise<UnplugOutcome> {
  const since = qmp.eventMark();
  const asked: PciAddress[] = [];
  const absent: PciAddress[] = [];
  for (const address of addresses) {
    try {
      await qmp.execute('device_del', { id: hostdevDeviceId(address) });
      asked.push(address);
    } catch (error) {
      if (isHostdevError(error) && error.details['qmpClass'] === 'DeviceNotFound') absent.push(address);
      else throw error;
    }
  }
  const deadline = Date.now() + timeoutMs;
  const gone: PciAddress[] = [];
  const held: PciAddress[] = [];
  for (const address of asked) {
    const id = hostdevDeviceId(address);
    const event = await qmp.waitForEvent((e) => e.event === 'DEVICE_DELETED' && e.data['device'] === id, {
      since,
      timeoutMs: Math.max(0, deadline - Date.now()),
    });
    (event === null ? held : gone).push(address);
  }
  return { gone, absent, held };
}

/**
 * `device_add` of each placed device in order. When one is refused, the ones plugged before it are
 * unplugged again (within `rollbackWaitMs`) and `giveBack` gets every device the VM does not hold,
 * so the assign is undone for them; a device the VM would not give back stays assigned, and the
 * error names it.
 */
export async function plugIntoVm(
  qmp: QmpPort,
  vm: string,
  place: readonly Placement[],
  giveBack: (addresses: readonly PciAddress[]) => Promise<unknown>,
  rollbackWaitMs: number,
): Promise<void> {
  const plugged: Placement[] = [];
  for (const placement of place) {
    try {
      await qmp.execute('device_add', deviceAddArguments(placement));
      plugged.push(placement);
    } catch (error) {
      const undone = await unplugFromVm(
        qmp,
        plugged.map((p) => p.address),
        rollbackWaitMs,
      );
      const held = new Set<string>(undone.held);
      await giveBack(place.map((p) => p.address).filter((address) => !held.has(address)));
      const reason = error instanceof Error ? error.message : String(error);
      const kept = undone.held.length > 0 ? `; ${undone.held.join(', ')} did not leave ${vm} and stay(s) assigned to it` : '';
      throw new HostdevError('HOSTDEV_QMP', `hot-plug of ${placement.address} into ${vm} failed (${reason}); the assign was rolled back${kept}`, {
        hint:
          undone.held.length > 0
            ? `Run hostdev unplug for ${undone.held.join(', ')} once the guest can give it back.`
            : 'QEMU must be able to open the device: is it on a VFIO driver and is /dev/vfio reachable from QEMU? Nothing is left assigned.',
        details: { address: placement.address, domain: vm, held: undone.held },
        cause: error,
      });
    }
  }
}
