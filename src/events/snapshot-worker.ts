/**
 * Child process that reads the state of every PCI function for the watcher. sysfs reads can block in D state
 * (a VF whose removal waits for a VM, see the QEMU rig's "Outcome 2"), and a blocked read takes
 * a libuv thread with it: here it only takes this process, which the parent abandons on timeout.
 *
 * Protocol (IPC): parent sends {id}; child answers {id, devices} or {id, error}. File descriptor 4
 * is the progress file (src/sysfs/read-progress.ts): each path is noted there before it is read.
 */
import { SysfsLayout } from '../sysfs/paths.js';
import { readDeviceStates } from '../sysfs/device-states.js';
import { ProgressNotes } from '../sysfs/read-progress.js';
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
  const progress = new ProgressNotes(4);
  process.on('message', (message: SnapshotRequest) => {
    let reply: SnapshotReply;
    try {
      reply = { id: message.id, devices: readDeviceStates(layout, (file) => progress.note(file)) };
    } catch (error) {
      reply = { id: message.id, error: String((error as Error)?.message ?? error) };
    }
    progress.clear();
    process.send!(reply);
  });
  // The parent went away: nothing left to answer.
  process.on('disconnect', () => process.exit(0));
  // A terminal's Ctrl-C reaches the whole process group: the watch stops this child itself (by
  // disconnecting) once a read in progress is answered, so the signal must not end it first.
  process.on('SIGINT', () => undefined);
}
