import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { jsonOf, runCli, runCliAsync } from '../support/cli.js';
import { addresses, cleanupRoots, driverOf, presetRoot, readAttr, tempRoot } from './helpers.js';

afterAll(cleanupRoots);

const D = (address: string, file: string) => `/sys/bus/pci/devices/${address}/${file}`;

describe('hostdev sim create', () => {
  it('writes the default preset (workstation), a named preset, or a validated JSON spec', () => {
    const base = tempRoot();
    const def = runCli(['sim', 'create', path.join(base, 'w'), '--json']);
    expect(def.code).toBe(0);
    expect(jsonOf<{ preset: string }>(def).preset).toBe('workstation');
    expect(fs.existsSync(path.join(base, 'w/sys/bus/pci/devices/0000:02:00.0/sriov_numvfs'))).toBe(true);

    fs.writeFileSync(
      path.join(base, 'spec.json'),
      JSON.stringify({ roots: [{ devices: [{ at: '03.0', vendor: '8086', device: '10d3', class: '020000', driver: 'e1000e', flr: true }] }] }),
    );
    expect(runCli(['sim', 'create', path.join(base, 's'), '--spec', path.join(base, 'spec.json')]).code).toBe(0);
    expect(driverOf(path.join(base, 's'), '0000:00:03.0')).toBe('e1000e');

    fs.writeFileSync(path.join(base, 'bad.json'), JSON.stringify({ roots: [{ devices: [{ at: '03.0', vendor: '80860', device: '1', class: '02' }] }] }));
    const bad = runCli(['sim', 'create', path.join(base, 'b'), '--spec', path.join(base, 'bad.json')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('roots.0.devices.0.vendor');
    expect(runCli(['sim', 'create', path.join(base, 'x'), '--preset', 'nope']).code).toBe(2);
    expect(runCli(['sim', 'create', path.join(base, 'w')]).code).toBe(2);
  });
});

describe('hostdev sim write: echo VALUE > PATH on the simulated host, one process per write', () => {
  it('moves a VF to vfio-pci in three separate processes, then refuses N -> M with EBUSY (non-zero exit, errno printed)', () => {
    const root = presetRoot('sriov-nic');
    const vf = '0000:01:10.2';
    for (const [p, v] of [
      [D(vf, 'driver_override'), 'vfio-pci'],
      [D(vf, 'driver/unbind'), vf],
      ['/sys/bus/pci/drivers_probe', vf],
    ] as const) {
      const run = runCli(['--root', root, 'sim', 'write', p, v]);
      expect(run.code, run.stderr).toBe(0);
    }
    expect(driverOf(root, vf)).toBe('vfio-pci');
    const busy = runCli(['sim', 'write', D('0000:01:00.0', 'sriov_numvfs'), '3', '--root', root]);
    expect(busy.code).toBe(6);
    expect(busy.stderr).toMatch(/EBUSY/);
    const json = runCli(['--json', '--root', root, 'sim', 'write', D('0000:01:00.0', 'sriov_numvfs'), '99']);
    expect(JSON.parse(json.stderr).error.details.errno).toBe('ERANGE');
    expect(runCli(['--root', root, 'sim', 'write', D('0000:01:00.0', 'sriov_numvfs'), '0']).code).toBe(0);
    expect(addresses(root)).not.toContain(vf);
  });

  it('refuses a root that is not a simulated tree, and never touches the real /sys', () => {
    const plain = tempRoot();
    const run = runCli(['--root', plain, 'sim', 'write', '/sys/bus/pci/rescan', '1']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('not one');
    expect(runCli(['sim', 'write', '/sys/bus/pci/rescan', '1']).code).toBe(2);
  });

  it('concurrent writers in separate processes leave one consistent host and a gap-free event log', async () => {
    const root = presetRoot('workstation');
    const targets = ['0000:01:00.0', '0000:01:00.1', '0000:03:00.0', '0000:06:00.0', '0000:07:00.0'];
    const runs = await Promise.all(targets.map((a) => runCliAsync(['--root', root, 'sim', 'write', D(a, 'driver/unbind'), a])));
    expect(runs.map((r) => r.code)).toEqual(targets.map(() => 0));
    for (const a of targets) expect(driverOf(root, a)).toBeNull();
    const seqs = fs
      .readFileSync(path.join(root, '.hostdev-sim/events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { seq: number }).seq);
    expect(seqs).toEqual(targets.map((_, i) => i + 1));
  });
});

describe('--simulate', () => {
  it('detach and reattach run their writes through the simulated kernel, across processes; refused on a plain tree', () => {
    const root = presetRoot('nvme');
    const state = path.join(tempRoot(), 'state');
    const detach = runCli(['--root', root, '--state-dir', state, '--simulate', 'detach', '0000:01:00.0']);
    expect(detach.code, detach.stderr).toBe(0);
    expect(driverOf(root, '0000:01:00.0')).toBe('vfio-pci');
    expect(fs.readFileSync(path.join(root, '.hostdev-sim/events.jsonl'), 'utf8')).toContain('"bind","address":"0000:01:00.0","driver":"vfio-pci"');
    const reattach = runCli(['--root', root, '--state-dir', state, '--simulate', 'reattach', '0000:01:00.0']);
    expect(reattach.code, reattach.stderr).toBe(0);
    expect(driverOf(root, '0000:01:00.0')).toBe('nvme');
    expect(readAttr(root, '0000:01:00.0', 'driver_override')).toBe('(null)');

    const plain = tempRoot();
    const refused = runCli(['--root', plain, '--state-dir', state, '--simulate', 'detach', '0000:01:00.0']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--simulate needs a simulated tree');
  });
});

describe('hostdev sim snapshot', () => {
  it('copies a host (here a simulated one as --root) into a new simulated tree the simulated kernel drives', () => {
    const source = presetRoot('sriov-nic');
    const dest = path.join(tempRoot(), 'snap');
    const run = runCli(['--root', source, 'sim', 'snapshot', dest, '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(jsonOf<{ devices: number; iommu: boolean }>(run)).toMatchObject({ devices: addresses(source).length, iommu: true });
    expect(addresses(dest)).toEqual(addresses(source));
    expect(driverOf(dest, '0000:01:10.0')).toBe('igbvf');
    expect(fs.readlinkSync(path.join(dest, 'sys/bus/pci/devices/0000:01:00.0/virtfn1'))).toBe('../0000:01:10.2');
    expect(runCli(['--root', dest, 'sim', 'write', D('0000:01:00.0', 'sriov_numvfs'), '0']).code).toBe(0);
    expect(runCli(['--root', dest, 'sim', 'write', D('0000:01:00.0', 'sriov_numvfs'), '3']).code).toBe(0);
    expect(driverOf(dest, '0000:01:10.4')).toBe('igbvf');
  });

  it('snapshots the real host read-only (no IOMMU here): same device list as /sys', () => {
    const dest = path.join(tempRoot(), 'real');
    const run = runCli(['sim', 'snapshot', dest, '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(addresses(dest)).toEqual(fs.readdirSync('/sys/bus/pci/devices').sort());
  });
});
