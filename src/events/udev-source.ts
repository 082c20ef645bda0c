import { spawn, type ChildProcess } from 'node:child_process';
import type { EventSource, SourceHint } from './source.js';
import { UdevMonitorParser } from './udev-parse.js';

const UDEVADM_ARGS = ['monitor', '--kernel', '--subsystem-match=pci', '--property'] as const;

/**
 * Kernel uevents through `udevadm monitor --kernel`. That reads the kernel's netlink socket
 * itself, so it works without udevd running; inside a container it may still receive nothing,
 * which is why `watch` keeps a slow safety poll beside it.
 */
export class UdevSource implements EventSource {
  readonly name = 'udev' as const;
  private child: ChildProcess | null = null;
  private stopping = false;

  constructor(
    private readonly command = 'udevadm',
    private readonly startTimeoutMs = 5_000,
  ) {}

  start(onHint: (hint: SourceHint) => void, onError: (error: Error) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      // In a process group of its own: a terminal's Ctrl-C goes to hostdev alone, which stops it
      // (udevadm would otherwise end on the same signal, at times before the watch knows it stops).
      const child = spawn(this.command, [...UDEVADM_ARGS], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      this.child = child;
      const parser = new UdevMonitorParser();
      let started = false;
      const ready = (): void => {
        if (started) return;
        started = true;
        clearTimeout(timer);
        resolve();
      };
      // udevadm prints its banner once the netlink socket is bound: from then on nothing is missed.
      const timer = setTimeout(ready, this.startTimeoutMs);
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        if (chunk.includes('monitor will print') || chunk.includes('KERNEL')) ready();
        for (const event of parser.feed(chunk)) {
          onHint({ source: 'udev', action: event.action, address: event.address, driver: event.driver });
        }
      });
      child.stderr!.resume();
      child.on('error', (error) => {
        clearTimeout(timer);
        if (!started) reject(error);
        else onError(error);
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        const error = new Error(`udevadm monitor exited (${signal ?? `code ${code}`})`);
        if (!started) reject(error);
        else if (!this.stopping) onError(error);
      });
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    this.child = null;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }
}
