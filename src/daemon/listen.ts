import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { HostdevError } from '../core/errors.js';

export const DEFAULT_SOCKET_DIR = '/run/hostdev';
export const SOCKET_FILE = 'hostdev.sock';
export const READ_ONLY_SOCKET_FILE = 'hostdev-ro.sock';
/** The group that may use hostdev.sock, when the host has it. */
export const SOCKET_GROUP = 'hostdev';
/** systemd passes activated sockets from fd 3 on. */
const SD_LISTEN_FDS_START = 3;

/** Gets every connection a listener accepts, with whether it came in on the read-only socket. */
export type OnConnection = (socket: net.Socket, readOnly: boolean) => void;

export interface Listener {
  readonly server: net.Server;
  readonly path: string;
  readonly readOnly: boolean;
}

/** The gid of a group named in /etc/group, or null. */
export function groupId(name: string, groupFile = '/etc/group'): number | null {
  let text: string;
  try {
    text = fs.readFileSync(groupFile, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const [group, , gid] = line.split(':');
    if (group === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return null;
}

function listening(server: net.Server, target: string | { fd: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(target, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Whether something accepts connections on the unix socket at `file`. */
function answers(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(file);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Makes `file` free for a new socket: a socket file nobody answers on (a daemon that died) is
 * removed; a live one, or a file that is not a socket, is refused.
 */
async function claimSocketPath(file: string): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(file);
  } catch {
    return;
  }
  if (!stat.isSocket()) {
    throw new HostdevError('HOSTDEV_USAGE', `${file} exists and is not a socket; the daemon will not replace it`, {
      hint: 'Move the file aside, or give the daemon another --socket-dir.',
      details: { path: file },
    });
  }
  if (await answers(file)) {
    throw new HostdevError('HOSTDEV_USAGE', `another hostdev daemon already answers on ${file}`, {
      hint: 'Stop it first (systemctl stop hostdev.service, or kill its pid), or give this daemon another --socket-dir.',
      details: { path: file },
    });
  }
  fs.unlinkSync(file);
}

/** Binds both sockets in `dir`: hostdev.sock 0660 (group hostdev if it exists), hostdev-ro.sock 0666. */
export async function listenOnDir(dir: string, onConnection: OnConnection): Promise<Listener[]> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const gid = groupId(SOCKET_GROUP);
  const listeners: Listener[] = [];
  try {
    for (const [name, mode, readOnly] of [
      [SOCKET_FILE, 0o660, false],
      [READ_ONLY_SOCKET_FILE, 0o666, true],
    ] as const) {
      const file = path.join(dir, name);
      await claimSocketPath(file);
      const server = net.createServer((socket) => onConnection(socket, readOnly));
      await listening(server, file);
      listeners.push({ server, path: file, readOnly });
      fs.chmodSync(file, mode);
      if (gid !== null && !readOnly) fs.chownSync(file, process.getuid?.() ?? 0, gid);
    }
  } catch (error) {
    await closeListeners(listeners);
    throw error;
  }
  return listeners;
}

/**
 * The sockets systemd passed (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES), or null when this process
 * was not socket-activated. A socket is the read-only one when its name says `hostdev-ro` or its
 * path ends in hostdev-ro.sock. The variables are removed so that children do not inherit them.
 */
export async function activatedListeners(onConnection: OnConnection, env: NodeJS.ProcessEnv = process.env): Promise<Listener[] | null> {
  if (env['LISTEN_PID'] !== String(process.pid)) return null;
  const count = Number(env['LISTEN_FDS'] ?? '0');
  if (!Number.isInteger(count) || count <= 0) return null;
  const names = (env['LISTEN_FDNAMES'] ?? '').split(':');
  delete env['LISTEN_PID'];
  delete env['LISTEN_FDS'];
  delete env['LISTEN_FDNAMES'];
  const listeners: Listener[] = [];
  for (let index = 0; index < count; index++) {
    const listener = { server: net.createServer((socket) => onConnection(socket, listener.readOnly)), path: '', readOnly: false };
    const fd = SD_LISTEN_FDS_START + index;
    await listening(listener.server, { fd });
    listener.path = boundPath(fd) ?? '';
    listener.readOnly = names[index] === 'hostdev-ro' || path.basename(listener.path) === READ_ONLY_SOCKET_FILE;
    listeners.push(listener);
  }
  return listeners;
}

/**
 * The path a unix socket fd is bound to, from /proc/net/unix by the socket's inode (Node.js does
 * not tell it for a server listening on an fd); null when it cannot be told.
 */
export function boundPath(fd: number, proc = '/proc'): string | null {
  try {
    const inode = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(path.join(proc, 'self/fd', String(fd))))?.[1];
    if (inode === undefined) return null;
    for (const line of fs.readFileSync(path.join(proc, 'net/unix'), 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[6] === inode && fields[7] !== undefined) return fields[7];
    }
  } catch {
    return null;
  }
  return null;
}

export async function closeListeners(listeners: readonly Listener[]): Promise<void> {
  await Promise.all(listeners.map((listener) => new Promise<void>((resolve) => listener.server.close(() => resolve()))));
}
