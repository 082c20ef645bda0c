import { spawnSync } from 'node:child_process';

/** One function as `lspci -Dnnk` prints it. */
export interface LspciDevice {
  readonly address: string;
  readonly class: string;
  readonly vendor: string;
  readonly device: string;
  /** Only printed when non-zero. */
  readonly revision: string | null;
  readonly progIf: string | null;
  readonly driver: string | null;
}

// 0000:00:03.0 Ethernet controller [0200]: Red Hat, Inc. Virtio network device [1af4:1041] (rev 01) (prog-if 02 [NVM Express])
const HEAD =
  /^([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) .*?\[([0-9a-f]{4})\]: .*\[([0-9a-f]{4}):([0-9a-f]{4})\](?: \(rev ([0-9a-f]{2})\))?(?: \(prog-if ([0-9a-f]{2})(?: \[.*\])?\))?$/;

/** Parses `lspci -Dnnk` output; throws on a function line it does not understand. */
export function parseLspci(output: string): LspciDevice[] {
  const devices: Array<LspciDevice & { driver: string | null }> = [];
  for (const line of output.split('\n')) {
    if (line.length === 0) continue;
    if (line.startsWith('\t')) {
      const driver = /^\tKernel driver in use: (.+)$/.exec(line);
      const last = devices[devices.length - 1];
      if (driver && last) last.driver = driver[1]!;
      continue;
    }
    const match = HEAD.exec(line);
    if (!match) throw new Error(`unexpected lspci line: ${line}`);
    devices.push({
      address: match[1]!,
      class: match[2]!,
      vendor: match[3]!,
      device: match[4]!,
      revision: match[5] ?? null,
      progIf: match[6] ?? null,
      driver: null,
    });
  }
  return devices;
}

export function hasLspci(): boolean {
  return spawnSync('lspci', ['--version'], { encoding: 'utf8' }).status === 0;
}

/** Runs lspci -Dnnk on the host, or on the simulated tree under `root`. */
export function runLspci(root?: string): LspciDevice[] {
  const args = root === undefined ? ['-Dnnk'] : ['-A', 'linux-sysfs', '-O', `sysfs.path=${root}/sys/bus/pci`, '-Dnnk'];
  const run = spawnSync('lspci', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (run.status !== 0) throw new Error(`lspci ${args.join(' ')} failed: ${run.stderr}`);
  return parseLspci(run.stdout);
}
