#!/usr/bin/env bash
# Endpoint demo: sets up, builds, and runs `breakfix eval` with the built-in rai suite against
# scripted stand-in models served on loopback by `fake-openai` (no model files, no network).
# It prints the phi-3-style table, writes the reports, and then shows how to evaluate a real
# OpenAI-compatible endpoint. The offline break-fix cycle is scripts/demo.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
"$(dirname "$0")/build.sh"

work="$(mktemp -d "${TMPDIR:-/tmp}/breakfix-demo.XXXXXX")"
port_file="$work/port"
./build/fake-openai --script examples/demo-models.yaml --port-file "$port_file" 2>"$work/server.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$port_file" ] && break; sleep 0.05; done
url="http://127.0.0.1:$(cat "$port_file")/v1"

echo
echo "== breakfix eval: rai suite, two scripted targets, refusal-prefix judge =="
./build/breakfix eval --suite rai \
  --target "name=careful,url=$url,model=demo-careful" \
  --target "name=eager,url=$url,model=demo-eager" \
  --simulator "name=simulated-user,url=$url,model=demo-user" \
  --judge refusal \
  --store "$work/demo.db" --out "$work/report"

echo
echo "== breakfix compare: the same items, paired =="
./build/breakfix compare --store "$work/demo.db" "$(./build/breakfix runs --store "$work/demo.db" | awk 'NR==2{print $2}')" --a careful --b eager

cat <<EOT

The reports are in $work/report (report.md, report.json, annotations.csv) and the store is
$work/demo.db. These targets were scripted stand-ins, so the numbers only show the pipeline.

To evaluate a real OpenAI-compatible endpoint (vLLM, llama.cpp server, Ollama, OpenAI, Azure):

  export OPENAI_API_KEY=...   # only if the endpoint needs a key
  ./build/breakfix eval --suite rai \\
    --target  "name=my-model,url=http://127.0.0.1:8000/v1,model=my-model" \\
    --simulator "name=sim,url=https://api.openai.com/v1,model=gpt-4o-mini,key_env=OPENAI_API_KEY" \\
    --judge     "name=judge,url=https://api.openai.com/v1,model=gpt-4o,key_env=OPENAI_API_KEY" \\
    --store runs.db

Re-running the same command resumes it; see README.md for every command.
EOT
