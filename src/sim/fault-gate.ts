import fs from 'node:fs';
import path from 'node:path';
import { blockedFile, consume, faultMatches, faultsFile, readFaultsFile, releaseFile, writeFaultsFile, type Fault } from './faults.js';

type BlockFault = Extract<Fault, { action: 'block' }>;

/**
 * Decides, write by write, which injected fault applies: this process's own faults first, then
 * the tree's shared faults.json (read and consumed under the caller's lock).
 */
export class FaultGate {
  private faults: Fault[];
  private readonly released = new Set<string>();

  constructor(
    private readonly root: string,
    initial: readonly Fault[],
  ) {
    this.faults = [...initial];
  }

  inject(fault: Fault): void {
    this.faults.push(fault);
  }

  clear(): void {
    this.faults = [];
  }

  release(id: string): void {
    this.released.add(id);
  }

  private shared(): Fault[] {
    return fs.existsSync(faultsFile(this.root)) ? readFaultsFile(this.root) : [];
  }

  /** Consumes the first fault `pick` selects, local or shared; `locked` runs under the tree's lock. */
  private take<F extends Fault>(pick: (f: Fault) => f is F, locked: <T>(fn: () => T) => T): F | null {
    const local = this.faults.find(pick);
    if (local) {
      this.faults = consume(this.faults, local);
      return local;
    }
    if (!fs.existsSync(faultsFile(this.root))) return null;
    return locked(() => {
      const shared = this.shared();
      const found = shared.find(pick);
      if (found) writeFaultsFile(this.root, consume(shared, found));
      return found ?? null;
    });
  }

  takeBlock(hostPath: string, locked: <T>(fn: () => T) => T): BlockFault | null {
    return this.take((f): f is BlockFault => f.action === 'block' && faultMatches(f.match, hostPath), locked);
  }

  /** The errno of a `fail` fault for this write; call under the lock (the file is outside the db). */
  takeFail(hostPath: string): string | null {
    const fault = this.take(
      (f): f is Extract<Fault, { action: 'fail' }> => f.action === 'fail' && faultMatches(f.match, hostPath),
      (fn) => fn(),
    );
    return fault?.errno ?? null;
  }

  /** Kills this process (SIGKILL: no cleanup, like a crash) when a crash fault is due. */
  crashIfDue(writeCount: number, when: 'before' | 'after', locked: <T>(fn: () => T) => T): void {
    const due = (f: Fault): f is Extract<Fault, { action: 'crash' }> =>
      f.action === 'crash' && (f.when ?? 'after') === when && f.afterWrites === writeCount;
    if (!this.faults.some(due) && !this.shared().some(due)) return;
    this.take(due, locked);
    process.kill(process.pid, 'SIGKILL');
  }

  /** Waits until the blocked write `id` is released, in this process or through the tree. */
  async waitReleased(id: string): Promise<void> {
    const marker = blockedFile(this.root, id);
    fs.mkdirSync(path.dirname(marker), { recursive: true });
    fs.writeFileSync(marker, `${process.pid}\n`);
    try {
      while (!this.released.has(id) && !fs.existsSync(releaseFile(this.root, id))) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    } finally {
      this.released.delete(id);
      fs.rmSync(releaseFile(this.root, id), { force: true });
      fs.rmSync(marker, { force: true });
    }
  }
}
