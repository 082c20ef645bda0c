import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { qmpHolderLife } from '../../src/manager/holders.js';
import { QmpClient } from '../../src/qmp/qmp-client.js';
import { qemuMissing, startQemu, type RunningQemu } from '../support/qemu.js';

/** Connects until the socket's backlog is full: resolves with the open sockets and the error code that ended it. */
async function fillBacklog(socketPath: string, most = 64): Promise<{ sockets: Socket[]; code: string | null }> {
  const sockets: Socket[] = [];
  for (let i = 0; i < most; i++) {
    const code = await new Promise<string | null>((resolve) => {
      const s = connect(socketPath);
      s.once('connect', () => {
        sockets.push(s);
        resolve(null);
      });
      s.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
    if (code !== null) return { sockets, code };
  }
  return { sockets, code: null };
}

describe.skipIf(qemuMissing !== null)('the QMP holder probe against a real QEMU whose monitor another client holds', () => {
  let qemu: RunningQemu | null = null;
  let client: QmpClient | null = null;
  let waiting: Socket[] = [];
  afterEach(async () => {
    for (const s of waiting) s.destroy();
    waiting = [];
    client?.close();
    client = null;
    await qemu?.stop();
    qemu = null;
  });

  it('a monitor whose backlog is full (connect fails with EAGAIN) is not known to be gone: alive null', async () => {
    qemu = await startQemu();
    client = await QmpClient.connect(qemu.socket);
    const filled = await fillBacklog(qemu.socket);
    waiting = filled.sockets;
    expect(filled.code).toBe('EAGAIN');
    const life = await qmpHolderLife(qemu.socket, 500);
    expect(life.alive).toBeNull();
    expect(life.reason).toMatch(/EAGAIN/);
    // the holder's own connection still works: QEMU lives
    expect(await client.execute<{ status: string }>('query-status')).toMatchObject({ status: 'prelaunch' });
  });

  it('a QEMU that quit is gone', async () => {
    qemu = await startQemu();
    const socket = qemu.socket;
    await qemu.stop();
    qemu = null;
    expect((await qmpHolderLife(socket, 500)).alive).toBe(false);
  });
});
