import { execFile } from 'node:child_process';
import { HostdevError } from '../core/errors.js';
import type { VfSetting } from '../core/vf-net-config.js';
import { errnoFromText } from '../platform/errno-names.js';
import type { NetPort } from './net-port.js';
import { describeSetting, ipSetArgs, ipShowArgs, parseIpLinkShow, type PfLinkInfo } from './vf-net-config.js';

/** What running `ip` returns; injectable so tests can stand in for the binary. */
export type IpRunner = (args: readonly string[]) => Promise<{ stdout: string; stderr: string }>;

/** Runs the `ip` binary with execFile: an argument array, no shell, bounded in time. */
export function execIp(binary = 'ip', timeoutMs = 10_000): IpRunner {
  return (args) =>
    new Promise((resolve, reject) => {
      execFile(binary, [...args], { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
        if (error) reject(Object.assign(error, { stdout, stderr }));
        else resolve({ stdout, stderr });
      });
    });
}

function stderrOf(error: unknown): string {
  const stderr = (error as { stderr?: unknown } | null)?.stderr;
  const text = typeof stderr === 'string' && stderr.trim() !== '' ? stderr : String((error as Error)?.message ?? error);
  return text.trim();
}

/** The errno `ip` reported ("RTNETLINK answers: Invalid argument" is EINVAL), for `details.errno`. */
function netlinkErrno(error: unknown): { errno?: string } {
  const errno = errnoFromText(stderrOf(error));
  return errno === null ? {} : { errno };
}

export class Iproute2NetPort implements NetPort {
  constructor(private readonly run: IpRunner = execIp()) {}

  async show(ifname: string): Promise<PfLinkInfo> {
    let stdout: string;
    try {
      ({ stdout } = await this.run(ipShowArgs(ifname)));
    } catch (error) {
      throw new HostdevError('HOSTDEV_NET_CONFIG', `cannot read VF config of PF ${ifname}: ${stderrOf(error)}`, {
        hint: 'Check that the interface exists (`ip link show`) and that iproute2 is installed.',
        details: { ifname, ...netlinkErrno(error) },
        cause: error,
      });
    }
    return parseIpLinkShow(stdout, ifname);
  }

  async setVf(ifname: string, vf: number, setting: VfSetting): Promise<void> {
    try {
      await this.run(ipSetArgs(ifname, vf, setting));
    } catch (error) {
      throw new HostdevError(
        'HOSTDEV_NET_CONFIG',
        `cannot set ${describeSetting(setting)} on VF ${vf} of PF ${ifname}: ${stderrOf(error)}`,
        {
          hint: 'The PF driver refused the setting; some drivers need the PF up and the VF unbound from its host driver.',
          details: { ifname, vf, ...netlinkErrno(error) },
          cause: error,
        },
      );
    }
  }
}
