/**
 * The load on the daemon: `--clients` (64) clients send `--requests` (20,000) requests in all
 * to one `hostdev daemon` on a simulated host with `--vfs` (1,024) VFs, mixing reads (one VF, status)
 * with assigns and releases. Prints p50/p99 per kind, requests/s, answers and errors by code, and
 * checks the tables against sysfs at the end. The daemon runs its changes one at a time, so an
 * assign waits for the ones queued before it.
 *
 * `npm run bench -- daemon-load [--clients N] [--requests N] [--vfs N]`; figures only.
 */
import { checkTables, closeRequests, mixedLoad, numberArg, printLoad, usage, withHost } from './daemon-support.js';
import { vfHost } from './vf-host.js';

const clients = numberArg('clients', 64);
const requests = numberArg('requests', 20_000);
const { spec, vfs } = vfHost(numberArg('vfs', 1_024));

await withHost(spec, async (daemon) => {
  const before = usage(daemon.child.pid!);
  printLoad(await mixedLoad(daemon, vfs, { clients, requests }), clients, vfs.length);
  await checkTables(daemon);
  const after = usage(daemon.child.pid!);
  console.log(`  daemon RSS ${before.rssMb.toFixed(0)} -> ${after.rssMb.toFixed(0)} MB, open fds ${before.fds} -> ${after.fds}`);
});
closeRequests();
