import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN, runCli, type CliRun } from '../support/cli.js';

/**
 * Every `hostdev` (or `./hostdev`) line of README.md's example blocks, in README's order, against a
 * simulated workstation, each expected to succeed (exit 0), as README says they do. Synopses are
 * made concrete by README's own rules: `[...]` left out, the first of `a|b` or `A | B`, and the
 * capitals replaced by values of the tree (commands that need a live QEMU or kubelet have their
 * options checked against their --help). A command without --root gets `--root TREE --simulate`
 * (never this machine's /sys); /tmp/host, /tmp/host-state and /tmp/copy become temporary paths.
 */
const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const PF = '0000:02:00.0';
const VF = '0000:02:10.0';
const VALUES: Record<string, string> = { 'ADDRESS...': VF, ADDRESS: VF, VF, PF, N: '2', MS: '5000' };

/**
 * Commands that need a live peer (a VM's QMP socket, a kubelet) or serve until stopped on sockets
 * of their own (the daemon): checked against their --help instead (their own tests run them).
 */
const NEEDS_A_PEER = new Set(['hotplug', 'unplug', 'kubelet-plugin', 'daemon']);

let dir = '';
let tree = '';

/** The command lines of README's indented blocks, with their line numbers. */
function readmeCommands(): Array<{ line: number; text: string }> {
  return README.split('\n')
    .map((text, index) => ({ line: index + 1, text }))
    .filter(({ text }) => /^ {4}(\.\/)?hostdev /.test(text))
    .map(({ line, text }) => ({ line, text: text.trim().replace(/\s{2,}#.*$/, '') }));
}

/** argv for one README line, made concrete (see above). */
function concrete(text: string): string[] {
  let line = text.replace(/^\.\/hostdev /, 'hostdev ');
  while (/\[[^[\]]*\]/.test(line)) line = line.replace(/\s*\[[^[\]]*\]/g, '');
  line = line.split(' | ')[0]!;
  const paths: Record<string, string> = {
    '/tmp/host-state': path.join(dir, 'host-state'),
    '/tmp/host': path.join(dir, 'host'),
    '/tmp/copy': path.join(dir, 'copy'),
  };
  const argv = line
    .split(/\s+/)
    .slice(1)
    .map((word) => word.split('|')[0]!)
    .map((word) => VALUES[word] ?? Object.entries(paths).reduce((out, [from, to]) => out.replace(from, to), word));
  return argv.includes('--root') ? argv : ['--root', tree, '--simulate', ...argv];
}

/** `watch` runs until Ctrl-C: it is stopped with SIGINT after it has started, and must exit 0. */
function runUntilInterrupted(argv: readonly string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_BIN, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (stderr.includes('Ctrl-C stops')) child.kill('SIGINT');
    });
    const bound = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(bound);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'hostdev-readme-'));
  tree = path.join(dir, 'workstation');
  expect(runCli(['sim', 'create', tree, '--preset', 'workstation']).code).toBe(0);
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("README's examples", () => {
  it('are found: the synopses and the rehearsal', () => {
    const texts = readmeCommands().map((command) => command.text);
    expect(texts.length).toBeGreaterThanOrEqual(20);
    expect(texts).toContain('hostdev --root /tmp/host --simulate assign --domain vm1 0000:02:10.0');
  });

  it('each does what README says (exit 0), in README order', async () => {
    for (const { line, text } of readmeCommands()) {
      const command = text.replace(/^(\.\/)?hostdev /, '').split(' ')[0]!;
      if (NEEDS_A_PEER.has(command)) {
        // Nothing to talk to (or a server) here: every option the line names must be the command's own.
        const help = runCli([command, '--help']);
        expect(help.code, `README.md:${line}: ${command} --help`).toBe(0);
        for (const option of text.replace(/\s{2,}#.*$/, '').match(/--[a-z-]+/g) ?? []) {
          expect(help.stdout, `README.md:${line}: ${option} is not an option of ${command}`).toContain(option);
        }
        continue;
      }
      const argv = concrete(text);
      const run = argv.includes('watch') ? await runUntilInterrupted(argv) : runCli(argv);
      expect(run.code, `README.md:${line}: ${text}\n  ran: hostdev ${argv.join(' ')}\n${run.stderr}`).toBe(0);
    }
    // The rehearsal's last line: the VF left the host, so vm1's entry was pruned.
    const status = runCli(['--root', path.join(dir, 'host'), '--simulate', 'status', '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ active: [] });
  }, 240_000);
});
