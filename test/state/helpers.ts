import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PciAddress } from '../../src/core/address.js';
import type { ActiveEntry, InactiveEntry } from '../../src/state/store.js';
import { pciKey } from '../../src/core/device-key.js';
import { makeOwner } from '../../src/core/tables.js';

/** The built store, for child processes (test/support/global-setup.ts builds dist/ first). */
export const DIST_STORE = fileURLToPath(new URL('../../dist/state/store.js', import.meta.url));

export function tempDir(prefix = 'hostdev-state-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function addr(n: number): PciAddress {
  return `0000:${n.toString(16).padStart(2, '0')}:00.0` as PciAddress;
}

export function active(n: number, domain = 'vm1', managed = true): ActiveEntry {
  return { key: pciKey(addr(n)), address: addr(n), usedBy: makeOwner('qemu', domain), managed, stubDriver: 'vfio-pci', originalDriver: 'e1000e' };
}

export function inactive(n: number, managed = false): InactiveEntry {
  return { key: pciKey(addr(n)), address: addr(n), managed, stubDriver: 'vfio-pci', originalDriver: 'e1000e' };
}

export function mode(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

export interface ChildRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs an ES module snippet in a fresh node process with `StateStore` imported from dist/.
 * `onLine` sees each stdout line as it arrives (to act while the child is still running).
 */
export function runChild(code: string, onLine?: (line: string, pid: number) => void): Promise<ChildRun> {
  const source = `import { StateStore } from ${JSON.stringify(DIST_STORE)};\n${code}`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', source], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) onLine?.(line, child.pid ?? 0);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (exitCode, signal) => resolve({ code: exitCode, signal, stdout, stderr }));
  });
}
