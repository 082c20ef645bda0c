import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HostdevClient } from '../../src/index.js';
import { cleanUpAfterEach, cli, daemonHost, startTestDaemon } from './daemon-host.js';

cleanUpAfterEach();

const VF = '0000:01:10.0';


describe('HostdevClient (package root) against a daemon', () => {
  it('reads and changes as the CLI --json does, and throws the catalog error the daemon sent', async () => {
    const host = daemonHost();
    await startTestDaemon(host);
    const client = await HostdevClient.connect({ socketPath: host.socket });
    expect(client).not.toBeNull();
    try {
      expect((await client!.list()).report).toEqual(cli(host, ['list']));
      expect((await client!.show(`pci:${VF}`)).report).toEqual(cli(host, ['show', VF]));
      const dry = await client!.assign({ domain: 'vm1', devices: [VF] }, { dryRun: true });
      expect(dry.result).toEqual(cli(host, ['assign', '--domain', 'vm1', VF, '--dry-run']));
      // A 202 is followed to the end.
      const done = await client!.assign({ domain: 'vm1', devices: [VF] }, { waitMs: 0 });
      expect(done).toMatchObject({ state: 'completed', kind: 'assign' });
      expect((await client!.qemuArgs({ domain: 'vm1' })).report).toEqual(cli(host, ['qemu-args', '--domain', 'vm1']));
      const refused = await client!.assign({ domain: 'vm2', devices: [VF] }).catch((error: unknown) => error);
      expect(refused).toMatchObject({ name: 'HostdevError', code: 'HOSTDEV_IN_USE', exitCode: 4, details: { owner: { domain: 'vm1' } } });
      expect(await client!.operation(done.id!)).toEqual(done);
      expect((await client!.release({ domain: 'vm1' })).state).toBe('completed');
      const ro = new HostdevClient({ socketPath: host.roSocket });
      await expect(ro.detach(VF)).rejects.toMatchObject({ code: 'HOSTDEV_READ_ONLY', exitCode: 2 });
      ro.close();
    } finally {
      client!.close();
    }
  });

  it('connect() is null when no daemon answers on the socket', async () => {
    const host = daemonHost();
    expect(await HostdevClient.connect({ socketPath: path.join(host.base, 'none.sock') })).toBeNull();
  });
});
