import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CLI_BIN, runCli } from '../support/cli.js';
import { waitFor } from '../support/background.js';

// Ctrl-C in a terminal sends SIGINT to the whole foreground process group: hostdev and its
// children (the snapshot reader, udevadm) alike. Whatever the event source, `watch` ends the same
// way: exit 0 (as `udevadm monitor` does), complete lines, no warning about its own children.
const PF = '0000:01:00.0';
const VF0 = '0000:01:10.0';

let base = '';
const running: ChildProcess[] = [];
afterEach(() => {
  for (const child of running.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
});
afterAll(() => {
  if (base !== '') rmSync(base, { recursive: true, force: true });
});

function dir(): string {
  if (base === '') base = mkdtempSync(path.join(tmpdir(), 'hostdev-watch-stop-'));
  return base;
}

/**
 * A stand-in for `udevadm monitor --kernel`: its banner, then nothing; SIGINT or SIGTERM ends it
 * with 0 at once, as systemd's udevadm does (measured with udevadm 252). It notes the signal that
 * ended it in `signals`.
 */
function udevadmOnPath(signals: string): string {
  const bin = path.join(dir(), 'bin');
  mkdirSync(bin, { recursive: true });
  const script = path.join(bin, 'udevadm');
  writeFileSync(
    script,
    [
      '#!/bin/sh',
      `trap 'echo INT >> "${signals}"; kill $! 2>/dev/null; exit 0' INT`,
      `trap 'echo TERM >> "${signals}"; kill $! 2>/dev/null; exit 0' TERM`,
      'echo "monitor will print the received events for:"',
      'echo "KERNEL - the kernel uevent"',
      'echo',
      'sleep 1000 &',
      'wait',
      '',
    ].join('\n'),
  );
  chmodSync(script, 0o755);
  return bin;
}

interface Watch {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `hostdev watch` in a process group of its own, as a shell starts a foreground job. */
function startWatch(root: string, source: string, env: NodeJS.ProcessEnv = {}): Watch {
  const child = spawn(process.execPath, [CLI_BIN, '--root', root, '--simulate', 'watch', '--source', source, '--interval', '200'], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  running.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => stdout, stderr: () => stderr, done };
}

/** How many processes wait for the state lock (each holds a shared lock on the waiting room). */
function waitingRoomHolders(stateDir: string): number {
  const room = new Database(path.join(stateDir, 'lock-waiters.db'), { timeout: 0 });
  try {
    room.exec('BEGIN EXCLUSIVE');
    room.exec('ROLLBACK');
    return 0;
  } catch {
    return 1;
  } finally {
    room.close();
  }
}

function host(name: string): string {
  const root = path.join(dir(), name);
  const created = runCli(['sim', 'create', root, '--preset', 'sriov-nic']);
  expect(created.code, created.stderr).toBe(0);
  return root;
}

const SOURCES = ['sim', 'poll', 'auto', 'udev'] as const;

describe('watch stopped by Ctrl-C', () => {
  it.each(SOURCES)('exits 0 with its output whole, source %s', async (source) => {
    const root = host(`steady-${source}`);
    const signals = path.join(dir(), `udevadm-signals-${source}`);
    const env = source === 'udev' ? { PATH: `${udevadmOnPath(signals)}:${process.env['PATH']}` } : {};
    const watch = startWatch(root, source, env);
    await waitFor(() => watch.stderr().includes('Ctrl-C stops'), 20_000);
    if (source === 'udev') expect(watch.stderr()).toContain('(udev + poll');
    if (source !== 'udev') {
      // One event printed before the stop: the output has something to end cleanly.
      expect(runCli(['--root', root, 'sim', 'write', `/sys/bus/pci/devices/${PF}/sriov_numvfs`, '0']).code).toBe(0);
      await waitFor(() => watch.stdout().includes('vf-count-change'), 20_000);
    }
    process.kill(-watch.child.pid!, 'SIGINT');
    const end = await watch.done;
    expect(end, watch.stderr()).toEqual({ code: 0, signal: null });
    expect(watch.stdout() === '' || watch.stdout().endsWith('\n')).toBe(true);
    const lines = watch.stderr().trimEnd().split('\n');
    expect(lines.filter((line) => !line.startsWith('watching PCI devices')), watch.stderr()).toEqual([]);
    // udevadm is stopped by hostdev (SIGTERM), not by the terminal's Ctrl-C: else it could end
    // before the watch knows it is stopping, and be reported as a source that died.
    if (source === 'udev') expect(readFileSync(signals, 'utf8')).toBe('TERM\n');
  }, 60_000);

  it.each(SOURCES)('exits 0 and starts nothing when stopped while it is still opening the state, source %s', async (source) => {
    const root = host(`early-${source}`);
    const env = source === 'udev' ? { PATH: `${udevadmOnPath(path.join(dir(), 'udevadm-signals-early'))}:${process.env['PATH']}` } : {};
    // An assign killed half-way leaves work for recovery at open, which takes the state lock; another
    // operation holds that lock, so the watch waits for it at open, before it watches.
    const stateDir = path.join(root, '.hostdev-sim', 'state');
    const killed = runCli(['--root', root, '--simulate', 'assign', '--domain', 'vm2', VF0], {
      env: { HOSTDEV_SIM_FAULTS: JSON.stringify([{ action: 'crash', afterWrites: 2 }]) },
    });
    expect(killed.code, killed.stderr).not.toBe(0);
    const lock = new Database(path.join(stateDir, 'lock.db'), { timeout: 0 });
    lock.exec('BEGIN EXCLUSIVE');
    let released = false;
    try {
      const watch = startWatch(root, source, env);
      await waitFor(() => waitingRoomHolders(stateDir) > 0 || watch.child.exitCode !== null, 20_000);
      process.kill(-watch.child.pid!, 'SIGINT');
      await new Promise((resolve) => setTimeout(resolve, 300));
      lock.exec('ROLLBACK');
      released = true;
      const end = await watch.done;
      expect(end, watch.stderr()).toEqual({ code: 0, signal: null });
      expect(watch.stdout()).toBe('');
      // What recovery did at open is told; the watch itself never started.
      expect(watch.stderr()).toContain(`warning: ${VF0}: rolled back the assign`);
      expect(watch.stderr()).not.toContain('watching PCI devices');
      expect(watch.stderr().endsWith('\n')).toBe(true);
    } finally {
      if (!released) lock.exec('ROLLBACK');
      lock.close();
    }
  }, 60_000);
});
