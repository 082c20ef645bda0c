// Builds the CLI's V8 start-up snapshot for the node that runs this script: dist/cli/hostdev.blob, made
// from dist/cli/snapshot-entry.js (tsc's) bundled into one CommonJS script (dist/cli/hostdev-snapshot.cjs:
// `node --build-snapshot` takes a single script, no module loading), and dist/cli/hostdev.blob.node, an
// empty file with the modification time of that node binary. Also installs the launcher dist/cli/hostdev
// (scripts/hostdev-launcher.sh), which runs the blob when the node on PATH is that binary and the plain
// bundle (dist/cli/bin.js) otherwise. See bench/startup.ts for what the snapshot saves.
//
// Not fatal: without rolldown or when the snapshot cannot be built, the launcher runs the plain bundle.
// Run after scripts/bundle-cli.mjs (npm run build, scripts/ensure-built.sh).
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cliDir = path.join(repo, 'dist/cli');
const entry = path.join(cliDir, 'snapshot-entry.js');
const script = path.join(cliDir, 'hostdev-snapshot.cjs');
const blob = path.join(cliDir, 'hostdev.blob');
const stamp = `${blob}.node`;

const launcher = path.join(cliDir, 'hostdev');
copyFileSync(path.join(repo, 'scripts/hostdev-launcher.sh'), `${launcher}.tmp`);
chmodSync(`${launcher}.tmp`, 0o755);
renameSync(`${launcher}.tmp`, launcher);

// Until a new blob is in place, the launcher runs the plain bundle.
rmSync(stamp, { force: true });
rmSync(blob, { force: true });

function giveUp(why) {
  console.error(`hostdev: no start-up snapshot (${why}): the CLI starts from dist/cli/bin.js (slower)`);
  process.exit(0);
}

let rolldown;
try {
  rolldown = await import('rolldown');
} catch {
  giveUp('rolldown is not installed');
}
if (!existsSync(entry)) giveUp(`${path.relative(repo, entry)} was not built`);

// The built-in modules Node.js 20 supports in a snapshot builder script (lib/internal/main/mksnapshot.js);
// the others (child_process, module, net, http, ...) are taken with process.getBuiltinModule when the module
// that imports them first runs, not required by the builder.
const SNAPSHOT_BUILTINS = new Set([
  'assert', 'assert/strict', 'buffer', 'console', 'constants', 'crypto', 'diagnostics_channel', 'dns', 'events', 'fs',
  'fs/promises', 'os', 'path', 'path/posix', 'path/win32', 'process', 'punycode', 'querystring', 'stream',
  'stream/promises', 'string_decoder', 'timers', 'timers/promises', 'url', 'util', 'util/types', 'v8', 'zlib',
]);
const builtins = new Set(builtinModules);
const bare = (id) => id.replace(/^node:/, '');
const packageJson = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8'));
const packages = Object.keys(packageJson.dependencies).filter((name) => name !== 'commander');
const isPackage = (id) => packages.some((name) => id === name || id.startsWith(`${name}/`));
// snapshot-entry.ts sets this global when a run starts; the build-time file stands in while the snapshot is built.
const moduleUrl = `(globalThis[Symbol.for('hostdev.snapshot.moduleUrl')] ?? ${JSON.stringify(pathToFileURL(path.join(cliDir, 'bin.js')).href)})`;
const LAZY = '\0hostdev-lazy:';

const snapshotModules = {
  name: 'hostdev-snapshot-modules',
  resolveId(id) {
    // npm packages (better-sqlite3's native binding among them) cannot be required by the builder: each is
    // required from dist/cli/ when the module that imports it first runs (the bundle's modules run lazily).
    if (isPackage(id) || (builtins.has(bare(id)) && !SNAPSHOT_BUILTINS.has(bare(id)))) return LAZY + id;
    return null;
  },
  load(id) {
    if (!id.startsWith(LAZY)) return null;
    const name = id.slice(LAZY.length);
    if (!isPackage(name)) return `module.exports = process.getBuiltinModule(${JSON.stringify(name)});`;
    return `module.exports = process.getBuiltinModule('node:module').createRequire(${moduleUrl})(${JSON.stringify(name)});`;
  },
  transform(code, id) {
    return code.includes('import.meta.url') ? { code: code.replaceAll('import.meta.url', moduleUrl), map: null } : null;
  },
};

try {
  const bundle = await rolldown.rolldown({
    input: entry,
    platform: 'node',
    logLevel: 'silent',
    plugins: [snapshotModules],
    external: (id) => builtins.has(bare(id)) && SNAPSHOT_BUILTINS.has(bare(id)),
  });
  await bundle.write({ file: script, format: 'cjs', codeSplitting: false });
  await bundle.close();
} catch (error) {
  giveUp(`bundling failed: ${error}`);
}

const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;
const build = spawnSync(process.execPath, ['--snapshot-blob', `${blob}.tmp`, '--build-snapshot', script], { cwd: cliDir, env, encoding: 'utf8' });
if (build.status !== 0) {
  rmSync(`${blob}.tmp`, { force: true });
  giveUp(`node --build-snapshot failed: ${build.stderr.trim()}`);
}
// A blob that cannot answer --version is not installed.
const check = spawnSync(process.execPath, ['--snapshot-blob', `${blob}.tmp`, '--', '--version'], { env, encoding: 'utf8' });
if (check.status !== 0 || check.stdout.trim() !== packageJson.version) {
  rmSync(`${blob}.tmp`, { force: true });
  giveUp(`the snapshot does not run: ${check.stderr.trim() || check.stdout.trim()}`);
}
renameSync(`${blob}.tmp`, blob);
writeFileSync(stamp, '');
const touch = spawnSync('touch', ['-r', process.execPath, stamp]);
if (touch.status !== 0) {
  rmSync(stamp, { force: true });
  giveUp('touch -r failed');
}
