import fs from 'node:fs';
import path from 'node:path';
import type * as Zod from 'zod';
import { lazyPackage } from '../platform/lazy-package.js';
import { simDir } from './host-model.js';

/**
 * Faults the simulated kernel injects, for tests of what hostdev does when the kernel misbehaves.
 * `match` is a substring of the host path, or a regular expression written "/.../".
 *
 * - fail: the next `times` (default 1) writes matching fail with `errno`, changing nothing.
 * - crash: the process dies abruptly (SIGKILL) after its Nth write (`when: 'before'`: instead
 *   of the Nth write, which is then not applied).
 * - block: writes matching wait, before touching anything (stage 'vfio-release': after the
 *   vfio-pci device they release lost its driver link, as a VFIO user holding it makes Linux
 *   wait, with the device locks Linux holds meanwhile taken, so reads of driver_override and
 *   sriov_numvfs of those devices block too, see held-files.ts; a write that releases no
 *   vfio-pci device does not block), until released: in-process by
 *   SimKernel.release(id), from anywhere by creating ROOT/.hostdev-sim/release/<id>. While it
 *   waits, ROOT/.hostdev-sim/blocked/<id> holds the blocked process's pid.
 *
 * Sources: SimKernel.inject() (this process), $HOSTDEV_SIM_FAULTS (JSON array, this process),
 * ROOT/.hostdev-sim/faults.json (JSON array, shared: consumed under the state lock).
 */
export type Fault =
  | { readonly action: 'fail'; readonly match: string; readonly errno: string; readonly times?: number }
  | { readonly action: 'crash'; readonly afterWrites: number; readonly when?: 'before' | 'after' }
  | {
      readonly action: 'block';
      readonly match: string;
      readonly id: string;
      readonly times?: number;
      /** 'vfio-release': block where vfio-pci's remove waits for its user (see SimKernel). */
      readonly stage?: 'before' | 'vfio-release';
    };

export const FAULTS_ENV = 'HOSTDEV_SIM_FAULTS';

/** zod loads only when a fault list is there to parse: most simulated runs have none. */
const zod = lazyPackage<typeof Zod>('zod');
let faultListSchema: Zod.ZodType | null = null;

function faultList(): Zod.ZodType {
  if (faultListSchema !== null) return faultListSchema;
  const { z } = zod();
  faultListSchema = z.array(
    z.union([
      z.strictObject({
        action: z.literal('fail'),
        match: z.string().min(1),
        errno: z.string().regex(/^E[A-Z0-9]+$/),
        times: z.number().int().min(1).optional(),
      }),
      z.strictObject({ action: z.literal('crash'), afterWrites: z.number().int().min(1), when: z.enum(['before', 'after']).optional() }),
      z.strictObject({
        action: z.literal('block'),
        match: z.string().min(1),
        id: z.string().regex(/^[A-Za-z0-9_.-]+$/),
        times: z.number().int().min(1).optional(),
        stage: z.enum(['before', 'vfio-release']).optional(),
      }),
    ])
  );
  return faultListSchema;
}

function parseFaults(input: unknown): Fault[] {
  return faultList().parse(input) as Fault[];
}

export function faultsFromEnv(env: NodeJS.ProcessEnv = process.env): Fault[] {
  const raw = env[FAULTS_ENV];
  if (raw === undefined || raw.trim() === '') return [];
  return parseFaults(JSON.parse(raw));
}

export function faultsFile(root: string): string {
  return path.join(simDir(root), 'faults.json');
}

export function readFaultsFile(root: string): Fault[] {
  let raw: string;
  try {
    raw = fs.readFileSync(faultsFile(root), 'utf8');
  } catch {
    return [];
  }
  return parseFaults(JSON.parse(raw));
}

/** Writes the shared fault list atomically (an empty list removes the file). */
export function writeFaultsFile(root: string, faults: readonly Fault[]): void {
  const file = faultsFile(root);
  if (faults.length === 0) {
    fs.rmSync(file, { force: true });
    return;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(`${file}.${process.pid}.tmp`, JSON.stringify(faults));
  fs.renameSync(`${file}.${process.pid}.tmp`, file);
}

export function faultMatches(match: string, hostPath: string): boolean {
  if (match.length > 2 && match.startsWith('/') && match.endsWith('/')) {
    return new RegExp(match.slice(1, -1)).test(hostPath);
  }
  return hostPath.includes(match);
}

/** A fault list with one use of `fault` consumed (removed when its `times` run out). */
export function consume(faults: readonly Fault[], fault: Fault): Fault[] {
  return faults.flatMap((f) => {
    if (f !== fault) return [f];
    if (f.action === 'crash') return [];
    const left = (f.times ?? 1) - 1;
    return left > 0 ? [{ ...f, times: left }] : [];
  });
}

export function releaseFile(root: string, id: string): string {
  return path.join(simDir(root), 'release', id);
}

export function blockedFile(root: string, id: string): string {
  return path.join(simDir(root), 'blocked', id);
}

/** Releases a blocked write from any process. */
export function releaseBlocked(root: string, id: string): void {
  fs.mkdirSync(path.dirname(releaseFile(root, id)), { recursive: true });
  fs.writeFileSync(releaseFile(root, id), `${process.pid}\n`);
}

/** Whether a write is blocked on `id` now (its marker exists). */
export function isBlocked(root: string, id: string): boolean {
  return fs.existsSync(blockedFile(root, id));
}
