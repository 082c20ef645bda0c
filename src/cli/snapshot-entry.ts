import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startupSnapshot } from 'node:v8';
import { buildProgram, main } from './main.js';
import { startCli } from './start.js';

/**
 * The entry of the CLI's V8 start-up snapshot: scripts/build-snapshot.mjs bundles it into one script and
 * runs `node --build-snapshot` on it; dist/cli/hostdev runs `node --snapshot-blob dist/cli/hostdev.blob --
 * ARGS`. Every module of the CLI is loaded and every command registered once while the snapshot is built,
 * so a run starts with them in the heap instead of parsing and running them again.
 */

/** scripts/build-snapshot.mjs makes the modules' import.meta.url read this global (set when a run starts). */
const MODULE_URL = Symbol.for('hostdev.snapshot.moduleUrl');

/**
 * The blob the run was started with, taken out of process.execArgv: a process the CLI forks (the watch's
 * sysfs snapshot worker) inherits execArgv, and would run this snapshot instead of its own script.
 */
function takeBlobArgument(): string | undefined {
  const args = process.execArgv;
  const at = args.indexOf('--snapshot-blob');
  if (at >= 0) return args.splice(at, 2)[1];
  const joined = args.findIndex((arg) => arg.startsWith('--snapshot-blob='));
  return joined >= 0 ? args.splice(joined, 1)[0]!.slice('--snapshot-blob='.length) : undefined;
}

/**
 * The URL the modules take as their own: dist/cli/bin.js beside the blob (where the bundle's modules are),
 * so a dist/ moved after the build still finds its package.json and helpers.
 */
function moduleUrl(blob: string | undefined): string | undefined {
  return blob === undefined ? undefined : pathToFileURL(path.join(path.dirname(path.resolve(blob)), 'bin.js')).href;
}

// While the snapshot is built: every command module loaded and registered, its help laid out once (the
// functions a run needs first are then compiled in the snapshot). The program itself is dropped.
void buildProgram([]).then((program) => {
  program.helpInformation();
  for (const command of program.commands) command.helpInformation();
});

startupSnapshot.setDeserializeMainFunction(() => {
  (globalThis as Record<symbol, unknown>)[MODULE_URL] = moduleUrl(takeBlobArgument());
  // `node --snapshot-blob BLOB -- ARGS`: argv is [node, ...ARGS].
  startCli(process.argv.slice(1), () => Promise.resolve(main));
});
