// Turns bench/work/measurements.tsv (written by bench/run.sh) into results.json and a summary
// table: medians over repetitions, rates, ratios, and which targets were met.
//
// Usage: node summarize.mjs --measurements FILE --out FILE [--micro FILE] --cases N
//            --concurrency N --conversations N [--breakfix-version V] [--promptfoo-version V]
//            [--node-version V] [--nginx-version V]
import fs from 'node:fs';
import os from 'node:os';

// Targets from the benchmark issue.
const kMinSpeedup = 50;           // breakfix cases/s >= 50x promptfoo's
const kMaxRssShare = 0.1;         // breakfix peak RSS <= 1/10 of promptfoo's
const kMinTurnsPerSecond = 2000;  // 5-turn conversations on 2 cores
const kMaxRssSpread = 1.1;        // peak RSS max/min over run sizes
const kTurnsPerConversation = 5;
const kRequestsPerConversation = 11;  // 5 simulator + 5 target + 1 judge

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) {
      throw new Error(`bad argument "${argv[i]}"; expected --name VALUE pairs`);
    }
    args[argv[i].slice(2)] = argv[i + 1];
  }
  for (const required of ['measurements', 'out', 'cases', 'concurrency', 'conversations']) {
    if (!(required in args)) throw new Error(`missing --${required}`);
  }
  return args;
}

function median(values) {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

const round = (x, digits = 2) => (x === null ? null : Number(x.toFixed(digits)));

function readMeasurements(file) {
  const rows = [];
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const f = line.split('\t');
    if (f.length !== 11) throw new Error(`${file}:${i + 1}: ${f.length} fields; expected 11`);
    rows.push({
      scenario: f[0], tool: f[1], size: Number(f[2]), rep: Number(f[3]), wall_s: Number(f[4]),
      peak_rss_kib: Number(f[5]), user_s: Number(f[6]), sys_s: Number(f[7]),
      cpu_busy_before_percent: Number(f[8]), load1: Number(f[9]), exit_code: Number(f[10]),
    });
  });
  return rows;
}

// Median wall time and peak RSS of one tool at one size.
function summarizeRuns(rows) {
  if (rows.length === 0) return null;
  return {
    runs: rows.length,
    wall_s: round(median(rows.map((r) => r.wall_s)), 3),
    peak_rss_kib: median(rows.map((r) => r.peak_rss_kib)),
    peak_rss_mib: round(median(rows.map((r) => r.peak_rss_kib)) / 1024, 1),
    cpu_s: round(median(rows.map((r) => r.user_s + r.sys_s)), 2),
    all_wall_s: rows.map((r) => r.wall_s),
    all_peak_rss_kib: rows.map((r) => r.peak_rss_kib),
    cpu_busy_before_percent: rows.map((r) => r.cpu_busy_before_percent),
    load1_before: rows.map((r) => r.load1),
  };
}

function machine() {
  let cpu = 'unknown';
  try {
    const m = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m);
    if (m) cpu = m[1].trim();
  } catch {}
  return {
    date: new Date().toISOString(),
    nproc: os.availableParallelism ? os.availableParallelism() : os.cpus().length,
    cpu_model: cpu,
    memory_gib: round(os.totalmem() / 2 ** 30, 1),
    kernel: `${os.type()} ${os.release()}`,
  };
}

function microResults(file) {
  if (!file || !fs.existsSync(file)) return null;
  const data = JSON.parse(fs.readFileSync(file, 'utf8'));
  return data.benchmarks
    .filter((b) => b.run_type !== 'aggregate')
    .map((b) => ({
      name: b.name,
      real_time: round(b.real_time, 1),
      time_unit: b.time_unit,
      items_per_second: b.items_per_second ? Math.round(b.items_per_second) : undefined,
      bytes_per_second: b.bytes_per_second ? Math.round(b.bytes_per_second) : undefined,
    }));
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const rows = readMeasurements(args.measurements);
  const pick = (scenario, tool, size) =>
    rows.filter((r) => r.scenario === scenario && r.tool === tool && (size === undefined || r.size === size));
  const cases = Number(args.cases);
  const conversations = Number(args.conversations);
  const results = {
    machine: machine(),
    versions: {
      breakfix: args['breakfix-version'] ?? null,
      promptfoo: args['promptfoo-version'] ?? null,
      node_for_promptfoo: args['node-version'] ?? null,
      nginx: args['nginx-version'] ?? null,
      breakfix_source: args.source ?? null,
    },
    settings: { cases, concurrency: Number(args.concurrency), conversations },
    targets: [],
  };
  const target = (name, value, goal, met) =>
    results.targets.push({ name, value, goal, met: value === null ? null : met });

  // Scenario 1: the comparison.
  const bf = summarizeRuns(pick('s1', 'breakfix', cases));
  const pf = summarizeRuns(pick('s1', 'promptfoo', cases));
  if (bf || pf) {
    const s1 = { cases };
    for (const [name, s] of [['breakfix', bf], ['promptfoo', pf]]) {
      if (s) s1[name] = { ...s, cases_per_s: round(cases / s.wall_s, 1) };
    }
    const fixed = summarizeRuns(pick('s1-fixed', 'breakfix', 1));
    if (fixed) s1.breakfix_one_case = fixed;
    if (bf && pf) {
      s1.speed_ratio = round(s1.breakfix.cases_per_s / s1.promptfoo.cases_per_s, 1);
      s1.rss_ratio = round(bf.peak_rss_kib / pf.peak_rss_kib, 3);
      target('cases/s, breakfix / promptfoo', s1.speed_ratio, `>= ${kMinSpeedup}`,
             s1.speed_ratio >= kMinSpeedup);
      target('peak RSS, breakfix / promptfoo', s1.rss_ratio, `<= ${kMaxRssShare}`,
             s1.rss_ratio <= kMaxRssShare);
    }
    results.scenario1_single_turn = s1;
  }

  // Scenario 2: 5-turn conversations.
  const mt = summarizeRuns(pick('s2', 'breakfix', conversations));
  if (mt) {
    const turnsPerS = (kTurnsPerConversation * conversations) / mt.wall_s;
    results.scenario2_multi_turn = {
      conversations,
      assistant_turns: kTurnsPerConversation * conversations,
      requests: kRequestsPerConversation * conversations,
      breakfix: {
        ...mt,
        turns_per_s: round(turnsPerS, 1),
        requests_per_s: round((kRequestsPerConversation * conversations) / mt.wall_s, 1),
        conversations_per_s: round(conversations / mt.wall_s, 1),
      },
    };
    target('5-turn conversations, assistant turns/s', round(turnsPerS, 1),
           `>= ${kMinTurnsPerSecond}`, turnsPerS >= kMinTurnsPerSecond);
  }

  // Scenario 3: memory over run sizes.
  const sizes = [...new Set(pick('s3', 'breakfix').map((r) => r.size))].sort((a, b) => a - b);
  if (sizes.length) {
    const bySize = sizes.map((size) => {
      const s = summarizeRuns(pick('s3', 'breakfix', size));
      return { cases: size, ...s, cases_per_s: round(size / s.wall_s, 1) };
    });
    const rss = bySize.map((s) => s.peak_rss_kib);
    const spread = Math.max(...rss) / Math.min(...rss);
    results.scenario3_memory_scaling = {
      sizes: bySize,
      rss_max_over_min: round(spread, 3),
      cases_per_s_at_largest: bySize[bySize.length - 1].cases_per_s,
    };
    target(`peak RSS max/min, ${sizes[0]}..${sizes[sizes.length - 1]} cases`, round(spread, 3),
           `<= ${kMaxRssSpread}`, spread <= kMaxRssSpread);
  }

  results.micro = microResults(args.micro);
  results.measurements = rows;
  fs.writeFileSync(args.out, JSON.stringify(results, null, 2) + '\n');
  printSummary(results, args.out);
}

function printSummary(r, out) {
  const lines = [];
  const row = (...cells) => lines.push(cells.map((c, i) => String(c ?? '-').padEnd(i ? 15 : 44)).join(''));
  lines.push(`machine: ${r.machine.nproc} CPUs, ${r.machine.cpu_model}; ${r.machine.date}`);
  const s1 = r.scenario1_single_turn;
  if (s1) {
    lines.push('', `Scenario 1: ${s1.cases} single-turn cases, concurrency ${r.settings.concurrency} (medians)`);
    row('', 'wall s', 'cases/s', 'peak RSS MiB', 'CPU s');
    for (const name of ['breakfix', 'promptfoo']) {
      const t = s1[name];
      if (t) row(name, t.wall_s, t.cases_per_s, t.peak_rss_mib, t.cpu_s);
    }
    if (s1.breakfix_one_case) {
      const t = s1.breakfix_one_case;
      row('breakfix, 1 case (fixed cost)', t.wall_s, '', t.peak_rss_mib, t.cpu_s);
    }
    if (s1.speed_ratio !== undefined) {
      row('breakfix / promptfoo', '', `${s1.speed_ratio}x`, `${s1.rss_ratio}x`);
    }
  }
  const s2 = r.scenario2_multi_turn;
  if (s2) {
    lines.push('', `Scenario 2: ${s2.conversations} conversations x 5 turns (median)`);
    row('', 'wall s', 'turns/s', 'requests/s', 'peak RSS MiB', 'CPU s');
    row('breakfix', s2.breakfix.wall_s, s2.breakfix.turns_per_s, s2.breakfix.requests_per_s,
        s2.breakfix.peak_rss_mib, s2.breakfix.cpu_s);
  }
  const s3 = r.scenario3_memory_scaling;
  if (s3) {
    lines.push('', 'Scenario 3: breakfix peak RSS by run size (single-turn)');
    row('cases', 'wall s', 'cases/s', 'peak RSS MiB', 'CPU s');
    for (const s of s3.sizes) row(s.cases, s.wall_s, s.cases_per_s, s.peak_rss_mib, s.cpu_s);
    row('max / min', '', '', `${s3.rss_max_over_min}x`);
  }
  if (r.micro) {
    lines.push('', 'Micro-benchmarks');
    for (const b of r.micro) {
      row(b.name, `${b.real_time} ${b.time_unit}`,
          b.items_per_second ? `${b.items_per_second} items/s` : '');
    }
  }
  if (r.targets.length) {
    lines.push('', 'Targets');
    for (const t of r.targets) {
      row(t.name, String(t.value), t.goal, t.met === null ? 'n/a' : t.met ? 'met' : 'NOT met');
    }
  }
  lines.push('', `results: ${out}`);
  console.log(lines.join('\n'));
}

try {
  main();
} catch (error) {
  console.error(`summarize.mjs: ${error.message}`);
  process.exit(2);
}
