import { constants } from 'node:fs';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type * as Zod from 'zod';
import { HostdevError } from '../core/errors.js';
import { lazyPackage } from '../platform/lazy-package.js';
import { OutsideRootError, resolveInside } from '../platform/contain.js';
import type { VfNetConfig, VfNetInfo, VfSetting } from '../core/vf-net-config.js';
import type { NetPort } from './net-port.js';
import { NO_MAC, checkIfname, type PfLinkInfo } from './vf-net-config.js';

/**
 * iproute2 emulated per PF for the simulated host: state in ROOT/.hostdev-sim/net.json, so
 * several processes (a test and the CLI it spawns) see the same VF config. Like a real PF
 * driver, the VFs' config starts from defaults whenever the VF count changes.
 */
interface SimLink {
  up: boolean;
  /** The VF count and generation the stored config belongs to. */
  numVfs: number;
  generation: string | null;
  vfs: Record<string, VfNetConfig>;
}

interface SimNetState {
  links: Record<string, SimLink>;
}

/**
 * Tells the emulation how many VFs a PF interface has now (null: no such interface), and an
 * opaque generation that changes whenever the VFs were created anew (2 -> 0 -> 2 keeps the
 * count but not the VFs); null when unknown.
 */
type VfCountLookup = (ifname: string) => Promise<{ numVfs: number; generation: string | null } | null>;

const DEFAULT_VF_CONFIG: VfNetConfig = {
  mac: NO_MAC,
  vlan: 0,
  qos: 0,
  spoofchk: true,
  trust: false,
  linkState: 'auto',
};

function simNetFile(root: string): string {
  return path.join(root, '.hostdev-sim', 'net.json');
}

function ipError(message: string, ifname: string, errno: string): HostdevError {
  return new HostdevError('HOSTDEV_NET_CONFIG', `ip (simulated) on ${ifname}: ${message}`, {
    hint: "The simulated host has no such interface or VF: `hostdev vf list PF` shows the PF's netdev and its VFs.",
    details: { ifname, errno },
  });
}

/**
 * Crash faults of the simulated iproute2, for crash tests of VF network config: the process dies
 * (SIGKILL) at its Nth `ip link set` (`when: 'before'`: instead of it, which is then not applied).
 * From $HOSTDEV_SIM_NET_FAULTS, a JSON array like $HOSTDEV_SIM_FAULTS of the simulated kernel.
 */
export const NET_FAULTS_ENV = 'HOSTDEV_SIM_NET_FAULTS';

interface NetFault {
  readonly action: 'crash';
  readonly afterSets: number;
  readonly when?: 'before' | 'after' | undefined;
}

/** zod loads only when there is a fault list to parse: most simulated runs set none. */
const zod = lazyPackage<typeof Zod>('zod');

function netFaultsFromEnv(env: NodeJS.ProcessEnv = process.env): NetFault[] {
  const raw = env[NET_FAULTS_ENV];
  if (raw === undefined || raw.trim() === '') return [];
  const { z } = zod();
  const schema = z.array(z.strictObject({ action: z.literal('crash'), afterSets: z.number().int().min(1), when: z.enum(['before', 'after']).optional() }));
  return schema.parse(JSON.parse(raw));
}

/** `ip link set` calls made by this process (the crash faults count them). */
let setsMade = 0;

function crashAt(when: 'before' | 'after', sets: number): void {
  const fault = netFaultsFromEnv().find((entry) => entry.afterSets === sets && (entry.when ?? 'after') === when);
  if (fault !== undefined) process.kill(process.pid, 'SIGKILL');
}

export class SimNetPort implements NetPort {
  private readonly file: string;

  constructor(
    private readonly root: string,
    private readonly vfCount: VfCountLookup,
  ) {
    this.file = simNetFile(root);
  }

  private async load(): Promise<SimNetState> {
    try {
      const parsed = JSON.parse(await readFile(this.file, 'utf8')) as Partial<SimNetState>;
      return { links: parsed.links ?? {} };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { links: {} };
      throw error;
    }
  }

  /** Written inside the root only: a link on the way that leads out of it is refused, not followed. */
  private async save(state: SimNetState): Promise<void> {
    let dir: string;
    try {
      dir = resolveInside(this.root, path.dirname(this.file));
    } catch (error) {
      if (!(error instanceof OutsideRootError)) throw error;
      throw new HostdevError('HOSTDEV_NET_CONFIG', `the simulated host's network state: ${error.message}`, {
        hint: `Remove the link ${error.link} from the simulated tree; hostdev changes nothing outside --root.`,
        details: { path: error.link, target: error.target },
      });
    }
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, path.basename(this.file));
    const temp = `${file}.${process.pid}.tmp`;
    const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644);
    try {
      await handle.writeFile(`${JSON.stringify(state, null, 2)}\n`);
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  }

  private async link(state: SimNetState, ifname: string): Promise<SimLink> {
    checkIfname(ifname);
    const now = await this.vfCount(ifname);
    if (now === null) throw ipError(`Device "${ifname}" does not exist.`, ifname, 'ENODEV');
    const existing = state.links[ifname];
    if (existing !== undefined && existing.numVfs === now.numVfs && existing.generation === now.generation) return existing;
    const fresh: SimLink = { up: existing?.up ?? true, numVfs: now.numVfs, generation: now.generation, vfs: {} };
    state.links[ifname] = fresh;
    return fresh;
  }

  async show(ifname: string): Promise<PfLinkInfo> {
    const state = await this.load();
    const link = await this.link(state, ifname);
    const vfs: VfNetInfo[] = [];
    for (let vf = 0; vf < link.numVfs; vf++) vfs.push({ vf, ...(link.vfs[String(vf)] ?? DEFAULT_VF_CONFIG) });
    return { ifname, up: link.up, vfs };
  }

  async setVf(ifname: string, vf: number, setting: VfSetting): Promise<void> {
    setsMade += 1;
    crashAt('before', setsMade);
    const state = await this.load();
    const link = await this.link(state, ifname);
    if (!Number.isInteger(vf) || vf < 0 || vf >= link.numVfs) throw ipError('RTNETLINK answers: Invalid argument', ifname, 'EINVAL');
    const current = link.vfs[String(vf)] ?? DEFAULT_VF_CONFIG;
    link.vfs[String(vf)] = apply(current, setting);
    await this.save(state);
    crashAt('after', setsMade);
  }

  /** `ip link set dev PF up|down` (for tests and the simulator CLI). */
  async setUp(ifname: string, up: boolean): Promise<void> {
    const state = await this.load();
    const link = await this.link(state, ifname);
    link.up = up;
    await this.save(state);
  }
}

function apply(config: VfNetConfig, setting: VfSetting): VfNetConfig {
  switch (setting.kind) {
    case 'vlan':
      return { ...config, vlan: setting.vlan, qos: setting.qos };
    case 'trust':
      return { ...config, trust: setting.on };
    case 'mac':
      return { ...config, mac: setting.mac };
    case 'spoofchk':
      return { ...config, spoofchk: setting.on };
  }
}
