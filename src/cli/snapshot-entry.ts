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
 * The URL the modules take as their own: dist/cli/bin.js beside the blob the run was started with (where the
 * bundle's modules are), so a dist/ moved after the build still finds its package.json and helpers.
 */
function moduleUrl(): string | undefined {
  const args = process.execArgv;
  const at = args.indexOf('--snapshot-blob');
  const blob = at >= 0 ? args[at + 1] : args.find((arg) => arg.startsWith('--snapshot-blob='))?.slice('--snapshot-blob='.length);
  return blob === undefined ? undefined : pathToFileURL(path.join(path.dirname(path.resolve(blob)), 'bin.js')).href;
}

// While the snapshot is built: every command module loaded and registered, its help laid out once (the
// functions a run needs first are then compiled in the snapshot). The program itself is dropped.
void buildProgram([]).then((program) => {
  program.helpInformation();
  for (const command of program.commands) command.helpInformation();
});

startupSnapshot.setDeserializeMainFunction(() => {
  (globalThis as Record<symbol, unknown>)[MODULE_URL] = moduleUrl();
  // `node --snapshot-blob BLOB -- ARGS`: argv is [node, ...ARGS].
  startCli(process.argv.slice(1), () => Promise.resolve(main));
});
