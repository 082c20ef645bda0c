// QEMU inside the guest as the VM that uses what hostdev prepared: started paused (-S) with exactly
// the arguments `hostdev qemu-args --domain NAME --json` printed, spoken to over QMP.
import fs from 'node:fs';
import net from 'node:net';
import { spawn } from 'node:child_process';

const QEMU = '/usr/bin/qemu-system-x86_64';

/** Sends QMP commands in order over a fresh connection; resolves with their replies (or errors). */
export function qmp(socket, commands, { timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const replies = [];
    const queue = [{ execute: 'qmp_capabilities' }, ...commands];
    let buffer = '';
    let current = null;
    const conn = net.connect(socket);
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`QMP timeout after ${timeoutMs} ms (${replies.length} replies)`));
    }, timeoutMs);
    const next = () => {
      current = queue.shift() ?? null;
      if (current === null) {
        clearTimeout(timer);
        conn.end();
        resolve(replies.slice(1));
        return;
      }
      conn.write(`${JSON.stringify(current)}\n`);
    };
    conn.setEncoding('utf8');
    conn.on('data', (chunk) => {
      buffer += chunk;
      let i;
      while ((i = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, i).trim();
        buffer = buffer.slice(i + 1);
        if (!line) continue;
        const msg = JSON.parse(line);
        if (msg.QMP) next();
        else if (msg.event) continue;
        else {
          replies.push(msg);
          next();
        }
      }
    });
    conn.on('error', (error) => {
      clearTimeout(timer);
      // 'quit' closes the socket as it answers
      if (current?.execute === 'quit') resolve(replies.slice(1));
      else reject(error);
    });
    conn.on('close', () => {
      clearTimeout(timer);
      if (current?.execute === 'quit' || current === null) resolve(replies.slice(1));
    });
  });
}

export function qemuAvailable() {
  return fs.existsSync(QEMU);
}

/**
 * Starts QEMU (paused unless told otherwise) with the given device arguments. Resolves once QMP answers (the devices are
 * realized by then: vfio-pci opened the groups) or QEMU exited (then `exited` holds its status).
 */
export async function startQemu(name, deviceArgs, { memory = 64, paused = true, extra = [] } = {}) {
  const socket = `/tmp/qmp-${name}.sock`;
  fs.rmSync(socket, { force: true });
  const argv = ['-name', name, '-M', 'q35', '-accel', 'tcg', '-nodefaults', '-display', 'none', ...(paused ? ['-S'] : []),
    '-m', String(memory), '-qmp', `unix:${socket},server=on,wait=off`, ...extra, ...deviceArgs];
  const child = spawn(QEMU, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const vm = { name, socket, child, argv, output: '', exited: null };
  child.stdout.setEncoding('utf8').on('data', (d) => (vm.output += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (vm.output += d));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve((vm.exited = { code, signal }))));
  vm.waitExit = (ms) => Promise.race([exited, new Promise((r) => setTimeout(() => r(null), ms))]);
  const end = Date.now() + 120_000;
  while (vm.exited === null && Date.now() < end) {
    if (fs.existsSync(socket)) {
      try {
        await qmp(socket, [{ execute: 'query-status' }], { timeoutMs: 20_000 });
        return vm;
      } catch {
        /* not listening yet */
      }
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return vm;
}

/** The files a process holds open whose path passes `test`, sorted. */
export function openFiles(pid, test) {
  const out = [];
  try {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      try {
        const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (test(target)) out.push(target);
      } catch {
        /* closed meanwhile */
      }
    }
  } catch {
    /* process gone */
  }
  return out.sort();
}

/** The vfio files a process holds open (group nodes and device fds). */
export function vfioFds(pid) {
  return openFiles(pid, (target) => target.includes('vfio'));
}

/** QMP quit, SIGKILL if that does not end it within 20 s. */
export async function stopQemu(vm) {
  if (vm.exited) return vm.exited;
  try {
    await qmp(vm.socket, [{ execute: 'quit' }], { timeoutMs: 10_000 });
  } catch {
    /* killed below */
  }
  if ((await vm.waitExit(20_000)) === null) {
    vm.child.kill('SIGKILL');
    await vm.waitExit(20_000);
  }
  return vm.exited;
}
