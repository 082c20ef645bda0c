/**
 * Soak: the mixed load of daemon-load (`--clients`, 64) for `--minutes` (10) on a simulated host with
 * `--vfs` (1,024) VFs, with the daemon's RSS and open fds (/proc/PID/fd) printed before, every
 * minute during, and after the load (once it has settled for 5 s). Flat figures mean no leak.
 *
 * `npm run bench -- daemon-soak [--minutes N] [--clients N] [--vfs N]`; figures only.
 */
import { checkTables, closeRequests, mixedLoad, numberArg, printLoad, usage, withHost } from './daemon-support.js';
import { vfHost } from './vf-host.js';

const minutes = numberArg('minutes', 10);
const clients = numberArg('clients', 64);
const { spec, vfs } = vfHost(numberArg('vfs', 1_024));

const line = (when: string, figures: { rssMb: number; fds: number }): void =>
  console.log(`  ${when.padEnd(14)} RSS ${figures.rssMb.toFixed(1)} MB, open fds ${figures.fds}`);

await withHost(spec, async (daemon) => {
  const pid = daemon.child.pid!;
  console.log(`soak: ${clients} clients for ${minutes} min on ${vfs.length} VFs, daemon pid ${pid}`);
  line('before', usage(pid));
  const started = Date.now();
  const ticker = setInterval(() => line(`after ${Math.round((Date.now() - started) / 60_000)} min`, usage(pid)), 60_000);
  try {
    const figures = await mixedLoad(daemon, vfs, { clients, until: started + minutes * 60_000 });
    clearInterval(ticker);
    printLoad(figures, clients, vfs.length);
  } finally {
    clearInterval(ticker);
  }
  line('end of load', usage(pid));
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  line('settled (5 s)', usage(pid));
  await checkTables(daemon);
});
closeRequests();
