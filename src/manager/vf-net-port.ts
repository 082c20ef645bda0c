import type { NetPort } from '../net/net-port.js';
import { Iproute2NetPort } from '../net/iproute2.js';
import { SimNetPort } from '../net/sim-net.js';
import type { SysfsLayout } from '../sysfs/paths.js';
import { readVfGeneration } from '../sysfs/read-device.js';
import { readInventory } from '../sysfs/reader.js';

/**
 * The NetPort for a host: iproute2 for the real root "/", the emulation for any other root (a
 * simulated tree must never reach the real NICs, even when its names match them). The
 * emulation learns each PF interface's VF count from sysfs, and a generation from its virtfn0
 * link (recreated by every N -> 0 -> M), so VF config starts from defaults as on real NICs.
 */
export function netPortFor(layout: SysfsLayout): NetPort {
  if (layout.root === '/') return new Iproute2NetPort();
  return new SimNetPort(layout.root, async (ifname) => {
    const pf = readInventory(layout, { names: null }).devices.find(
      (device) => device.sriov !== null && device.netdevs.includes(ifname),
    );
    if (pf === undefined || pf.sriov === null) return null;
    return { numVfs: pf.sriov.numVfs, generation: readVfGeneration(layout, pf.address) };
  });
}
