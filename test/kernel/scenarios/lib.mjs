// The environment a kernel scenario runs in. The same scenario code runs
//   - in the QEMU guest, on a real Linux kernel (mode "kernel", root "/"), and
//   - on the host, against the simulated kernel (mode "sim", root = a tree from `hostdev sim create`).
// Everything that differs between the two lives here: how hostdev is called, how a raw kernel write
// (`echo VALUE > /sys/...`) is made, how lspci is pointed at the tree. Scenarios only observe through
// this object, so their transcripts can be compared between Linux and the simulator.
// Plain JavaScript (no build step): it runs unchanged inside the guest.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export class SkipScenario extends Error {}

/**
 * V8 flags for every hostdev process a scenario starts (HOSTDEV_KTEST_NODE_FLAGS, set by the guest's
 * /init): under TCG, V8's optimizing tiers cost more in emulated code generation than they save.
 */
export const NODE_FLAGS = (process.env.HOSTDEV_KTEST_NODE_FLAGS ?? '').split(' ').filter(Boolean);

/** `hostdev --help` per binary: one lookup per run, not per scenario. */
const commandsCache = new Map();

/** Runs a command with a hard timeout; never waits for a child stuck in the kernel (D state). */
export function run(cmd, args, { timeoutMs = 60_000, env, input } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let settled = false;
    const finish = (result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...result, stdout, stderr, ms: Date.now() - started, pid: child.pid });
    };
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', (error) => finish({ code: -1, timedOut: false, spawnError: error.message }));
    child.on('close', (code, signal) => finish({ code: code ?? 128, signal, timedOut: false }));
    // A process whose thread is stuck in a blocked sysfs read cannot die until the kernel lets go:
    // SIGKILL it, stop listening, and report the timeout instead of waiting for its exit.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      child.stdout.destroy();
      child.stderr.destroy();
      finish({ code: null, timedOut: true });
    }, timeoutMs);
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

function errorCodeOf(stderr) {
  for (const line of stderr.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      const parsed = JSON.parse(t);
      if (parsed?.error?.code) return parsed.error;
    } catch {
      /* not the JSON error line */
    }
  }
  return null;
}

export class ScenarioEnv {
  /**
   * @param {{mode: 'kernel'|'sim', root: string, stateDir: string, bin: string, full?: boolean, log?: (s: string) => void}} o
   */
  constructor(o) {
    this.mode = o.mode;
    this.root = path.resolve(o.root);
    this.stateDir = o.stateDir;
    this.bin = o.bin;
    this.log = o.log ?? ((s) => process.stdout.write(`${s}\n`));
    this.full = o.full ?? false;
    this.transcript = [];
    this.checks = [];
    this.cleanups = [];
  }

  get sim() {
    return this.mode === 'sim';
  }

  /** Host path ("/sys/...") to the file under the root. */
  p(hostPath) {
    return path.join(this.root, hostPath);
  }

  globals() {
    const g = ['--root', this.root, '--state-dir', this.stateDir];
    if (this.sim) g.push('--simulate');
    return g;
  }

  /** `hostdev ARGS --json` with the scenario's root and state; parses stdout and the JSON error. */
  async hostdev(args, { timeoutMs = 90_000, json = true, env } = {}) {
    const argv = [this.bin, ...args, ...this.globals(), ...(json ? ['--json'] : [])];
    const r = await run(process.execPath, [...NODE_FLAGS, ...argv], { timeoutMs, env });
    let out = null;
    if (json && r.code === 0) {
      try {
        out = JSON.parse(r.stdout);
      } catch {
        out = null;
      }
    }
    const error = errorCodeOf(r.stderr);
    this.log(`  $ hostdev ${args.join(' ')} -> ${r.timedOut ? 'TIMEOUT' : `exit ${r.code}`} (${r.ms} ms)${error ? ` ${error.code}: ${error.message}` : ''}`);
    if (r.code !== 0 && !error && !r.timedOut) this.log(`    stderr: ${r.stderr.trim().split('\n').slice(-6).join('\n    ')}`);
    return { ...r, json: out, error, errorCode: error?.code ?? null };
  }

  /** The commands this hostdev build has (from `hostdev --help`), to skip scenarios that need more. */
  async commands() {
    const cached = commandsCache.get(this.bin);
    if (cached) return cached;
    const r = await run(process.execPath, [...NODE_FLAGS, this.bin, '--help'], { timeoutMs: 60_000 });
    const names = new Set();
    let inCommands = false;
    for (const line of r.stdout.split('\n')) {
      if (/^Commands:/.test(line)) inCommands = true;
      else if (inCommands) {
        const m = /^ {2}([a-z][\w-]*)/.exec(line);
        if (m) names.add(m[1]);
      }
    }
    for (const group of ['vf', 'sim']) {
      if (!names.has(group)) continue;
      const sub = await run(process.execPath, [...NODE_FLAGS, this.bin, group, '--help'], { timeoutMs: 60_000 });
      let inSub = false;
      for (const line of sub.stdout.split('\n')) {
        if (/^Commands:/.test(line)) inSub = true;
        else if (inSub) {
          const m = /^ {2}([a-z][\w-]*)/.exec(line);
          if (m) names.add(`${group} ${m[1]}`);
        }
      }
    }
    commandsCache.set(this.bin, names);
    return names;
  }

  async requireCommands(...wanted) {
    // on the host, scenarios mutate the tree through the simulated kernel (`--simulate`, `sim write`)
    if (this.sim) wanted = [...wanted, 'sim write'];
    const have = await this.commands();
    const missing = wanted.filter((c) => !have.has(c));
    if (missing.length) throw new SkipScenario(`hostdev has no ${missing.map((m) => `'${m}'`).join(', ')} yet`);
  }

  /**
   * A raw kernel write, what an admin's `echo VALUE > PATH` does: on Linux a real write (in a child
   * process, since some writes block in the kernel), on the simulator `hostdev sim write`.
   * Returns {ok, errno, timedOut, ms}.
   */
  async kernelWrite(hostPath, value, { timeoutMs = 60_000 } = {}) {
    let r;
    if (this.sim) {
      await this.requireCommands('sim write');
      r = await run(process.execPath, [...NODE_FLAGS, this.bin, 'sim', 'write', hostPath, String(value), '--root', this.root], { timeoutMs });
      const errno = /\b(E[A-Z]{2,})\b/.exec(r.stderr)?.[1] ?? (r.code === 0 ? null : 'EIO');
      r = { ...r, errno: r.code === 0 ? null : errno };
    } else {
      r = await run('sh', ['-c', 'echo "$1" > "$2"', 'sh', String(value), hostPath], { timeoutMs });
      // busybox sh reports "write error: Device or resource busy": map the message to the errno name
      r = { ...r, errno: r.code === 0 ? null : errnoFromMessage(r.stderr) };
    }
    this.log(`  # echo ${value} > ${hostPath} -> ${r.timedOut ? 'still blocked' : r.errno ?? 'ok'} (${r.ms} ms)`);
    return { ok: r.code === 0, errno: r.errno ?? null, timedOut: r.timedOut, ms: r.ms };
  }

  /** Starts a raw kernel write in the background; `.result` resolves when the write returns. */
  kernelWriteBackground(hostPath, value, { timeoutMs = 600_000 } = {}) {
    const started = Date.now();
    const result = this.kernelWrite(hostPath, value, { timeoutMs });
    let done = false;
    result.then(() => (done = true));
    return { result, started, get done() { return done; } };
  }

  /** Simulator only: adds a fault to the tree's shared list (ROOT/.hostdev-sim/faults.json). */
  simFault(fault) {
    const file = this.p('/.hostdev-sim/faults.json');
    const faults = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : [];
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify([...faults, fault]));
  }
  /** Simulator only: lets a blocked write with this fault id go on. */
  simRelease(id) {
    fs.mkdirSync(this.p('/.hostdev-sim/release'), { recursive: true });
    fs.writeFileSync(this.p(`/.hostdev-sim/release/${id}`), '');
  }

  lspciArgs() {
    return this.sim ? ['-A', 'linux-sysfs', '-O', `sysfs.path=${this.p('/sys/bus/pci')}`, '-Dnnk'] : ['-Dnnk'];
  }

  async lspci() {
    const r = await run('lspci', this.lspciArgs(), { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`lspci failed: ${r.stderr}`);
    return r.stdout;
  }

  // ---- reads of the tree (never of a file that may block: callers use readInChild for those)
  driverOf(address) {
    try {
      return path.basename(fs.readlinkSync(this.p(`/sys/bus/pci/devices/${address}/driver`)));
    } catch {
      return null;
    }
  }
  groupOf(address) {
    try {
      return Number(path.basename(fs.readlinkSync(this.p(`/sys/bus/pci/devices/${address}/iommu_group`))));
    } catch {
      return null;
    }
  }
  exists(hostPath) {
    return fs.existsSync(this.p(hostPath));
  }
  read(hostPath) {
    try {
      return fs.readFileSync(this.p(hostPath), 'utf8').trim();
    } catch {
      return null;
    }
  }
  /**
   * A read of a file that may block in the kernel, by `cat` in a child given `timeoutMs`: 'blocks'
   * when it has not answered by then (the child is abandoned: on Linux it stays in D state until the
   * kernel lets go), 'reads' when it answered, 'absent' when the file does not exist.
   */
  async readBounded(hostPath, { timeoutMs = 5_000 } = {}) {
    if (!fs.existsSync(this.p(hostPath))) return 'absent';
    const r = await run('cat', [this.p(hostPath)], { timeoutMs });
    if (r.timedOut) return 'blocks';
    return r.code === 0 ? 'reads' : 'absent';
  }
  devices() {
    try {
      return fs.readdirSync(this.p('/sys/bus/pci/devices')).sort();
    } catch {
      return [];
    }
  }
  vfioNode(group) {
    return group !== null && this.exists(`/dev/vfio/${group}`);
  }
  virtfns(pf) {
    const out = [];
    for (let n = 0; ; n++) {
      try {
        out.push(path.basename(fs.readlinkSync(this.p(`/sys/bus/pci/devices/${pf}/virtfn${n}`))));
      } catch {
        return out;
      }
    }
  }
  /** First function with vendor:device (not a VF unless asked). */
  find(vendor, device, { vf = false } = {}) {
    for (const a of this.devices()) {
      if (this.read(`/sys/bus/pci/devices/${a}/vendor`) !== `0x${vendor}`) continue;
      if (this.read(`/sys/bus/pci/devices/${a}/device`) !== `0x${device}`) continue;
      if (!vf && this.exists(`/sys/bus/pci/devices/${a}/physfn`)) continue;
      return a;
    }
    return null;
  }

  /** Waits (polling) until fn() is truthy or the time is up; returns the last value. */
  async waitFor(fn, { timeoutMs = 15_000, intervalMs = 200 } = {}) {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await fn();
      if (v || Date.now() > end) return v;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  /** Which boot of the rig's guest this is: 1, or 2 when the rig booted it again with files carried over. */
  get boot() {
    return Number(process.env.HOSTDEV_KTEST_BOOT ?? '1');
  }

  /**
   * Carries a file of this guest to the rig's second boot (kernel only): its text is printed on the
   * serial line as HOSTDEV-KTEST-CARRY, and the rig puts it at the same path in the second boot's
   * initramfs, which then runs the scenarios named `then`. What a persistent disk would keep.
   */
  carry(hostPath, text, then) {
    const line = { path: hostPath, mode: 0o644, data: Buffer.from(text, 'utf8').toString('base64'), then };
    process.stdout.write(`HOSTDEV-KTEST-CARRY ${JSON.stringify(line)}\n`);
  }

  // ---- results
  /** Records an observation compared between Linux and the simulator. */
  observe(step, value) {
    this.transcript.push({ step, value });
  }
  check(desc, ok, detail) {
    this.checks.push({ desc, ok: Boolean(ok), ...(detail === undefined ? {} : { detail }) });
    this.log(`  ${ok ? 'PASS' : 'FAIL'}: ${desc}${!ok && detail !== undefined ? ` -- ${typeof detail === 'string' ? detail : JSON.stringify(detail)}` : ''}`);
    return Boolean(ok);
  }
  equal(desc, actual, expected) {
    const ok = JSON.stringify(actual) === JSON.stringify(expected);
    return this.check(desc, ok, ok ? undefined : { actual, expected });
  }
  /** Runs after the scenario, last registered first; onlyOnFailure: skipped when the scenario passed. */
  onCleanup(fn, { onlyOnFailure = false } = {}) {
    this.cleanups.unshift({ fn, onlyOnFailure });
  }
}

const ERRNO_MESSAGES = {
  'Device or resource busy': 'EBUSY',
  'No such device': 'ENODEV',
  'Invalid argument': 'EINVAL',
  'Numerical result out of range': 'ERANGE',
  'Result not representable': 'ERANGE',
  'No such file or directory': 'ENOENT',
  'Inappropriate ioctl for device': 'ENOTTY',
  'Permission denied': 'EACCES',
  'Operation not permitted': 'EPERM',
  'No such device or address': 'ENXIO',
  'Input/output error': 'EIO',
};

export function errnoFromMessage(stderr) {
  for (const [message, name] of Object.entries(ERRNO_MESSAGES)) if (stderr.includes(message)) return name;
  return 'EIO';
}

/** The state tables in a form comparable across runs (sorted, no timestamps). */
export function tablesOf(status) {
  const pick = (e) => ({
    address: e.address,
    ...(e.usedBy ? { usedBy: { driver: e.usedBy.driver, domain: e.usedBy.domain } } : {}),
    managed: e.managed,
    stubDriver: e.stubDriver,
    originalDriver: e.originalDriver,
  });
  const by = (a, b) => (a.address < b.address ? -1 : 1);
  return {
    active: (status?.active ?? []).map(pick).sort(by),
    inactive: (status?.inactive ?? []).map(pick).sort(by),
  };
}
