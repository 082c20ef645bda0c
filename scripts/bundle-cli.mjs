// Bundles the CLI that tsc emitted (dist/cli/bin.js and what it imports) into a few files in dist/cli/:
// bin.js, one chunk with the code every command shares (commander included) and one chunk per part
// loaded only on demand (the daemon, the kubelet plugin, the simulator's spec and fault parsers with
// zod). Loading ~60 small ES modules costs more start-up time than one larger file; see
// bench/startup.ts. npm packages other than commander stay external (better-sqlite3 has a native
// binding; fastify, grpc, pino and zod load only in the chunks that need them).
//
// Run after tsc (scripts/ensure-built.sh, npm run build). bin.js is replaced last, so an interrupted run
// leaves tsc's own bin.js, which works unbundled. Without rolldown (a dev dependency) tsc's output is
// what runs.
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cliDir = path.join(repo, 'dist/cli');
const entry = path.join(cliDir, 'bin.js');
const MARK = '// bundled by scripts/bundle-cli.mjs';
const CHUNK = /^chunk-.*\.js$/;

const source = readFileSync(entry, 'utf8');
if (source.includes(MARK)) process.exit(0); // already the bundle of this tsc output

let rolldown;
try {
  rolldown = await import('rolldown');
} catch {
  console.error('hostdev: rolldown is not installed: the CLI runs unbundled (slower to start)');
  process.exit(0);
}

const packageJson = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8'));
const externalPackages = Object.keys(packageJson.dependencies).filter((name) => name !== 'commander');
const builtins = new Set(builtinModules);
const isExternal = (id) =>
  id.startsWith('node:') || builtins.has(id) || externalPackages.some((name) => id === name || id.startsWith(`${name}/`));
// The layers every command may need; not bin.js itself (it awaits main, which would wait on itself),
// nor a module that imports a package only some runs need (it would load that package on every run:
// test/cli/bundle.test.ts says which are loaded).
const SHARED = /\/dist\/(core|platform|sysfs|state|net|host|events|qmp|manager|service|cli)\/|\/node_modules\/commander\//;
const ON_DEMAND = /\/dist\/cli\/(nodedev-xml|domain-xml)\.js$/;

const out = mkdtempSync(path.join(repo, 'dist/.bundle-'));
try {
  await rolldown.build({
    input: { bin: entry },
    platform: 'node',
    external: isExternal,
    logLevel: 'silent',
    output: {
      dir: out,
      format: 'esm',
      chunkFileNames: 'chunk-[name]-[hash].js',
      codeSplitting: { groups: [{ name: 'hostdev', test: (id) => id !== entry && SHARED.test(id) && !ON_DEMAND.test(id) }] },
    },
  });
  const bundled = readFileSync(path.join(out, 'bin.js'), 'utf8');
  const [shebang, ...rest] = bundled.split('\n');
  if (!shebang.startsWith('#!')) throw new Error('the bundled bin.js lost its #! line');
  for (const old of readdirSync(cliDir).filter((name) => CHUNK.test(name))) rmSync(path.join(cliDir, old));
  for (const chunk of readdirSync(out).filter((name) => CHUNK.test(name))) renameSync(path.join(out, chunk), path.join(cliDir, chunk));
  writeFileSync(`${entry}.tmp`, [shebang, MARK, ...rest].join('\n'));
  chmodSync(`${entry}.tmp`, 0o755);
  renameSync(`${entry}.tmp`, entry);
} finally {
  if (existsSync(out)) rmSync(out, { recursive: true, force: true });
}
