import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

describe('the hostdev CLI frame', () => {
  it('prints help and exits 0', () => {
    const run = runCli(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage: hostdev');
  });

  it('refuses an unknown command with the usage exit code 2', () => {
    const run = runCli(['no-such-command']);
    expect(run.code).toBe(2);
  });
});
