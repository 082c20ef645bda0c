import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PciDevice } from '../../src/core/device.js';
import type { AssignmentVerdict } from '../../src/core/iommu.js';
import { buildHost } from '../../src/sim/builder.js';
import { generateSpec, presets } from '../../src/sim/presets.js';
import type { HostSpec } from '../../src/sim/spec.js';
import { jsonOf, runCli } from '../support/cli.js';
import { lspciDisagreements } from '../support/lspci-agreement.js';
import { hasLspci, runLspci } from '../support/lspci.js';

const roots: string[] = [];
afterAll(() => {
  for (const dir of roots) rmSync(dir, { recursive: true, force: true });
}, 120_000);

function host(spec: HostSpec): string {
  const root = mkdtempSync(path.join(tmpdir(), 'hostdev-list-sim-'));
  roots.push(root);
  buildHost(root, spec);
  return root;
}

const built = new Map<string, string>();
function preset(name: string): string {
  let root = built.get(name);
  if (root === undefined) {
    root = host(presets[name]!);
    built.set(name, root);
  }
  return root;
}

function list(root: string): PciDevice[] {
  const run = runCli(['--root', root, 'list', '--json']);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return jsonOf<PciDevice[]>(run);
}

describe.runIf(hasLspci())('hostdev list agrees with lspci -A linux-sysfs on simulated hosts', () => {
  it.each(Object.keys(presets))('preset %s', (name) => {
    const root = preset(name);
    expect(lspciDisagreements(list(root), runLspci(root))).toEqual([]);
  });

  it('a generated host of 300 functions', () => {
    const root = host(generateSpec(300));
    const devices = list(root);
    expect(devices).toHaveLength(300);
    expect(lspciDisagreements(devices, runLspci(root))).toEqual([]);
  });
});

interface Shown extends PciDevice {
  readonly pciPath: string[];
  readonly groupMembers: Array<{ address: string; driver: string | null; headerType: string | null }>;
  readonly verdict: AssignmentVerdict;
}

describe('show and groups on simulated hosts', () => {
  it('an SR-IOV PF lists its VFs in virtfn order, and the VFs name their PF', () => {
    const root = preset('sriov-nic');
    const devices = list(root);
    const pfs = devices.filter((d) => d.sriov !== null && d.virtfns.length > 0);
    expect(pfs.length).toBeGreaterThan(0);
    for (const pf of pfs) {
      expect(pf.virtfns).toHaveLength(pf.sriov!.numVfs);
      for (const vf of pf.virtfns) {
        const device = devices.find((d) => d.address === vf)!;
        expect(device.physfn).toBe(pf.address);
        expect(device.iommuGroup).not.toBe(pf.iommuGroup);
      }
    }
  });

  it('a GPU shares its group with its audio function on a host driver: not alone', () => {
    const root = preset('gpu');
    const gpu = list(root).find((d) => d.class === '0300')!;
    const shown = jsonOf<Shown>(runCli(['--root', root, 'show', gpu.address, '--json']));
    expect(shown.pciPath[0]).toMatch(/^pci[0-9a-f]{4}:[0-9a-f]{2}$/);
    expect(shown.pciPath[shown.pciPath.length - 1]).toBe(gpu.address);
    expect(shown.verdict.alone).toBe(false);
    expect(shown.verdict.companions).toHaveLength(1);
    expect(shown.groupMembers.map((m) => m.address)).toContain(shown.verdict.companions[0]);
    const audio = shown.groupMembers.find((m) => m.address === shown.verdict.companions[0])!;
    if (audio.driver !== null && audio.driver !== 'vfio-pci') {
      expect(shown.verdict.assignable).toBe(false);
      expect(shown.verdict.problems[0]!.message).toContain(audio.driver);
    }
    const text = runCli(['--root', root, 'show', gpu.address]).stdout;
    expect(text).toContain('Can be given to a VM alone: ');
    expect(text).toContain(shown.pciPath.join(' > '));
  });

  it('two endpoints behind a switch without ACS share a group; the switch ports are excluded', () => {
    const root = preset('non-acs-switch');
    const groups = jsonOf<Array<{ group: number; members: Array<{ address: string; headerType: string }> }>>(
      runCli(['--root', root, 'groups', '--json']),
    );
    const shared = groups.find((g) => g.members.filter((m) => m.headerType === 'endpoint').length >= 2)!;
    expect(shared).toBeDefined();
    const [first, second] = shared.members.filter((m) => m.headerType === 'endpoint');
    const shown = jsonOf<Shown>(runCli(['--root', root, 'show', first!.address, '--json']));
    expect(shown.verdict.companions).toContain(second!.address);
    expect(shown.verdict.bridges.length).toBeGreaterThan(0);
    for (const bridge of shown.verdict.bridges) expect(shown.verdict.companions).not.toContain(bridge);
    expect(runCli(['--root', root, 'groups']).stdout).toMatch(/^GROUP\s+ADDRESS\s+CLASS/);
  });

  it('a host without IOMMU lists devices without groups and says IOMMU is off', () => {
    const root = preset('no-iommu');
    expect(list(root).every((d) => d.iommuGroup === null)).toBe(true);
    expect(runCli(['--root', root, 'list']).stdout).toContain('IOMMU is off');
    expect(jsonOf(runCli(['--root', root, 'groups', '--json']))).toEqual([]);
  });
});
