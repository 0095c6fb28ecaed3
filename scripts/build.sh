#!/usr/bin/env bash
# Configures and builds breakfix into build/ (Release with debug info).
set -euo pipefail
cd "$(dirname "$0")/.."
"$(dirname "$0")/install-deps.sh"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${BREAKFIX_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
ninja -C build -j"$(nproc)" "$@"  # targets, if given; else everything
