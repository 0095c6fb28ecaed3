#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite. Tests that read ../shared/data find it through
# BREAKFIX_TEST_DATA (set here when the folder exists next to the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
export BREAKFIX_TEST_DEPS=1  # install-deps.sh adds chromium for the browser tests
"$(dirname "$0")/build.sh"
# The OpenAI Node SDK used by the serve end-to-end test and playwright-core for the HTML report's
# browser test (both pinned in tests/node/package-lock.json).
if [ ! -d tests/node/node_modules/openai ] || [ ! -d tests/node/node_modules/playwright-core ]; then
  npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
fi
if [ -z "${BREAKFIX_TEST_DATA:-}" ] && [ -d ../shared/data ]; then
  BREAKFIX_TEST_DATA="$(cd ../shared/data && pwd)"
  export BREAKFIX_TEST_DATA
fi
# The browser tests fail (rather than skip) when chromium or playwright-core is missing.
export BREAKFIX_REQUIRE_BROWSER=1
echo "BREAKFIX_TEST_DATA=${BREAKFIX_TEST_DATA:-<unset: tests that need shared data will skip>}"
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 600 "$@"
