#!/usr/bin/env bash
# breakfix trainer benchmark: SFT throughput on the demo's chat data (demo/data/chat.jsonl with
# the demo's policy system prompt), the demo's 2.2M-parameter chat model shape, one thread,
# batches of 16. Baseline: the same run with batches in plain shuffled order (padding to the
# longest sequence of a random batch); measured: --group-by-length. See bench/README.md,
# section "Trainer".
#
#   bench/train_run.sh            # uses build/breakfix (scripts/build.sh makes it)
#
# Settings (environment):
#   BENCH_TRAIN_STEPS   optimiser steps per run (40)
#   BENCH_TRAIN_BIN     the breakfix binary (build/breakfix)
#
# Output: one line per run and the ratio, on stdout; work files in bench/work/train.
set -euo pipefail

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root_dir="$(dirname "$bench_dir")"
work="$bench_dir/work/train"
bin="${BENCH_TRAIN_BIN:-$root_dir/build/breakfix}"
steps="${BENCH_TRAIN_STEPS:-40}"

[ -x "$bin" ] || { echo "no breakfix binary at $bin; run scripts/build.sh first" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work"

# The demo's data preparation (chat_sft.jsonl, the tokenizer, an initialised chat model), then
# stop: `breakfix demo` with a tiny step budget would train, so build the inputs by hand.
"$bin" train tokenizer --data "$root_dir/demo/data/chat.jsonl" --vocab-size 2048 \
  --chat-template chatml --eos '<|im_end|>' --out "$work/tok" >/dev/null
"$bin" train init --tokenizer "$work/tok" --out "$work/init" --hidden-size 192 --layers 4 \
  --heads 6 --context-length 1024 --tied-embeddings --seed 7 >/dev/null
policy="$(cat "$root_dir/demo/data/policy.md")"
python3 - "$root_dir/demo/data/chat.jsonl" "$work/chat_sft.jsonl" "$policy" <<'EOF'
import json, sys
src, dst, policy = sys.argv[1], sys.argv[2], sys.argv[3]
with open(src) as f, open(dst, "w") as out:
    for line in f:
        d = json.loads(line)
        messages = ([{"role": "system", "content": policy}] if d.get("policy") else []) + d["messages"]
        out.write(json.dumps({"id": d["id"], "messages": messages}) + "\n")
EOF

run() {  # name, extra flags...
  local name="$1"; shift
  local start end
  start=$(date +%s.%N)
  "$bin" train sft --model "$work/init" --data "$work/chat_sft.jsonl" --out "$work/$name" \
    --lr 2e-3 --batch-size 16 --max-steps "$steps" --threads 1 --checkpoint-every 0 --seed 7 \
    --quiet "$@" >/dev/null
  end=$(date +%s.%N)
  python3 - "$work/$name/train_log.jsonl" "$start" "$end" "$name" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
tokens = sum(r["tokens"] for r in rows)
wall = float(sys.argv[3]) - float(sys.argv[2])
print(f"{sys.argv[4]:>16}: {len(rows)} steps, {tokens} tokens, {wall:.1f} s wall, "
      f"{tokens / wall:.0f} tokens/s")
print(f"{tokens / wall:.3f}", file=open(sys.argv[1] + ".rate", "w"))
EOF
}

echo "SFT, demo chat data, 2.2M-parameter model, batch 16, 1 thread, $steps steps"
run shuffled
run grouped --group-by-length
python3 - "$work/shuffled/train_log.jsonl.rate" "$work/grouped/train_log.jsonl.rate" <<'EOF'
import sys
a, b = (float(open(p).read()) for p in sys.argv[1:3])
print(f"{'ratio':>16}: {b / a:.2f}x tokens/s with --group-by-length")
EOF
