#!/usr/bin/env bash
# breakfix engine benchmark: the in-process engine's speed against this machine's own limits, and
# `breakfix serve` under 64 streaming clients. See bench/README.md, section "Engine".
#
#   bench/engine_run.sh                      # build if needed, measure, print the summary
#   BENCH_ENGINE_QUICK=1 bench/engine_run.sh # every step with tiny sizes (a smoke test; the
#                                            # numbers mean nothing)
#
# Settings (environment):
#   BREAKFIX_TEST_DATA       the shared data folder (default: ../shared/data beside the repository);
#                            stories260K.gguf and llama-2-tiny-random.gguf must be there
#   BENCH_ENGINE_BUILD       an existing build tree with engine_bench, serve_load and breakfix
#                            (default: build Release into bench/work/build, as bench/run.sh does)
#   BENCH_ENGINE_SECONDS     duration of each load test, Engine and server (15)
#   BENCH_ENGINE_CLIENTS     streaming clients / requests in flight (64)
#   BENCH_ENGINE_MAX_TOKENS  max_tokens per request (128)
#   BENCH_ENGINE_ARGS        extra engine_bench flags, e.g. "--models synthetic --reps 3"
#   BENCH_MAX_BUSY           percent of CPU other processes may use before a measurement starts;
#                            above it the script waits, up to BENCH_BUSY_WAIT_S seconds (20, 600)
#
# Output: the tables on stdout and bench/work/engine_results.json (engine_bench's results with
# the server's added as "server"). Nothing outside bench/work is written, except Debian packages
# installed by scripts/install-deps.sh when missing.
set -euo pipefail

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root_dir="$(dirname "$bench_dir")"
work="$bench_dir/work"
data="${BREAKFIX_TEST_DATA:-$(dirname "$root_dir")/shared/data}"
seconds="${BENCH_ENGINE_SECONDS:-15}"
clients="${BENCH_ENGINE_CLIENTS:-64}"
max_tokens="${BENCH_ENGINE_MAX_TOKENS:-128}"
max_busy="${BENCH_MAX_BUSY:-20}"
busy_wait_s="${BENCH_BUSY_WAIT_S:-600}"
results="$work/engine_results.json"
stories_rel="tinyllamas-stories260K/stories260K.gguf"
tiny_rel="llama-2-tiny-random-gguf/llama-2-tiny-random.gguf"

log() { printf '[engine-bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

extra_args=()
if [ -n "${BENCH_ENGINE_ARGS:-}" ]; then read -r -a extra_args <<<"$BENCH_ENGINE_ARGS"; fi
if [ "${BENCH_ENGINE_QUICK:-0}" = 1 ]; then
  extra_args+=(--quick)
  seconds=2
fi

check_data() {
  [ -d "$data" ] || die "no shared data folder at $data; set BREAKFIX_TEST_DATA to ../shared/data"
  local f
  for f in "$stories_rel" "$tiny_rel"; do
    [ -f "$data/$f" ] || die "model file missing: $data/$f (BREAKFIX_TEST_DATA=$data)"
  done
  data="$(cd "$data" && pwd)"
}

ensure_build() {
  if [ -n "${BENCH_ENGINE_BUILD:-}" ]; then
    build="$BENCH_ENGINE_BUILD"
    [ -f "$build/build.ninja" ] || die "BENCH_ENGINE_BUILD=$build is not a Ninja build tree"
    if ! grep -q 'CMAKE_BUILD_TYPE:STRING=Release' "$build/CMakeCache.txt"; then
      log "warning: $build is not a Release build; its numbers are not comparable"
    fi
  else
    build="$work/build"
    "$root_dir/scripts/install-deps.sh"
    if [ ! -f "$build/build.ninja" ]; then
      log "configuring a Release build in $build"
      cmake -S "$root_dir" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DBREAKFIX_BUILD_TESTS=OFF >"$work/engine-cmake.log" ||
        die "cmake failed (log: $work/engine-cmake.log)"
    fi
  fi
  log "building breakfix, engine_bench and serve_load in $build (ninja -j2)"
  ninja -C "$build" -j2 breakfix_cli engine_bench serve_load >"$work/engine-ninja.log" 2>&1 || {
    tail -n 40 "$work/engine-ninja.log" >&2
    die "the build failed (log: $work/engine-ninja.log)"
  }
}

# Percent of CPU time spent busy over one second, across all cores.
cpu_busy() {
  local a b
  read -r -a a < <(head -n1 /proc/stat)
  sleep 1
  read -r -a b < <(head -n1 /proc/stat)
  local total=0 idle i
  for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
  idle=$((b[4] - a[4] + b[5] - a[5]))
  echo $((total > 0 ? 100 * (total - idle) / total : 0))
}

# Waits until other processes leave the CPUs (mostly) idle: the engine runs on one core and the
# server's HTTP threads and the load generator on the other, so any other work skews the numbers.
wait_for_idle() {
  local waited=0
  busy="$(cpu_busy)"
  while [ "$busy" -gt "$max_busy" ] && [ "$waited" -lt "$busy_wait_s" ]; do
    [ "$waited" -eq 0 ] && log "CPUs ${busy}% busy with other work; waiting (up to ${busy_wait_s}s)"
    sleep 9
    waited=$((waited + 10))
    busy="$(cpu_busy)"
  done
  log "CPUs ${busy}% busy before measuring; load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

server_pid=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}

start_server() {
  local port_file="$work/engine-serve.port"
  rm -f "$port_file"
  "$build/breakfix" serve --model "$data/$stories_rel" --port 0 --port-file "$port_file" \
    >"$work/engine-serve.log" 2>&1 &
  server_pid=$!
  trap stop_server EXIT
  local _
  for _ in $(seq 300); do
    [ -s "$port_file" ] && break
    kill -0 "$server_pid" 2>/dev/null || {
      cat "$work/engine-serve.log" >&2
      die "breakfix serve exited before listening (log: $work/engine-serve.log)"
    }
    sleep 0.1
  done
  [ -s "$port_file" ] || die "breakfix serve did not write $port_file within 30 s"
  server_url="http://127.0.0.1:$(tr -d '[:space:]' <"$port_file")/v1"
  log "breakfix serve (pid $server_pid) listens on $server_url"
}

main() {
  mkdir -p "$work"
  check_data
  ensure_build
  # One intra-op thread everywhere (the engine's default); the BLAS must not spread over the
  # core the server's HTTP threads and the load generator use.
  export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

  wait_for_idle
  log "engine_bench: machine limits, three models, the Engine under load ($clients clients, ${seconds}s)"
  "$build/bench/engine_bench" --data "$data" --out "$results" --load-seconds "$seconds" \
    --load-clients "$clients" --load-max-tokens "$max_tokens" --cpu-busy-before "$busy" \
    "${extra_args[@]}" || die "engine_bench failed"

  wait_for_idle
  start_server
  "$build/bench/serve_load" --url "$server_url" --clients "$clients" --seconds "$seconds" \
    --max-tokens "$max_tokens" --server-pid "$server_pid" --merge-into "$results" ||
    die "serve_load failed (server log: $work/engine-serve.log)"
  stop_server
  log "results: $results"
}

main "$@"
