/**
 * Detached process started with a held-files hold (held-files.ts guard()): restores the tree's
 * regular files if the holding process dies before its hold ends. Arguments: ROOT ID PID.
 */
import fs from 'node:fs';
import { blockedFile } from './faults.js';
import { guardHold } from './held-files.js';

const [root, id, pid] = process.argv.slice(2);
// The dead holder's "blocked" marker goes with its hold: nothing waits any more.
if (root !== undefined && id !== undefined && pid !== undefined && (await guardHold(root, id, Number(pid)))) {
  fs.rmSync(blockedFile(root, id), { force: true });
}
