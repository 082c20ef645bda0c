import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { HostdevService } from '../../src/service/hostdev-service.js';
import { createSimulatedHost, simulatedHost } from '../../src/sim-entry.js';

/** A simulated host of `preset` with a HostdevService on it, made afresh for each test of the file. */
export interface SimService {
  root: string;
  stateDir: string;
  host: ReturnType<typeof simulatedHost>;
  service: HostdevService;
  /** Opens a service again on the same host and state (after the test closed it). */
  open(): Promise<void>;
  /** Closes the service and opens it again (what a restart does). */
  reopen(): Promise<void>;
}

/** Registers the hooks; read the fields inside tests (they change for each one). */
export function simServicePerTest(prefix: string, preset: string): SimService {
  let base = '';
  const current = {
    root: '',
    stateDir: '',
    host: undefined as unknown as SimService['host'],
    service: undefined as unknown as HostdevService,
    async open(): Promise<void> {
      current.host = simulatedHost(current.root);
      current.service = await HostdevService.open({ ...current.host, stateDir: current.stateDir });
    },
    async reopen(): Promise<void> {
      current.service.close();
      await current.open();
    },
  };
  beforeEach(async () => {
    base = mkdtempSync(path.join(tmpdir(), prefix));
    current.root = path.join(base, 'host');
    current.stateDir = path.join(base, 'state');
    createSimulatedHost(current.root, { preset });
    await current.open();
  });
  afterEach(() => {
    current.service.close();
    rmSync(base, { recursive: true, force: true });
  });
  return current;
}
