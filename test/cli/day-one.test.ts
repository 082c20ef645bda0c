import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonOf, runCli } from '../support/cli.js';

// The small things a new user meets first.
let dir = '';
const tree = (name: string) => path.join(dir, name);
const hs = (root: string, ...args: string[]) => runCli(['--root', root, '--simulate', ...args]);

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'hostdev-day-one-'));
  for (const [name, preset] of [['ws', 'workstation'], ['nic', 'sriov-nic'], ['mock', 'libvirt-test']]) {
    expect(runCli(['sim', 'create', tree(name!), '--preset', preset!]).code).toBe(0);
  }
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('day one', () => {
  it('--version prints the package version', () => {
    const run = runCli(['--version']);
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe((JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version);
  });

  it('list fits $COLUMNS, cutting names short; piped without COLUMNS it keeps them whole', () => {
    const narrow = runCli(['--root', tree('ws'), 'list'], { env: { COLUMNS: '120' } });
    expect(narrow.code).toBe(0);
    const lines = narrow.stdout.trimEnd().split('\n');
    expect(Math.max(...lines.map((line) => line.length))).toBeLessThanOrEqual(120);
    expect(narrow.stdout).toContain('…');
    const wide = runCli(['--root', tree('ws'), 'list'], { env: { COLUMNS: '' } });
    expect(wide.stdout).toContain('Intel Corporation 6th-10th Gen Core Processor PCIe Controller (x16)');
  });

  it('reset prints one line for one reset', () => {
    const run = hs(tree('nic'), 'reset', '0000:01:10.0');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim().split('\n')).toEqual(['reset 0000:01:10.0 (method flr)']);
  });

  it('reattach says where a device went: its host driver, or that it had none', () => {
    expect(hs(tree('nic'), 'detach', '0000:01:10.2').code).toBe(0);
    expect(hs(tree('nic'), 'reattach', '0000:01:10.2').stdout.trim()).toBe('reattached 0000:01:10.2 to its host driver igbvf');
    expect(hs(tree('mock'), 'detach', '0000:00:03.0').code).toBe(0);
    expect(hs(tree('mock'), 'reattach', '0000:00:03.0').stdout.trim()).toBe(
      'reattached 0000:00:03.0: off the stub and probed (it had no driver before; one loaded since may have taken it)',
    );
  });

  it('a managed assign of a device detached by hand says it stays unmanaged', () => {
    expect(hs(tree('nic'), 'detach', '0000:01:10.3').code).toBe(0);
    const assign = hs(tree('nic'), 'assign', '--domain', 'vm3', '0000:01:10.3');
    expect(assign.code, assign.stderr).toBe(0);
    expect(assign.stdout).toContain('note: 0000:01:10.3 was detached by hand (`hostdev detach`), so it is assigned unmanaged');
    expect(hs(tree('nic'), 'release', '--domain', 'vm3').code).toBe(0);
  });

  it('sim spec-schema prints the JSON Schema of a --spec file', () => {
    const run = runCli(['sim', 'spec-schema']);
    expect(run.code).toBe(0);
    const schema = jsonOf<{ $schema: string; required: string[]; properties: Record<string, unknown> }>(run);
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.required).toEqual(['roots']);
    expect(Object.keys(schema.properties)).toEqual(['description', 'iommu', 'drivers', 'kernelRelease', 'roots', 'virtualMdevParents']);
  });

  it('vf forget --dry-run names the records and keeps them', () => {
    const root = tree('nic');
    expect(hs(root, 'detach', '0000:01:10.1').code).toBe(0);
    expect(runCli(['--root', root, 'sim', 'write', '/sys/bus/pci/devices/0000:01:00.1/sriov_numvfs', '0']).code).toBe(0);
    const dry = hs(root, 'vf', 'forget', '--all', '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    // 0000:01:10.3, left inactive by the unmanaged release above, went with the same PF.
    expect(dry.stdout).toMatch(/^would forget 0000:01:10\.1 \(VF 0 of 0000:01:00\.1\)/m);
    expect(dry.stdout).toMatch(/^would forget 0000:01:10\.3 \(VF 1 of 0000:01:00\.1\)/m);
    expect(jsonOf<{ departed: unknown[] }>(hs(root, 'status', '--json')).departed).toHaveLength(2);
  });
});
