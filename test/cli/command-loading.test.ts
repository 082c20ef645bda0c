import { describe, expect, it } from 'vitest';
import { commandLoaders, commandNameIn, loadCommands } from '../../src/cli/commands/index.js';

describe('loading only the command a run names', () => {
  it('finds the command after global options and their values', () => {
    expect(commandNameIn(['--root', '/tmp/x', '--json', 'list', '--class', 'net'])).toBe('list');
    expect(commandNameIn(['--state-dir', 'status', 'detach', '01:00.0'])).toBe('detach');
    expect(commandNameIn(['vf', 'list', '0000:01:00.0'])).toBe('vf');
  });

  it('loads every command for help, no command or an unknown word', async () => {
    expect(commandNameIn(['--help'])).toBeNull();
    expect(commandNameIn(['frobnicate'])).toBeNull();
    expect(await loadCommands(['--help'])).toHaveLength(Object.keys(commandLoaders).length);
  });

  it('loads one registration for a named command', async () => {
    expect(await loadCommands(['--root', '/', 'groups'])).toHaveLength(1);
  });
});
