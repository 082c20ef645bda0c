import path from 'node:path';
import { HostdevError } from '../core/errors.js';
import { isSimulatedTree } from '../sim/host-model.js';
import { FsKernelPort, type KernelPort } from '../sysfs/kernel-port.js';
import type { GlobalOptions } from './context.js';

/** Refuses a root that is not a simulated tree (never the real "/"). */
export function requireSimulatedRoot(root: string, what: string): void {
  if (path.resolve(root) === '/' || !isSimulatedTree(root)) {
    throw new HostdevError('HOSTDEV_USAGE', `${what} needs a simulated tree under --root, and ${root} is not one`, {
      hint: 'Create one with `hostdev sim create DIR` (or `hostdev sim snapshot DIR` to copy this host), then pass --root DIR.',
      details: { path: root },
    });
  }
}

/**
 * The kernel port for a command: the simulated kernel with --simulate (on a simulated tree only),
 * else plain file writes under --root. The simulator (and zod, which it uses) is loaded only then:
 * on a real host every command starts faster without it.
 */
export async function kernelPortFor(globals: GlobalOptions): Promise<KernelPort> {
  if (globals.simulate) {
    requireSimulatedRoot(globals.root, '--simulate');
    const { SimKernel } = await import('../sim/kernel.js');
    return new SimKernel(globals.root);
  }
  return new FsKernelPort(globals.root);
}
