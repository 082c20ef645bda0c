import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KernelWriteError } from '../../src/sysfs/kernel-port.js';
import { StateStore } from '../../src/state/store.js';

/**
 * A hand-made minimal sysfs tree (one PF with VFs), for tests of the event machinery that must
 * not depend on the simulator: bus links, driver links, virtfnN/physfn links, sriov_numvfs.
 */
export class MiniTree {
  readonly root = mkdtempSync(path.join(tmpdir(), 'hostdev-events-'));
  private readonly devices = path.join(this.root, 'sys/devices/pci0000:00');
  private readonly bus = path.join(this.root, 'sys/bus/pci/devices');
  private readonly drivers = path.join(this.root, 'sys/bus/pci/drivers');

  constructor(readonly pf = '0000:03:00.0') {
    mkdirSync(this.bus, { recursive: true });
    for (const driver of ['igb', 'igbvf', 'vfio-pci']) mkdirSync(path.join(this.drivers, driver), { recursive: true });
    this.addDevice(pf, 'igb');
    mkdirSync(path.join(this.devices, pf, 'net', 'eth1'), { recursive: true });
    writeFileSync(path.join(this.devices, pf, 'sriov_totalvfs'), '7\n');
    this.setNumVfs(0);
  }

  vf(index: number): string {
    return `0000:03:10.${index}`;
  }

  private addDevice(address: string, driver: string | null): void {
    const dir = path.join(this.devices, address);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'vendor'), '0x8086\n');
    writeFileSync(path.join(dir, 'device'), '0x10c9\n');
    writeFileSync(path.join(dir, 'class'), '0x020000\n');
    symlinkSync(`../../../devices/pci0000:00/${address}`, path.join(this.bus, address));
    this.setDriver(address, driver);
  }

  setDriver(address: string, driver: string | null): void {
    const link = path.join(this.devices, address, 'driver');
    rmSync(link, { force: true });
    if (driver !== null) symlinkSync(`../../../bus/pci/drivers/${driver}`, link);
  }

  setNumVfs(count: number): void {
    const pfDir = path.join(this.devices, this.pf);
    for (let index = 0; index < 7; index++) {
      const address = this.vf(index);
      rmSync(path.join(pfDir, `virtfn${index}`), { force: true });
      rmSync(path.join(this.bus, address), { force: true });
      rmSync(path.join(this.devices, address), { recursive: true, force: true });
    }
    for (let index = 0; index < count; index++) {
      const address = this.vf(index);
      this.addDevice(address, 'igbvf');
      symlinkSync(`../${address}`, path.join(pfDir, `virtfn${index}`));
      symlinkSync(`../${this.pf}`, path.join(this.devices, address, 'physfn'));
    }
    writeFileSync(path.join(pfDir, 'sriov_numvfs'), `${count}\n`);
  }

  appendSimEvent(entry: object): void {
    const dir = path.join(this.root, '.hostdev-sim');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'events.jsonl'), `${JSON.stringify(entry)}\n`, { flag: 'a' });
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** A kernel port over the mini tree with Linux's sriov_numvfs rules (EINVAL for N -> M, ERANGE). */
export function miniKernel(tree: MiniTree): { write(hostPath: string, value: string): Promise<void>; loadModule(): Promise<void>; writes: string[] } {
  const writes: string[] = [];
  let numVfs = 0;
  return {
    writes,
    async write(hostPath: string, value: string): Promise<void> {
      writes.push(`${hostPath}=${value}`);
      if (!hostPath.endsWith('/sriov_numvfs')) return;
      const count = Number(value);
      const fail = (errno: string): Error => Object.assign(new KernelWriteError(hostPath, value, errno));
      if (count > 7) throw fail('ERANGE');
      if (numVfs > 0 && count > 0 && count !== numVfs) throw fail('EINVAL');
      numVfs = count;
      tree.setNumVfs(count);
    },
    async loadModule(): Promise<void> {},
  };
}

/** A mini tree with its own state database, and one cleanup for both. */
export function miniHost(): { tree: MiniTree; store: StateStore; cleanup: () => void } {
  const tree = new MiniTree();
  const stateDir = mkdtempSync(path.join(tmpdir(), 'hostdev-state-'));
  const store = StateStore.open(stateDir);
  return {
    tree,
    store,
    cleanup: () => {
      store.close();
      tree.remove();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
