#!/usr/bin/env bash
# Installs npm dependencies when missing and rebuilds dist/ when a source file is newer than it.
# Quiet when there is nothing to do, so it can run before every command.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "hostdev: installing npm dependencies (first use)..."
  # better-sqlite3 is compiled here (its prebuilt binaries are not reachable); node-gyp would download
  # Node's headers unless told where the machine's own are: the prefix of the running node has them.
  if [ -z "${npm_config_nodedir:-}" ] && [ "$(npm config get nodedir 2>/dev/null)" = "undefined" ]; then
    node_prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
    if [ -f "$node_prefix/include/node/common.gypi" ]; then export npm_config_nodedir="$node_prefix"; fi
  fi
  npm ci --no-audit --no-fund --loglevel=error
fi
stamp=dist/.build-stamp
if [ ! -f "$stamp" ] || [ -n "$(find src scripts/bundle-cli.mjs scripts/build-snapshot.mjs scripts/hostdev-launcher.sh tsconfig.json tsconfig.build.json package.json -newer "$stamp" -print -quit)" ]; then
  echo "hostdev: building..."
  # tsc emits even when it reports type errors; those are reported (and fail `npm test`'s type
  # check), but a build with them still runs, so one unfinished module does not stop every command.
  if npx tsc -p tsconfig.build.json; then
    node scripts/bundle-cli.mjs # the CLI as a few files instead of ~60 modules (start-up time)
    chmod +x dist/cli/bin.js # runnable by its #! line too
    node scripts/build-snapshot.mjs # dist/cli/hostdev (the command) and its start-up snapshot
    touch "$stamp"
  else
    echo "hostdev: the build reported type errors (see above)" >&2
    node scripts/bundle-cli.mjs || true
    node scripts/build-snapshot.mjs || true
  fi
elif [ -f dist/cli/hostdev.blob.node ] && { [ "$(command -v node)" -nt dist/cli/hostdev.blob.node ] || [ "$(command -v node)" -ot dist/cli/hostdev.blob.node ]; }; then
  # Another node than the one the start-up snapshot was built by (dist/cli/hostdev runs the plain bundle
  # meanwhile). A snapshot that could not be built leaves no stamp: not tried again on every run.
  node scripts/build-snapshot.mjs
fi
bash scripts/build-native.sh
