import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CLI_BIN } from '../support/cli.js';

const LAUNCHER = fileURLToPath(new URL('../../hostdev', import.meta.url));
/** Node.js 20 warns at start-up, before any script runs, when it cannot load this file. */
const MISSING_CA_FILE = '/nonexistent/hostdev-test-ca.pem';

function helpWithExtraCaCerts(file: string, args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(file, [...args, '--help'], {
    encoding: 'utf8',
    env: { ...process.env, NODE_EXTRA_CA_CERTS: MISSING_CA_FILE },
    timeout: 60_000,
  });
  if (run.error) throw run.error;
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe('how hostdev starts Node.js', () => {
  it('a plain `node bin.js` does load NODE_EXTRA_CA_CERTS at start-up (what the launchers avoid)', () => {
    const run = helpWithExtraCaCerts(process.execPath, [CLI_BIN]);
    expect(run.status).toBe(0);
    expect(run.stderr).toContain(MISSING_CA_FILE);
  });

  it('the installed command (dist/cli/bin.js run by its #! line) starts without it', () => {
    accessSync(CLI_BIN, constants.X_OK);
    const run = helpWithExtraCaCerts(CLI_BIN, []);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('Usage: hostdev');
    expect(run.stderr).not.toContain(MISSING_CA_FILE);
  });

  it('the checkout launcher ./hostdev starts without it', () => {
    const run = helpWithExtraCaCerts(LAUNCHER, []);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('Usage: hostdev');
    expect(run.stderr).not.toContain(MISSING_CA_FILE);
  });
});
