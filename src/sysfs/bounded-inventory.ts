import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Inventory } from '../core/device.js';
import { HostdevError } from '../core/errors.js';
import type { SysfsLayout } from './paths.js';

export const DEFAULT_READ_TIMEOUT_MS = 15_000;

/** The compiled child: beside this file in dist/, or in dist/ when this file runs from src/ (tests). */
function childScript(): string {
  const beside = fileURLToPath(new URL('./inventory-child.js', import.meta.url));
  return existsSync(beside) ? beside : fileURLToPath(new URL('../../dist/sysfs/inventory-child.js', import.meta.url));
}

/**
 * Reads the inventory in a child process, bounded by `timeoutMs`: a command run while the kernel
 * blocks a sysfs read fails with HOSTDEV_TIMEOUT instead of hanging, and can exit (a process whose
 * own thread is stuck in such a read cannot). The child is abandoned, not waited for.
 */
export function readInventoryBounded(
  layout: SysfsLayout,
  options: { readonly pciIdsPath?: string; readonly timeoutMs?: number } = {},
): Promise<Inventory> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
  const script = childScript();
  const args = [script, layout.root, ...(options.pciIdsPath === undefined ? [] : [options.pciIdsPath])];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      child.stdout.destroy();
      child.stderr.destroy();
      child.unref();
      reject(
        new HostdevError(
          'HOSTDEV_TIMEOUT',
          `reading the PCI devices under ${layout.sys} took more than ${timeoutMs} ms: a sysfs file is blocked in the kernel`,
          {
            hint:
              'This happens while a VF removal waits for a VM to let go of the VF (`dmesg` shows "Relaying device ' +
              'request to user"): stop or detach that VM\'s device, then try again. HOSTDEV_READ_TIMEOUT_MS sets the bound.',
            details: { path: layout.sys, timeoutMs },
          },
        ),
      );
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`the inventory reader exited with ${code}: ${err.trim()}`));
        return;
      }
      resolve(JSON.parse(Buffer.concat(out).toString('utf8')) as Inventory);
    });
  });
}

/** The bound from $HOSTDEV_READ_TIMEOUT_MS (milliseconds), else the default. */
export function readTimeoutFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const value = Number(env['HOSTDEV_READ_TIMEOUT_MS']);
  return Number.isFinite(value) && value > 0 ? value : DEFAULT_READ_TIMEOUT_MS;
}
