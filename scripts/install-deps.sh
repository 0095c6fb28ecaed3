#!/usr/bin/env bash
# Installs the Debian 12 packages breakfix needs to build, test and benchmark.
# Runs apt-get only when something is missing; uses sudo when not root.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libcurl4-openssl-dev libsqlite3-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libtorch-dev libopenblas0-pthread libcpp-httplib-dev zlib1g-dev
  sqlite3 curl
)
# Debian's Chromium renders the HTML report in the browser tests (driven by playwright-core).
if [ "${BREAKFIX_TEST_DEPS:-0}" = 1 ] || [ "${BREAKFIX_BENCH_DEPS:-0}" = 1 ]; then
  packages+=(chromium)
fi
if [ "${BREAKFIX_BENCH_DEPS:-0}" = 1 ]; then
  packages+=(nginx-light time)
fi
# Node.js runs the OpenAI Node SDK test and the browser tests. Machines that already have node and npm (possibly from
# another source than Debian, whose nodejs package conflicts with Debian's npm) keep them.
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
