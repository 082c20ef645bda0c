// The simulator's library entry (`hostdev/sim`): a simulated host to rehearse on and test against.
// Re-exports and one helper; the package root never loads any of it.
import path from 'node:path';
import { HostdevError } from './core/errors.js';
import { SIMULATED_STATE_DIR } from './core/host-identity.js';
import { SimHostUsage } from './host/sim-host-usage.js';
import { buildHost } from './sim/builder.js';
import { isSimulatedTree } from './sim/host-model.js';
import { SimKernel, type SimKernelOptions } from './sim/kernel.js';
import { DEFAULT_PRESET, presets } from './sim/presets.js';
import type { HostSpec } from './sim/spec.js';

export { SimKernel, type SimKernelOptions, type WriteRecord } from './sim/kernel.js';
export { SimHostUsage } from './host/sim-host-usage.js';
export { DEFAULT_PRESET, generateSpec, presets } from './sim/presets.js';
export { parseHostSpec, type HostSpec } from './sim/spec.js';
export type { Fault } from './sim/faults.js';
export { swapCard, type SwappedCard } from './sim/swap.js';
export { rebootSimulatedHost, type RebootSummary } from './sim/reboot.js';

/** Writes a simulated host under `dir` (a new or empty directory) from a preset or a spec. */
export function createSimulatedHost(dir: string, from: { preset?: string; spec?: HostSpec } = {}): void {
  const spec = from.spec ?? presets[from.preset ?? DEFAULT_PRESET];
  if (spec === undefined) {
    throw new HostdevError('HOSTDEV_USAGE', `unknown preset "${from.preset ?? ''}"`, {
      hint: `Presets: ${Object.keys(presets).join(', ')}.`,
    });
  }
  buildHost(dir, spec);
}

/**
 * The service options that put a simulated tree in place of this host: its root, the simulated
 * kernel for every write, the host use its spec records, and its own state directory
 * (ROOT/.hostdev-sim/state, as `--simulate` uses; give `stateDir` after the spread to choose another).
 * Pass them to HostdevService.open.
 */
export function simulatedHost(
  root: string,
  options: SimKernelOptions = {},
): { readonly root: string; readonly stateDir: string; readonly kernel: SimKernel; readonly hostUsage: SimHostUsage } {
  if (!isSimulatedTree(root)) {
    throw new HostdevError('HOSTDEV_USAGE', `${root} is not a simulated tree`, {
      hint: 'Create one with createSimulatedHost(dir) or `hostdev sim create DIR`.',
      details: { path: root },
    });
  }
  return { root, stateDir: path.join(root, SIMULATED_STATE_DIR), kernel: new SimKernel(root, options), hostUsage: new SimHostUsage(root) };
}
