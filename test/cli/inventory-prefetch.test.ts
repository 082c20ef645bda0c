import { describe, expect, it } from 'vitest';
import { scanArgv, VALUE_OPTIONS } from '../../src/cli/inventory-prefetch.js';
import { globalOptionsWithValue, programFrame } from '../../src/cli/main.js';

describe('the head start of the bounded reader reads argv like main.ts does', () => {
  it('knows the same value-taking global options as the program', () => {
    expect([...VALUE_OPTIONS].sort()).toEqual(globalOptionsWithValue(programFrame()).sort());
  });

  it('finds the command and --root before or after it', () => {
    expect(scanArgv(['list', '--json'])).toEqual({ command: 'list', root: '/' });
    expect(scanArgv(['--root', '/tmp/h', 'list'])).toEqual({ command: 'list', root: '/tmp/h' });
    expect(scanArgv(['show', '01:00.0', '--root', '/tmp/h'])).toEqual({ command: 'show', root: '/tmp/h' });
    expect(scanArgv(['--root=/tmp/h', 'groups'])).toEqual({ command: 'groups', root: '/tmp/h' });
  });

  it('does not take the value of --state-dir or --root for the command', () => {
    expect(scanArgv(['--state-dir', 'list', 'status'])).toEqual({ command: 'status', root: '/' });
    expect(scanArgv(['--root', 'list'])).toBeNull();
  });

  it('gives up on anything unusual', () => {
    expect(scanArgv([])).toBeNull();
    expect(scanArgv(['--', 'list'])).toBeNull();
  });
});
