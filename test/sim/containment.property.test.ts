import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { buildHost } from '../../src/sim/builder.js';
import { SimKernel } from '../../src/sim/kernel.js';
import { presets } from '../../src/sim/presets.js';
import { FsKernelPort, KernelWriteError, type KernelPort } from '../../src/sysfs/kernel-port.js';
import { copyInto, makeDecoy, picture, pointAt } from '../support/decoy.js';
import { cleanupRoots, tempRoot } from './helpers.js';

// Generated hostile trees: a link out of the root at one of the places a sysfs tree has links
// (or a file or directory replaced by one), then a run of the writes hostdev's commands make,
// through the simulated kernel and through the real port. After every write the decoy outside
// the root must be byte-identical, and a write fails only as a KernelWriteError.

const DEVICES = ['0000:01:00.0', '0000:01:10.0', '0000:01:10.2'] as const;
const POSITIONS = [
  'bus-link',
  'device-dir',
  'driver-link',
  'driver-dir',
  'virtfn0',
  'physfn',
  'iommu_group',
  'group-dir',
  'net',
  'driver_override',
  'sriov_numvfs',
  'reset',
  'uevent',
  'config',
  'dev-vfio',
  'sim-state',
  'devices-dir',
] as const;
type Position = (typeof POSITIONS)[number];

function writesFor(address: string): Array<[string, string]> {
  const dev = (file: string) => `/sys/bus/pci/devices/${address}/${file}`;
  return [
    [dev('driver_override'), 'vfio-pci\n'],
    [dev('driver_override'), '\n'],
    [`/sys/bus/pci/drivers/igbvf/unbind`, address],
    [`/sys/bus/pci/drivers/igb/unbind`, address],
    [`/sys/bus/pci/drivers/vfio-pci/bind`, address],
    [`/sys/bus/pci/drivers/vfio-pci/unbind`, address],
    ['/sys/bus/pci/drivers_probe', address],
    [dev('sriov_numvfs'), '0\n'],
    [dev('sriov_numvfs'), '3\n'],
    [dev('reset'), '1\n'],
    [dev('remove'), '1\n'],
    ['/sys/bus/pci/rescan', '1\n'],
    ['/sys/bus/pci/drivers/vfio-pci/new_id', '8086 10ca\n'],
  ];
}

/** Puts a link out of the root at `position` of `address`'s part of the tree; returns false where there is no such place. */
function plant(root: string, decoy: string, address: string, position: Position): boolean {
  const bus = path.join(root, 'sys/bus/pci/devices', address);
  const dir = fs.realpathSync(bus);
  const inDevice = (name: string, copyFrom?: string): boolean => {
    const at = path.join(dir, name);
    if (!fs.existsSync(at) && copyFrom === undefined) return false;
    pointAt(at, copyFrom === undefined || !fs.existsSync(copyFrom) ? path.join(decoy, 'precious') : copyInto(decoy, copyFrom, `copy-${name}`));
    return true;
  };
  switch (position) {
    case 'bus-link':
      pointAt(bus, copyInto(decoy, dir, 'device-copy'));
      return true;
    case 'device-dir': {
      copyInto(decoy, dir, 'device-moved');
      pointAt(dir, path.join(decoy, 'device-moved'));
      return true;
    }
    case 'driver-link':
      return fs.existsSync(path.join(dir, 'driver')) && inDevice('driver', fs.realpathSync(path.join(dir, 'driver')));
    case 'driver-dir': {
      const link = path.join(dir, 'driver');
      if (!fs.existsSync(link)) return false;
      const driverDir = path.join(root, 'sys/bus/pci/drivers', path.basename(fs.readlinkSync(link)));
      pointAt(driverDir, copyInto(decoy, fs.realpathSync(driverDir), 'driver-copy'));
      return true;
    }
    case 'virtfn0':
    case 'physfn':
    case 'iommu_group':
      return fs.existsSync(path.join(dir, position)) && inDevice(position, fs.realpathSync(path.join(dir, position)));
    case 'group-dir': {
      const link = path.join(dir, 'iommu_group');
      if (!fs.existsSync(link)) return false;
      const group = fs.realpathSync(link);
      pointAt(group, copyInto(decoy, group, 'group-copy'));
      return true;
    }
    case 'net':
      return inDevice('net', path.join(dir, 'net'));
    case 'driver_override':
    case 'sriov_numvfs':
    case 'reset':
    case 'uevent':
    case 'config':
      return fs.existsSync(path.join(dir, position)) && inDevice(position);
    case 'dev-vfio':
      pointAt(path.join(root, 'dev/vfio'), copyInto(decoy, path.join(root, 'dev/vfio'), 'vfio-copy'));
      return true;
    case 'sim-state':
      pointAt(path.join(root, '.hostdev-sim'), copyInto(decoy, path.join(root, '.hostdev-sim'), 'sim-copy'));
      return true;
    case 'devices-dir': {
      const parent = path.dirname(dir);
      if (path.basename(parent).startsWith('pci')) return false;
      pointAt(parent, copyInto(decoy, parent, 'parent-copy'));
      return true;
    }
  }
}

afterAll(() => cleanupRoots());


describe('a decoy outside the root is byte-identical after every write, whatever link leads to it', () => {
  for (const port of ['simulated kernel', 'real port'] as const) {
    it(`${port}`, async () => {
      const counts = { cases: 0, writes: 0, refused: 0 };
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...DEVICES),
          fc.constantFrom(...POSITIONS),
          fc.array(fc.tuple(fc.constantFrom(...DEVICES), fc.nat(12)), { minLength: 1, maxLength: 4 }),
          async (address, position, steps) => {
            const base = tempRoot('hostdev-hostile-');
            const root = path.join(base, 'host');
            buildHost(root, presets['sriov-nic']!);
            const decoy = makeDecoy(path.join(base, 'decoy'));
            fs.mkdirSync(decoy, { recursive: true });
            if (!plant(root, decoy, address, position)) return;
            counts.cases++;
            const before = picture(decoy);
            let kernel: KernelPort | null = null;
            try {
              kernel = port === 'simulated kernel' ? new SimKernel(root) : new FsKernelPort(root);
            } catch (error) {
              expect(String(error)).toContain('outside the root');
              return;
            }
            for (const [target, index] of steps) {
              const [hostPath, value] = writesFor(target)[index]!;
              counts.writes++;
              try {
                await kernel.write(hostPath, value);
              } catch (error) {
                if (!(error instanceof KernelWriteError)) throw error;
                if (error.outside !== null) counts.refused++;
              }
              expect(picture(decoy)).toEqual(before);
            }
            if (kernel instanceof SimKernel) kernel.close();
            fs.rmSync(base, { recursive: true, force: true });
          },
        ),
        { numRuns: 60 },
      );
      console.log(`${port}: ${counts.cases} hostile trees, ${counts.writes} writes, ${counts.refused} refused as outside the root, decoy unchanged after each`);
    });
  }
});

