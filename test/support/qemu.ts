import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { QmpClient, QmpPort } from '../../src/qmp/qmp-client.js';

/**
 * A real QEMU on this machine for the QMP tests: TCG, no guest, a QMP socket, and as many named
 * PCIe root ports as asked. With `nativeHotplug` the root ports do PCIe native hot-plug, and QEMU
 * removes a device at once on `device_del` because no guest has powered the slot; with ACPI
 * hot-plug (QEMU's q35 default) a removal waits for a guest that never comes.
 */
export const QEMU = 'qemu-system-x86_64';

export const qemuMissing: string | null = spawnSync(QEMU, ['--version'], { stdio: 'ignore' }).status === 0
  ? null
  : `${QEMU} is not installed (scripts/ensure-system-deps.sh installs it as root)`;

export interface RunningQemu {
  readonly socket: string;
  /** A second QMP socket (`secondQmp`): QEMU serves one client per socket, so a test can speak to it beside another client. */
  readonly socket2: string | null;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

export interface QemuOptions {
  readonly machine?: 'q35' | 'pc';
  readonly rootPorts?: readonly string[];
  readonly nativeHotplug?: boolean;
  readonly secondQmp?: boolean;
  /** More -device arguments (controllers), after the root ports. */
  readonly devices?: readonly string[];
}

/** True once a unix socket accepts a connection (closed at once: QEMU then serves the next client). */
function accepts(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

export async function startQemu(options: QemuOptions = {}): Promise<RunningQemu> {
  const dir = mkdtempSync(path.join(tmpdir(), 'hostdev-qemu-'));
  const socket = path.join(dir, 'qmp.sock');
  const args = ['-machine', `${options.machine ?? 'q35'},accel=tcg`, '-nodefaults', '-display', 'none', '-S', '-m', '64'];
  if (options.nativeHotplug ?? true) args.push('-global', 'ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off');
  (options.rootPorts ?? []).forEach((id, index) => args.push('-device', `pcie-root-port,id=${id},chassis=${index + 1}`));
  for (const device of options.devices ?? []) args.push('-device', device);
  args.push('-qmp', `unix:${socket},server=on,wait=off`);
  const socket2 = options.secondQmp ? path.join(dir, 'qmp2.sock') : null;
  if (socket2 !== null) args.push('-qmp', `unix:${socket2},server=on,wait=off`);
  const child = spawn(QEMU, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const deadline = Date.now() + 10_000;
  while (!existsSync(socket) || (socket2 !== null && !existsSync(socket2))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`QEMU did not open its QMP socket: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // QEMU binds (the file appears) before it listens: a connect in between is refused.
  for (const qmp of [socket, ...(socket2 === null ? [] : [socket2])]) {
    while (!(await accepts(qmp))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`QEMU did not listen on its QMP socket ${qmp}: ${stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  return {
    socket,
    socket2,
    process: child,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The real client with `execute` replaced: tests that record or rewrite what hostdev sends to QEMU. */
export function withExecute(client: QmpClient, execute: QmpPort['execute']): QmpPort {
  return {
    socketPath: client.socketPath,
    version: client.version,
    eventMark: () => client.eventMark(),
    waitForEvent: (match, options) => client.waitForEvent(match, options),
    close: () => client.close(),
    execute,
  };
}
