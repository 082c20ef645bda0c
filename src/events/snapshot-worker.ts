/**
 * Child process that reads the PCI inventory for the watcher. sysfs reads can block in D state
 * (a VF whose removal waits for a VM, see the QEMU rig's "Outcome 2"), and a blocked read takes
 * a libuv thread with it: here it only takes this process, which the parent abandons on timeout.
 *
 * Protocol (IPC): parent sends {id}; child answers {id, devices} or {id, error}.
 */
import type { SnapshotInput } from '../core/events.js';
import { SysfsLayout } from '../sysfs/paths.js';
import { readInventory, readVirtfnLinks } from '../sysfs/reader.js';

export interface SnapshotRequest {
  readonly id: number;
}
export type SnapshotReply =
  | { readonly id: number; readonly devices: readonly SnapshotInput[] }
  | { readonly id: number; readonly error: string };

function readSnapshot(layout: SysfsLayout): SnapshotInput[] {
  const inventory = readInventory(layout, { names: null });
  return inventory.devices.map(({ address, driver, physfn, virtfns, sriov }) => ({
    address,
    driver,
    physfn,
    virtfns,
    sriov,
    // The VF indexes as N of the links (PFs are few: one more listing each).
    ...(sriov !== null ? { virtfnLinks: readVirtfnLinks(layout, address) } : {}),
  }));
}

const root = process.argv[2];
if (root !== undefined && typeof process.send === 'function') {
  const layout = new SysfsLayout(root);
  process.on('message', (message: SnapshotRequest) => {
    let reply: SnapshotReply;
    try {
      reply = { id: message.id, devices: readSnapshot(layout) };
    } catch (error) {
      reply = { id: message.id, error: String((error as Error)?.message ?? error) };
    }
    process.send!(reply);
  });
  // The parent went away: nothing left to answer.
  process.on('disconnect', () => process.exit(0));
}
