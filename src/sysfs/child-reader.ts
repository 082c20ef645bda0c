import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HostdevError } from '../core/errors.js';
import type { ChildRead } from './inventory.js';
import { decodeChildReads } from './child-wire.js';
import type { SysfsLayout } from './paths.js';

export const DEFAULT_READ_TIMEOUT_MS = 15_000;

/** The compiled child: beside this file in dist/, or in dist/ when this file runs from src/ (tests). */
function childScript(): string {
  const beside = fileURLToPath(new URL('./inventory-child.js', import.meta.url));
  return existsSync(beside) ? beside : fileURLToPath(new URL('../../dist/sysfs/inventory-child.js', import.meta.url));
}

/**
 * The ChildFacts reads (among them every read the kernel can hold up), running in a child process
 * that is started at once and waited for with a bound. A command run while the kernel blocks such a read fails with
 * HOSTDEV_TIMEOUT instead of hanging, and can exit (a process whose own thread is stuck in such a
 * read cannot): the child is killed and abandoned, not waited for.
 */
export class ChildReader {
  readonly root: string;
  private readonly child: ChildProcess;
  private readonly out: Buffer[] = [];
  private err = '';
  private outcome: { code: number | null } | { error: Error } | null = null;
  private settle: (() => void) | null = null;

  constructor(layout: SysfsLayout) {
    this.root = layout.root;
    this.child = spawn(process.execPath, [childScript(), layout.root], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (chunk: Buffer) => this.out.push(chunk));
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.err += chunk));
    this.child.on('error', (error) => this.finish({ error }));
    this.child.on('close', (code) => this.finish({ code }));
  }

  /** The child's reads, waiting at most `timeoutMs` from now. */
  result(layout: SysfsLayout, timeoutMs: number): Promise<ChildRead[]> {
    return new Promise<void>((resolve, reject) => {
      if (this.outcome !== null) {
        resolve();
        return;
      }
      const timer = setTimeout(() => {
        this.cancel();
        reject(timeoutError(layout, timeoutMs));
      }, timeoutMs);
      this.settle = () => {
        clearTimeout(timer);
        resolve();
      };
    }).then(() => this.reads());
  }

  /** Stops the child (if it still runs) and lets this process exit without it. */
  cancel(): void {
    if (this.outcome === null) this.child.kill('SIGKILL');
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
    this.child.unref();
  }

  private finish(outcome: { code: number | null } | { error: Error }): void {
    if (this.outcome !== null) return;
    this.outcome = outcome;
    this.settle?.();
  }

  private reads(): ChildRead[] {
    const outcome = this.outcome!;
    if ('error' in outcome) throw outcome.error;
    if (outcome.code !== 0) throw new Error(`the inventory reader exited with ${outcome.code}: ${this.err.trim()}`);
    return decodeChildReads(Buffer.concat(this.out).toString('utf8'));
  }
}

function timeoutError(layout: SysfsLayout, timeoutMs: number): HostdevError {
  return new HostdevError(
    'HOSTDEV_TIMEOUT',
    `reading the PCI devices under ${layout.sys} took more than ${timeoutMs} ms: a sysfs file is blocked in the kernel`,
    {
      hint:
        'This happens while a VF removal waits for a VM to let go of the VF (`dmesg` shows "Relaying device ' +
        'request to user"): stop or detach that VM\'s device, then try again. HOSTDEV_READ_TIMEOUT_MS sets the bound.',
      details: { path: layout.sys, timeoutMs },
    },
  );
}
