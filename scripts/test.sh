#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite. Tests that read ../shared/data find it through
# BREAKFIX_TEST_DATA (set here when the folder exists next to the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
"$(dirname "$0")/build.sh"
# The OpenAI Node SDK used by the serve end-to-end test (pinned in tests/node/package-lock.json).
if [ ! -d tests/node/node_modules/openai ]; then
  npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
fi
if [ -z "${BREAKFIX_TEST_DATA:-}" ] && [ -d ../shared/data ]; then
  BREAKFIX_TEST_DATA="$(cd ../shared/data && pwd)"
  export BREAKFIX_TEST_DATA
fi
echo "BREAKFIX_TEST_DATA=${BREAKFIX_TEST_DATA:-<unset: tests that need shared data will skip>}"
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 600 "$@"
