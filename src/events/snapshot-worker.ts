/**
 * Child process that reads the state of every PCI function for the watcher. sysfs reads can block in D state
 * (a VF whose removal waits for a VM, see the QEMU rig's "Outcome 2"), and a blocked read takes
 * a libuv thread with it: here it only takes this process, which the parent abandons on timeout.
 *
 * Protocol (IPC): parent sends {id}; child answers {id, devices} or {id, error}.
 */
import { SysfsLayout } from '../sysfs/paths.js';
import { readDeviceStates } from '../sysfs/device-states.js';
import type { SnapshotInput } from '../core/events.js';

interface SnapshotRequest {
  readonly id: number;
}
export type SnapshotReply =
  | { readonly id: number; readonly devices: readonly SnapshotInput[] }
  | { readonly id: number; readonly error: string };

const root = process.argv[2];
if (root !== undefined && typeof process.send === 'function') {
  const layout = new SysfsLayout(root);
  process.on('message', (message: SnapshotRequest) => {
    let reply: SnapshotReply;
    try {
      reply = { id: message.id, devices: readDeviceStates(layout) };
    } catch (error) {
      reply = { id: message.id, error: String((error as Error)?.message ?? error) };
    }
    process.send!(reply);
  });
  // The parent went away: nothing left to answer.
  process.on('disconnect', () => process.exit(0));
}
