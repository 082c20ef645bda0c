import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN, runCli } from '../support/cli.js';

// The simulated modprobe of vfio-pci killed at any point: the driver directory is there whole or
// not at all, and the next assign binds the device (before, a kill left drivers/vfio-pci with
// bind and unbind only while the simulator's database said "not loaded", and every later assign
// failed with "did not bind").
const NVME = '0000:03:00.0';
const ASSIGN = ['assign', '--domain', 'vm1', '--with-group', NVME];
let base = '';
let template = '';
let copies = 0;

beforeAll(() => {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-modprobe-'));
  template = path.join(base, 'template');
  expect(runCli(['sim', 'create', template, '--preset', 'workstation']).code).toBe(0);
  expect(existsSync(path.join(template, 'sys/bus/pci/drivers/vfio-pci'))).toBe(false);
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

function fresh(): { root: string; flags: string[] } {
  const dir = path.join(base, `copy-${++copies}`);
  const root = path.join(dir, 'root');
  cpSync(template, root, { recursive: true, verbatimSymlinks: true });
  return { root, flags: ['--root', root, '--state-dir', path.join(dir, 'state'), '--simulate'] };
}

const driverOf = (root: string): string | null => {
  try {
    return path.basename(readlinkSync(path.join(root, 'sys/bus/pci/devices', NVME, 'driver')));
  } catch {
    return null;
  }
};

function expectWholeOrAbsent(root: string): void {
  const dir = path.join(root, 'sys/bus/pci/drivers/vfio-pci');
  if (existsSync(dir)) expect(readdirSync(dir).filter((f) => !f.startsWith('0000:')).sort()).toEqual(['bind', 'new_id', 'remove_id', 'uevent', 'unbind']);
}

describe('the simulated modprobe and a kill', () => {
  it('a load whose database row was never committed (directory in place, row "not loaded") is completed by the next assign', () => {
    const { root, flags } = fresh();
    expect(runCli([...flags, ...ASSIGN]).code).toBe(0);
    expect(runCli([...flags, 'release', '--domain', 'vm1']).code).toBe(0);
    const db = new Database(path.join(root, '.hostdev-sim/state.db'));
    db.prepare("UPDATE drivers SET loaded = 0 WHERE name = 'vfio-pci'").run();
    db.close();
    const again = runCli([...flags, ...ASSIGN]);
    expect(again.code, again.stderr).toBe(0);
    expect(driverOf(root)).toBe('vfio-pci');
  });

  it('killed at random points of an assign that loads vfio-pci: the directory is whole or absent, and the next assign binds', async () => {
    let killed = 0;
    const trials = 8;
    for (let i = 0; i < trials; i++) {
      const { root, flags } = fresh();
      const child = spawn(process.execPath, [CLI_BIN, ...flags, ...ASSIGN], { stdio: 'ignore' });
      const delay = 150 + Math.floor(Math.random() * 500);
      const timer = setTimeout(() => child.kill('SIGKILL'), delay);
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      clearTimeout(timer);
      if (code === null) killed++;
      expectWholeOrAbsent(root);
      const next = runCli([...flags, ...ASSIGN]);
      expect([0, 4], `trial ${i} (killed after ${delay} ms): ${next.stderr}`).toContain(next.code);
      expect(driverOf(root)).toBe('vfio-pci');
    }
    console.log(`simulated modprobe: ${trials} kills tried, ${killed} landed mid-assign, every tree whole and assignable after`);
  }, 120_000);
});
