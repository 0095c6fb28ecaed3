// breakfix gate RUN --max BOUND...: release gates for CI systems (breakfix/gate.h).
#include <cstdio>
#include <optional>

#include "breakfix/gate.h"
#include "cli_common.h"

namespace breakfix::cli {
namespace {

// Exit code when a bound is broken (distinct from input errors and failures).
constexpr int kExitGateBroken = 3;

struct GateFlags {
  std::string run;
  std::string store = "breakfix.db";
  std::vector<std::string> bounds;
  std::string target;
  std::string junit;
  std::string judge_validation;
  bool strict = false;
};

int RunGate(const GateFlags& f) {
  std::vector<GateBound> bounds;
  for (const std::string& text : f.bounds) {
    Result<GateBound> b = ParseGateBound(text);
    if (!b.ok()) return Fail(b.status().WithContext("--max"));
    bounds.push_back(*b);
  }
  auto store = OpenStore(f.store, /*create=*/false);
  if (!store.ok()) return FailLookup(store.status());
  ReportOptions options;
  std::optional<JudgeValidation> validation;
  if (!f.judge_validation.empty()) {
    auto read = ReadJudgeValidation(f.judge_validation);
    if (!read.ok()) return FailLookup(read.status());
    validation = std::move(*read);
    options.judge_validation = &*validation;
    options.judge_validation_file = f.judge_validation;
  }
  auto report = BuildReport(store->get(), f.run, options);
  if (!report.ok()) return FailLookup(report.status());
  Result<GateResult> result = EvaluateGate(*report, bounds, f.strict, f.target);
  if (!result.ok()) return Fail(result.status());
  for (const GateCheck& c : result->checks) {
    std::printf("%-4s %-12s %-40s value %.4g [%.4g, %.4g] n=%lld%s\n", c.passed ? "ok" : "FAIL",
                c.target.c_str(), c.bound.text.c_str(), c.value, c.ci.lo, c.ci.hi,
                static_cast<long long>(c.n), f.strict ? " (strict: interval end compared)" : "");
  }
  if (!f.junit.empty()) {
    Status s = Env::Default()->WriteFileAtomic(f.junit, RenderGateJUnit(*result, report->run.name));
    if (!s.ok()) return Fail(s);
  }
  if (!result->passed) {
    std::fprintf(stderr, "breakfix: gate failed for run %s\n", report->run.name.c_str());
    return kExitGateBroken;
  }
  return kExitOk;
}

}  // namespace

CommandFn AddGateCommand(CLI::App& app) {
  auto flags = std::make_shared<GateFlags>();
  CLI::App* cmd = app.add_subcommand(
      "gate", "Check a run's metrics against bounds; exit code 3 when one is broken (for CI)");
  cmd->add_option("run", flags->run, "Run name or id")->required();
  cmd->add_option("--store", flags->store, "SQLite store")->capture_default_str();
  cmd->add_option("--max", flags->bounds,
                  "Bound FAMILY[/CATEGORY].METRIC OP NUMBER, e.g. \"jailbreak.dr1<=0.15\" "
                  "(metrics: rate, dr1..dr7, mean, unscorable; OP: <=, <, >=, >); repeat")
      ->required();
  cmd->add_option("--target", flags->target, "Check only this target (default: every target)");
  cmd->add_flag("--strict", flags->strict,
                "Compare the 95% interval's unfavourable end instead of the point estimate");
  cmd->add_option("--junit", flags->junit, "Write a JUnit XML file of the checks");
  cmd->add_option("--judge-validation", flags->judge_validation,
                  "A judge validation file (breakfix judge validate --out), for the `corrected` "
                  "metric");
  return [flags] { return RunGate(*flags); };
}

}  // namespace breakfix::cli
