import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { presets } from '../../src/sim/presets.js';
import type { HostSpec } from '../../src/sim/spec.js';
import { runCli } from '../support/cli.js';
import { makeDecoy, picture } from '../support/decoy.js';
import { cleanupRoots, tempRoot } from './helpers.js';

// `sim create --spec`: a spec is checked whole before anything is written, its names are names
// (never paths), and a spec that cannot be built leaves no directory behind.

afterEach(() => cleanupRoots());

const nic = presets['sriov-nic']!;
const clone = (spec: HostSpec): any => JSON.parse(JSON.stringify(spec));
/** The first PF of sriov-nic, found by walking the spec (bridges hold children). */
function firstPf(spec: any): any {
  const walk = (nodes: any[]): any => {
    for (const node of nodes) {
      if (node.sriov) return node;
      const found = node.children ? walk(node.children) : null;
      if (found) return found;
    }
    return null;
  };
  return walk(spec.roots.flatMap((r: any) => r.devices));
}

function create(spec: unknown): { code: number; stderr: string; dir: string; base: string; decoyBefore: Record<string, string>; decoy: string } {
  const base = tempRoot('hostdev-spec-');
  const decoy = makeDecoy(path.join(base, 'decoy'));
  const decoyBefore = picture(decoy);
  const file = path.join(base, 'spec.json');
  fs.writeFileSync(file, JSON.stringify(spec));
  const dir = path.join(base, 'sim');
  const run = runCli(['sim', 'create', dir, '--spec', file]);
  return { code: run.code, stderr: run.stderr, dir, base, decoyBefore, decoy };
}

function refusedNaming(result: ReturnType<typeof create>, field: string): void {
  expect(result.code, result.stderr).toBe(2);
  expect(result.stderr).toContain(field);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  expect(fs.existsSync(result.dir) && fs.readdirSync(result.dir).length > 0).toBe(false);
  // nothing left beside it either (no half-built temporary directory)
  expect(fs.readdirSync(result.base).sort()).toEqual(['decoy', 'spec.json']);
  expect(picture(result.decoy)).toEqual(result.decoyBefore);
}

describe('names in a spec are names, not paths', () => {
  for (const [field, set] of [
    ['driver', (pf: any, bad: string) => (pf.driver = bad)],
    ['sriov.vfDriver', (pf: any, bad: string) => (pf.sriov.vfDriver = bad)],
    ['sriov.vfNetdev', (pf: any, bad: string) => (pf.sriov.vfNetdev = bad)],
  ] as const) {
    for (const bad of ['../../../decoy/x', 'a/b', '..', 'nul\u0000x']) {
      it(`${field} = ${JSON.stringify(bad)} is refused with exit 2 naming the field, and nothing is written`, () => {
        const spec = clone(nic);
        set(firstPf(spec), bad);
        refusedNaming(create(spec), field);
      });
    }
  }
});

describe('a spec that cannot be built is refused before anything is written', () => {
  it('two functions at one address', () => {
    const spec = clone(nic);
    const pf = firstPf(spec);
    const parent = spec.roots[0].devices.find((d: any) => d.children?.includes(pf)) ?? spec.roots[0];
    (parent.children ?? parent.devices).push({ ...clone(pf), sriov: undefined });
    refusedNaming(create(spec), '.at: two functions at');
  });

  it('two bridges with one secondary bus', () => {
    const spec = clone(nic);
    const bridge = spec.roots[0].devices.find((d: any) => d.kind === 'bridge');
    spec.roots[0].devices.push({ ...clone(bridge), at: '1e.0', children: [] });
    refusedNaming(create(spec), '.secondaryBus');
  });

  it('numVfs above totalVfs, and numVfs 1e9', () => {
    for (const numVfs of [8, 1e9]) {
      const spec = clone(nic);
      firstPf(spec).sriov.numVfs = numVfs;
      refusedNaming(create(spec), 'sriov.numVfs');
    }
  });

  it('VFs beyond bus ff', () => {
    const spec = clone(nic);
    Object.assign(firstPf(spec).sriov, { offset: 65000, stride: 100, totalVfs: 200, numVfs: 0 });
    refusedNaming(create(spec), 'sriov.totalVfs');
  });

  it('a good spec still builds, into DIR itself', () => {
    const result = create(clone(nic));
    expect(result.code, result.stderr).toBe(0);
    expect(fs.existsSync(path.join(result.dir, 'sys/bus/pci/devices'))).toBe(true);
    expect(fs.readdirSync(result.base).sort()).toEqual(['decoy', 'sim', 'spec.json']);
  });
});
