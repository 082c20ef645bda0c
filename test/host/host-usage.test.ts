import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseIpAddr, parseMounts, routedInterfaces } from '../../src/host/host-usage-parse.js';
import { ProcHostUsage } from '../../src/host/proc-host-usage.js';
import { SimHostUsage, simHostUsageFile } from '../../src/host/sim-host-usage.js';
import { pciDevice } from '../support/pci-device-fixture.js';

const roots: string[] = [];
function tempRoot(): string {
  const root = mkdtempSync(path.join(tmpdir(), 'hostdev-usage-'));
  roots.push(root);
  return root;
}
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

function put(root: string, file: string, text: string): void {
  mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
  writeFileSync(path.join(root, file), text);
}

describe('host usage parsers', () => {
  it('reads /proc/mounts with escaped spaces', () => {
    expect(parseMounts('/dev/nvme0n1p2 / ext4 rw 0 0\n/dev/sdb1 /mnt/my\\040disk vfat rw 0 0\n')).toEqual([
      { source: '/dev/nvme0n1p2', target: '/' },
      { source: '/dev/sdb1', target: '/mnt/my disk' },
    ]);
  });

  it('reads /proc/net/route into routes per interface', () => {
    const text = [
      'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT',
      'eth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0',
      'eth0\t0000A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0',
    ].join('\n');
    expect(routedInterfaces(text).get('eth0')).toEqual(['default', '192.168.0.0/24']);
  });

  it('ignores link-local addresses from ip -j addr', () => {
    const json = JSON.stringify([
      { ifname: 'eth0', addr_info: [{ local: '192.0.2.10', prefixlen: 24, scope: 'global' }, { local: 'fe80::1', prefixlen: 64, scope: 'link' }] },
    ]);
    expect(parseIpAddr(json)).toEqual(['192.0.2.10/24']);
  });
});

describe('the real host-usage adapter on a copied tree', () => {
  it('finds routes of a netdev, a filesystem mounted from a disk behind the device, and the boot VGA', async () => {
    const root = tempRoot();
    put(root, 'proc/net/route', 'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\nenp1s0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\n');
    put(root, 'proc/mounts', '/dev/nvme0n1p2 / ext4 rw 0 0\n');
    const disk = 'sys/devices/pci0000:00/0000:00:1d.0/0000:04:00.0/nvme/nvme0/nvme0n1/nvme0n1p2';
    mkdirSync(path.join(root, disk), { recursive: true });
    mkdirSync(path.join(root, 'sys/class/block'), { recursive: true });
    symlinkSync(`../../devices/pci0000:00/0000:00:1d.0/0000:04:00.0/nvme/nvme0/nvme0n1/nvme0n1p2`, path.join(root, 'sys/class/block/nvme0n1p2'));
    put(root, 'sys/bus/pci/devices/0000:05:00.0/boot_vga', '1\n');

    const usage = await new ProcHostUsage(root, null).usesOf([
      pciDevice('0000:01:00.0', { netdevs: ['enp1s0'] }),
      pciDevice('0000:04:00.0', { driver: 'nvme' }),
      pciDevice('0000:05:00.0', { driver: 'i915' }),
      pciDevice('0000:06:00.0'),
    ]);
    expect(usage.get(pciDevice('0000:01:00.0').address)).toEqual([{ kind: 'route', detail: 'enp1s0 carries route default' }]);
    expect(usage.get(pciDevice('0000:04:00.0').address)).toEqual([{ kind: 'mount', detail: '/ is mounted from /dev/nvme0n1p2' }]);
    expect(usage.get(pciDevice('0000:05:00.0').address)?.[0]?.kind).toBe('console');
    expect(usage.has(pciDevice('0000:06:00.0').address)).toBe(false);
  });
});

describe('the simulated host-usage adapter', () => {
  it('reads ROOT/.hostdev-sim/host-usage.json, and a missing file means no use', async () => {
    const root = tempRoot();
    const nic = pciDevice('0000:01:00.0');
    expect((await new SimHostUsage(root).usesOf([nic])).size).toBe(0);
    mkdirSync(path.dirname(simHostUsageFile(root)), { recursive: true });
    writeFileSync(simHostUsageFile(root), JSON.stringify({ devices: { '0000:01:00.0': [{ kind: 'address', detail: 'eth0 has 192.0.2.10/24' }] } }));
    expect((await new SimHostUsage(root).usesOf([nic])).get(nic.address)).toEqual([{ kind: 'address', detail: 'eth0 has 192.0.2.10/24' }]);
  });
});
