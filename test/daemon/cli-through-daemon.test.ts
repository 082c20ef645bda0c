import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createSimulatedHost } from '../../src/sim-entry.js';
import { swapCard } from '../../src/sim/swap.js';
import type { OperationRecordJson } from '../../src/daemon/schemas.js';
import { killBackgroundAfterEach } from '../support/background.js';
import { runCliAsync, type CliRun } from '../support/cli.js';
import { cleanUpAfterEach, curl, daemonHost, daemonProcess, type DaemonHost } from './daemon-host.js';

killBackgroundAfterEach();
cleanUpAfterEach();

const VF = '0000:01:10.0';
const VF2 = '0000:01:10.2';
const PF = '0000:01:00.0';

/** The CLI suite's main cases, in an order where each finds the host the one before left. */
const CASES: ReadonlyArray<readonly string[]> = [
  ['list'],
  ['list', '--json'],
  ['list', '--class', 'net', '--driver', 'igbvf'],
  ['show', VF],
  ['show', VF, '--json'],
  ['groups'],
  ['status'],
  ['status', '--json'],
  ['assign', '--domain', 'vm1', VF, '--dry-run'],
  ['assign', '--domain', 'vm1', VF, '--dry-run', '--json'],
  ['assign', '--domain', 'vm1', VF, '--vlan', '10'],
  ['assign', '--domain', 'vm1', VF],
  ['assign', '--domain', 'vm2', VF, '--json'],
  ['assign', '--domain', 'vm2', '0000:09:00.0'],
  ['assign', '--domain', 'vm/2', VF2],
  ['status'],
  ['qemu-args', '--domain', 'vm1'],
  ['qemu-args', '--domain', 'vm1', '--machine', 'pc', '--json'],
  ['qemu-args', '--domain', 'nobody'],
  ['release', '--domain', 'vm1', '--dry-run'],
  ['release', '--domain', 'vm1', '--json'],
  ['release', '--domain', 'vm1'],
  ['detach', VF2, '--dry-run'],
  ['detach', VF2],
  ['detach', VF2, '--json'],
  ['reset', VF2],
  ['reset', VF2, '--json', '--dry-run'],
  ['status', '--json'],
  ['reattach', VF2, '--dry-run'],
  ['reattach', VF2],
  ['reattach', VF2],
  ['detach', 'pci:zz'],
  ['reset', '0000:09:00.0', '--json'],
  ['vf', 'list', PF],
  ['vf', 'set-count', PF, '0', '--dry-run'],
  ['assign', '--domain', 'vm3', VF2, '--json'],
  ['vf', 'set-count', PF, '4'],
  ['vf', 'set-count', PF, '4', '--force', '--json'],
  ['vf', 'set-count', PF, '2'],
  ['vf', 'list', PF, '--json'],
  ['status'],
];

async function runAll(host: DaemonHost, env: NodeJS.ProcessEnv = {}): Promise<CliRun[]> {
  const runs: CliRun[] = [];
  for (const args of CASES) {
    const global = ['--root', host.root, '--state-dir', host.stateDir, '--simulate', '--socket-dir', host.socketDir];
    runs.push(await runCliAsync([...global, ...args], { env: { COLUMNS: '200', ...env }, timeoutMs: 60_000 }));
  }
  return runs;
}

/** A fresh simulated host at the same paths (outputs name the paths, so both ways use the same ones). */
function freshHost(host: DaemonHost): void {
  for (const dir of [host.root, host.stateDir, host.socketDir]) rmSync(dir, { recursive: true, force: true });
  createSimulatedHost(host.root, { preset: 'sriov-nic' });
}

async function daemonOperations(host: DaemonHost): Promise<OperationRecordJson[]> {
  return (await curl(host.socket, 'GET', '/v1/operations?limit=1000')).json<OperationRecordJson[]>();
}

describe('the command line through the daemon', () => {
  it('prints the same stdout and stderr and exits the same, case by case, through the daemon as directly', { timeout: 600_000 }, async () => {
    const host = daemonHost();
    const daemon = await daemonProcess(host);
    const through = await runAll(host);
    // The changes went through the daemon: it ran them (dry runs are not recorded).
    const ran = await daemonOperations(host);
    expect(ran.filter((op) => op.kind === 'assign').length).toBeGreaterThanOrEqual(3);
    expect(ran.map((op) => op.kind)).toEqual(expect.arrayContaining(['assign', 'release', 'detach', 'reset', 'reattach', 'sriov']));
    daemon.child.kill('SIGTERM');
    await daemon.done;

    freshHost(host);
    const direct = await runAll(host);
    // vf set-count's waitedMs is a measured time (how long the VFs took to appear), the one figure that may differ.
    // A measured time, and the boot id each simulated host was given when it was made, aside.
    const measured = (text: string): string => text.replace(/"waitedMs": \d+/g, '"waitedMs": N').replace(/"bootId": "[0-9a-f-]+"/g, '"bootId": "B"');
    CASES.forEach((args, i) => {
      const [a, b] = [through[i]!, direct[i]!];
      expect({ args, code: a.code, stdout: measured(a.stdout), stderr: a.stderr }).toEqual({ args, code: b.code, stdout: measured(b.stdout), stderr: b.stderr });
    });
    // The cases cover successes, dry runs, partial and failed changes with their exit codes.
    expect(new Set(direct.map((run) => run.code))).toEqual(new Set([0, 2, 3, 4]));
  });

  it('release --force and reattach --force reach the daemon: a swapped card is refused without, acted on with', { timeout: 300_000 }, async () => {
    const host = daemonHost();
    const daemon = await daemonProcess(host);
    const global = ['--root', host.root, '--state-dir', host.stateDir, '--simulate', '--socket-dir', host.socketDir];
    const run = (args: readonly string[]): Promise<CliRun> => runCliAsync([...global, ...args], { timeoutMs: 60_000 });
    const refusedAndForced = async (args: readonly string[]): Promise<void> => {
      const refused = await run(args);
      expect(refused.code, refused.stderr).toBe(4);
      expect(refused.stderr).toContain('hardware changed at');
      const forced = await run([...args, '--force']);
      expect(forced.stderr).not.toContain('hardware changed at');
      // Acted on: the other card does not bind to igbvf (a kernel failure, never the refusal's exit 4).
      expect(forced.code, forced.stderr).not.toBe(4);
      expect(forced.stderr).toContain('did not bind to igbvf');
    };
    expect((await run(['detach', VF2])).code).toBe(0);
    expect((await run(['assign', '--domain', 'vm1', VF])).code).toBe(0);
    swapCard(host.root, VF2, { vendor: '15b3', device: '101e' });
    swapCard(host.root, VF, { vendor: '15b3', device: '101e' });
    await refusedAndForced(['reattach', VF2]);
    await refusedAndForced(['release', '--domain', 'vm1']);
    // Both forced changes went through the daemon.
    expect((await daemonOperations(host)).map((op) => op.kind)).toEqual(expect.arrayContaining(['reattach', 'release']));
    daemon.child.kill('SIGTERM');
    await daemon.done;
  });

  it('assign and release of positional keys of mixed kinds (and of keys alone) go through the daemon', { timeout: 300_000 }, async () => {
    const host = daemonHost('virt-host');
    const daemon = await daemonProcess(host);
    const global = ['--root', host.root, '--state-dir', host.stateDir, '--simulate', '--socket-dir', host.socketDir];
    const run = (args: readonly string[]): Promise<CliRun> => runCliAsync([...global, ...args], { timeoutMs: 60_000 });
    const NIC = '0000:00:19.0';
    const MDEV = 'mdev:4b20d080-1b54-4048-85b3-a6a62d165c01';
    const mixed = await run(['assign', '--domain', 'vm1', NIC, MDEV, 'usb:1-1.2']);
    expect(mixed.code, mixed.stderr).toBe(0);
    expect(mixed.stdout.split('\n')[0]).toBe(`assigned to domain vm1 (qemu): ${NIC}, ${MDEV}, usb:1-1.2`);
    const keysOnly = await run(['assign', '--domain', 'vm2', 'scsi:2:0:1:0']);
    expect([keysOnly.code, keysOnly.stdout.trim()]).toEqual([0, 'assigned to domain vm2 (qemu): scsi:2:0:1:0']);
    const released = await run(['release', '--domain', 'vm1', MDEV, `pci:${NIC}`]);
    expect(released.code, released.stderr).toBe(0);
    expect(released.stdout).toContain(`released 1 mediated/USB device(s) of domain vm1: ${MDEV}`);
    const keyRelease = await run(['release', '--domain', 'vm2', 'scsi:2:0:1:0']);
    expect([keyRelease.code, keyRelease.stdout.trim()]).toEqual([0, 'released 1 mediated/USB/SCSI device(s) of domain vm2: scsi:2:0:1:0']);
    const ran = (await daemonOperations(host)).map((op) => `${op.kind} ${op.owner?.vm ?? ''} ${[...(op.devices ?? [])].sort().join(' ')}`);
    expect(ran).toEqual(
      expect.arrayContaining([
        `assign vm1 ${[`pci:${NIC}`, MDEV, 'usb:1-1.2'].sort().join(' ')}`,
        'assign vm2 scsi:2:0:1:0',
        `release vm1 ${[`pci:${NIC}`, MDEV].sort().join(' ')}`,
        'release vm2 scsi:2:0:1:0',
      ]),
    );
    daemon.child.kill('SIGTERM');
    await daemon.done;
  });

  it('--no-daemon and HOSTDEV_NO_DAEMON=1 work directly; a daemon of another state directory is not used', { timeout: 300_000 }, async () => {
    const host = daemonHost();
    const daemon = await daemonProcess(host);
    const global = ['--root', host.root, '--state-dir', host.stateDir, '--simulate', '--socket-dir', host.socketDir];
    const first = await runCliAsync([...global, '--no-daemon', 'detach', VF2], { timeoutMs: 60_000 });
    expect(first.code, first.stderr).toBe(0);
    const second = await runCliAsync([...global, 'reattach', VF2], { env: { HOSTDEV_NO_DAEMON: '1' }, timeoutMs: 60_000 });
    expect(second.code, second.stderr).toBe(0);
    const other = await runCliAsync(['--root', host.root, '--state-dir', `${host.stateDir}-other`, '--simulate', '--socket-dir', host.socketDir, 'detach', VF], { timeoutMs: 60_000 });
    expect(other.code, other.stderr).toBe(0);
    expect(await daemonOperations(host)).toEqual([]);
    // HOSTDEV_SOCKET_DIR names the directory when --socket-dir is not given.
    const mine = await runCliAsync(['--root', host.root, '--state-dir', host.stateDir, '--simulate', 'detach', VF2], { env: { HOSTDEV_SOCKET_DIR: host.socketDir }, timeoutMs: 60_000 });
    expect(mine.code, mine.stderr).toBe(0);
    expect((await daemonOperations(host)).map((op) => op.kind)).toEqual(['detach']);
    daemon.child.kill('SIGTERM');
    await daemon.done;
  });
});
