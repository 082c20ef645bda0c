#!/usr/bin/env bash
# The real-kernel test suite (`npm run test:kernel`, `npm run test:kernel:full`): see test/kernel/rig/run.sh.
set -euo pipefail
exec bash "$(dirname "$0")/../test/kernel/rig/run.sh" "$@"
