import type { NetPort } from '../net/net-port.js';
import { Iproute2NetPort } from '../net/iproute2.js';
import { SimNetPort } from '../net/sim-net.js';
import type { SysfsLayout } from '../sysfs/paths.js';
import { HostReader } from './host-reader.js';

/**
 * The NetPort for a host: iproute2 for the real root "/", the emulation for any other root (a
 * simulated tree must never reach the real NICs, even when its names match them). The
 * emulation learns each PF interface's VF count from sysfs, and a generation from its virtfn0
 * link (recreated by every N -> 0 -> M), so VF config starts from defaults as on real NICs.
 */
export function netPortFor(layout: SysfsLayout): NetPort {
  if (layout.root === '/') return new Iproute2NetPort();
  // Links and directory listings only: a PF whose sriov_numvfs the kernel holds (a VF removal
  // waiting for its VM) must not block a lookup; the VFs it has are its virtfnN links.
  const reader = new HostReader(layout);
  return new SimNetPort(layout.root, async (ifname) => {
    const functions = await reader.allFunctions();
    const named = await Promise.all(functions.map(async (address) => (await reader.netdevsOf(address)).includes(ifname)));
    for (const address of functions.filter((_, index) => named[index])) {
      if (!(await reader.isPf(address))) continue;
      return { numVfs: (await reader.virtfnLinks(address)).length, generation: await reader.vfGeneration(address) };
    }
    return null;
  });
}
