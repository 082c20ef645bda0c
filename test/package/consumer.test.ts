import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// hostdev as a library, the way a VM manager gets it: the packed tarball in a project of its own,
// imported by its package name only. The tarball is unpacked where npm would put it and the
// project's dependencies are linked from this checkout's node_modules (npm would download them;
// better-sqlite3 would be compiled again).
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const PF1 = '0000:01:00.1';
const VFS = ['0000:01:10.1', '0000:01:10.3'];

let base = '';
let project = '';

const CONSUMER = `
import { HostdevService } from 'hostdev';
import { createSimulatedHost, simulatedHost } from 'hostdev/sim';

const [host, stateDir] = process.argv.slice(2);
createSimulatedHost(host, { preset: 'sriov-nic' });
const service = await HostdevService.open({ ...simulatedHost(host), stateDir });
try {
  const assigned = await service.assign({
    domain: 'vm1',
    addresses: ${JSON.stringify(VFS)},
    vf: {
      '${VFS[0]}': { mac: '52:54:00:00:00:01', vlan: 10 },
      '${VFS[1]}': { mac: '52:54:00:00:00:02', vlan: 10 },
    },
  });
  const during = await service.status();
  const vfsDuring = await service.vf.list({ pf: '${PF1}' });
  const released = await service.release({ domain: 'vm1' });
  const after = await service.status();
  const vfsAfter = await service.vf.list({ pf: '${PF1}' });
  const pick = (report) => report.vfs.map(({ address, driver, owner, mac, vlan }) => ({ address, driver, owner, mac, vlan }));
  let deepImport = 'allowed';
  try {
    await import('hostdev/dist/manager/hostdev-manager.js');
  } catch (error) {
    deepImport = error.code;
  }
  console.log(JSON.stringify({
    vfConfig: assigned.vfConfig,
    active: during.active.map((entry) => [entry.address, entry.usedBy.domain]),
    vfsDuring: pick(vfsDuring),
    released: released.released,
    after: { active: after.active, inactive: after.inactive },
    vfsAfter: pick(vfsAfter),
    deepImport,
  }));
} finally {
  service.close();
}
`;

beforeAll(() => {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-consumer-'));
  const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', base], { cwd: REPO, encoding: 'utf8' }).trim().split('\n').pop()!;
  project = path.join(base, 'project');
  const modules = path.join(project, 'node_modules');
  mkdirSync(path.join(modules, 'hostdev'), { recursive: true });
  execFileSync('tar', ['-xzf', path.join(base, packed), '-C', path.join(modules, 'hostdev'), '--strip-components=1']);
  for (const name of readdirSync(path.join(REPO, 'node_modules'))) {
    if (name === 'hostdev' || name.startsWith('.')) continue;
    symlinkSync(path.join(REPO, 'node_modules', name), path.join(modules, name));
  }
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'vm-manager', private: true, type: 'module' }));
  writeFileSync(path.join(project, 'consumer.mjs'), CONSUMER);
}, 120_000);
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('the packed library, from a project of its own', () => {
  it('assigns two VFs with a MAC and VLAN through HostdevService, releases them, reads status; no deep import', () => {
    const run = spawnSync(process.execPath, ['consumer.mjs', path.join(base, 'host'), path.join(base, 'state')], {
      cwd: project,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(out['vfConfig']).toEqual([
      'ip link set dev enp1s0f1 vf 0 vlan 10',
      'ip link set dev enp1s0f1 vf 0 mac 52:54:00:00:00:01',
      'ip link set dev enp1s0f1 vf 1 vlan 10',
      'ip link set dev enp1s0f1 vf 1 mac 52:54:00:00:00:02',
    ]);
    expect(out['active']).toEqual(VFS.map((address) => [address, 'vm1']));
    expect(out['vfsDuring']).toEqual([
      { address: VFS[0], driver: 'vfio-pci', owner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' }, mac: '52:54:00:00:00:01', vlan: 10 },
      { address: VFS[1], driver: 'vfio-pci', owner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' }, mac: '52:54:00:00:00:02', vlan: 10 },
    ]);
    expect(out['released']).toEqual(VFS);
    expect(out['after']).toEqual({ active: [], inactive: [] });
    expect(out['vfsAfter']).toEqual(VFS.map((address) => ({ address, driver: 'igbvf', owner: null, mac: '00:00:00:00:00:00', vlan: 0 })));
    expect(out['deepImport']).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });
});
