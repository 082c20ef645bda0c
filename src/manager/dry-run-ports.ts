import { HostdevError } from '../core/errors.js';
import type { NetPort } from '../net/net-port.js';
import type { KernelPort } from '../sysfs/kernel-port.js';

/**
 * The ports a dry run gets: every change of the host is refused, so a code path that would
 * write during a dry run fails loudly instead of changing the machine. Reads go through.
 */
function refused(what: string): HostdevError {
  return new HostdevError('HOSTDEV_INTERNAL', `a dry run tried to change the host: ${what}`, {
    hint: 'This is a bug in hostdev; nothing was changed. Report it with the command that was run.',
    details: { attempted: what },
  });
}

export const DRY_RUN_KERNEL: KernelPort = {
  write: (hostPath, value) => Promise.reject(refused(`write ${JSON.stringify(value)} to ${hostPath}`)),
  loadModule: (name) => Promise.reject(refused(`load module ${name}`)),
};

export function dryRunNet(net: NetPort): NetPort {
  return {
    show: (ifname) => net.show(ifname),
    setVf: (ifname, vf) => Promise.reject(refused(`ip link set dev ${ifname} vf ${vf}`)),
  };
}
