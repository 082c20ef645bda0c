import { describe, expect, it } from 'vitest';
import { commandLoaders, commandNameIn, loadCommands } from '../../src/cli/commands/index.js';
import { buildProgram } from '../../src/cli/main.js';

const WITH_VALUE = ['--root', '--state-dir'];

describe('loading only the command a run names', () => {
  it('finds the command after global options and their values', () => {
    expect(commandNameIn(['--root', '/tmp/x', '--json', 'list', '--class', 'net'], WITH_VALUE)).toBe('list');
    expect(commandNameIn(['--state-dir', 'status', 'detach', '01:00.0'], WITH_VALUE)).toBe('detach');
    expect(commandNameIn(['vf', 'list', '0000:01:00.0'], WITH_VALUE)).toBe('vf');
  });

  it('loads every command for help, no command or an unknown word', async () => {
    expect(commandNameIn(['--help'], WITH_VALUE)).toBeNull();
    expect(commandNameIn(['frobnicate'], WITH_VALUE)).toBeNull();
    expect(await loadCommands(['--help'], WITH_VALUE)).toHaveLength(Object.keys(commandLoaders).length);
  });

  it('loads one registration for a named command', async () => {
    expect(await loadCommands(['--root', '/', 'groups'], WITH_VALUE)).toHaveLength(1);
  });

  it('reads the value-taking global options off the program, so a value is never taken for a command', async () => {
    const program = await buildProgram(['--state-dir', 'status', 'groups']);
    expect(program.commands.map((command) => command.name())).toEqual(['groups']);
  });
});
