import type { HostUsagePort } from '../host/host-usage-port.js';
import type { GlobalOptions } from './context.js';

/** How the host uses its devices: what a simulated tree's spec says with --simulate, else /proc and `ip` under the root. */
export async function hostUsageFor(globals: GlobalOptions): Promise<HostUsagePort> {
  if (globals.simulate) return new (await import('../host/sim-host-usage.js')).SimHostUsage(globals.root);
  return new (await import('../host/proc-host-usage.js')).ProcHostUsage(globals.root);
}
