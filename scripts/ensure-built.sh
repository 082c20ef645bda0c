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
  rm -rf dist
  npx tsc -p tsconfig.build.json
  touch "$stamp"
fi
