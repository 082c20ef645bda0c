#!/usr/bin/env bash
# Installs npm dependencies when missing and rebuilds dist/ when a source file is newer than it.
# Quiet when there is nothing to do, so it can run before every command.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "hostdev: installing npm dependencies (first use)..."
  npm ci --no-audit --no-fund --loglevel=error
fi
stamp=dist/.build-stamp
if [ ! -f "$stamp" ] || [ -n "$(find src tsconfig.json tsconfig.build.json package.json -newer "$stamp" -print -quit)" ]; then
  echo "hostdev: building..."
  # tsc emits even when it reports type errors; those are reported (and fail `npm test`'s type
  # check), but a build with them still runs, so one unfinished module does not stop every command.
  if npx tsc -p tsconfig.build.json; then
    chmod +x dist/cli/bin.js # the installed command: run by its #! line
    touch "$stamp"
  else
    echo "hostdev: the build reported type errors (see above)" >&2
  fi
fi
bash scripts/build-native.sh
