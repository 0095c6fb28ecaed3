#!/usr/bin/env bash
# CTest entry: starts `breakfix serve` on loopback with a tiny GGUF model and runs the official
# OpenAI Node SDK against it (openai_sdk_test.mjs). Exit 77 = skipped (CTest SKIP_RETURN_CODE).
set -euo pipefail
breakfix="$1"
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v node >/dev/null; then
  echo "SKIP: node is not installed (scripts/install-deps.sh installs it)"; exit 77
fi
if [ ! -d "$here/node_modules/openai" ]; then
  echo "FAIL: $here/node_modules/openai is missing: run 'npm ci --prefix tests/node' (scripts/test.sh does)"
  exit 1
fi
if [ -z "${BREAKFIX_TEST_DATA:-}" ]; then
  echo "SKIP: BREAKFIX_TEST_DATA is unset; this test serves ../shared/data/tinyllamas-stories260K/stories260K.gguf"
  exit 77
fi
model="$BREAKFIX_TEST_DATA/tinyllamas-stories260K/stories260K.gguf"
if [ ! -f "$model" ]; then echo "FAIL: $model is missing"; exit 1; fi

work="$(mktemp -d)"
key="sk-node-sdk-$$"
BF_SDK_KEY="$key" "$breakfix" serve --model "$model" --port 0 --port-file "$work/port" \
  --api-key-env BF_SDK_KEY --chat-template zephyr 2>"$work/serve.log" &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 200); do [ -s "$work/port" ] && break; sleep 0.05; done
if [ ! -s "$work/port" ]; then echo "FAIL: the server did not start"; cat "$work/serve.log"; exit 1; fi
node "$here/openai_sdk_test.mjs" "http://127.0.0.1:$(cat "$work/port")/v1" "$key"
kill -TERM "$server"
wait "$server"
status=$?
trap - EXIT
grep -q "stopped after" "$work/serve.log" || { echo "FAIL: no clean shutdown"; cat "$work/serve.log"; exit 1; }
rm -rf "$work"
exit "$status"
