#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, type-checks, builds, runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-system-deps.sh
bash scripts/ensure-built.sh
npx tsc -p tsconfig.json --noEmit
# A log that is not a terminal gets no colour codes.
if [ ! -t 1 ]; then export NO_COLOR=1; unset FORCE_COLOR; fi
npx vitest run "$@"
