// breakfix compare: paired comparison of two targets on the same items.
#include <cstdio>

#include "breakfix/report.h"
#include "cli_common.h"

namespace breakfix::cli {
namespace {

struct CompareFlags {
  std::vector<std::string> runs;
  std::string a, b;
  std::string store = "breakfix.db";
  std::string json;
  int resamples = 2000;
};

Result<std::string> OnlyTarget(const RunReport& r, const char* flag) {
  if (r.targets.size() == 1) return r.targets[0];
  std::string list;
  for (const auto& t : r.targets) list += (list.empty() ? "" : ", ") + t;
  return Status::InvalidArgument(std::string("run ") + r.run.name + " has several targets (" +
                                 list + "): choose one with " + flag);
}

int RunCompareCommand(const CompareFlags& f) {
  auto store = OpenStore(f.store, /*create=*/false);
  if (!store.ok()) return FailLookup(store.status());
  auto ra = BuildReport(store->get(), f.runs[0], ReportOptions{});
  if (!ra.ok()) return FailLookup(ra.status());
  Result<RunReport> rb = f.runs.size() > 1 ? BuildReport(store->get(), f.runs[1], ReportOptions{})
                                           : Result<RunReport>(*ra);
  if (!rb.ok()) return FailLookup(rb.status());
  std::string a = f.a, b = f.b;
  if (a.empty()) {
    auto t = OnlyTarget(*ra, "--a");
    if (!t.ok()) return Fail(t.status());
    a = *t;
  }
  if (b.empty()) {
    auto t = OnlyTarget(*rb, "--b");
    if (!t.ok()) return Fail(t.status());
    b = *t;
  }
  if (f.runs.size() == 1 && a == b) {
    return Fail(Status::InvalidArgument("--a and --b name the same target of the same run"));
  }
  auto cmp = CompareTargets(store->get(), *ra, a, *rb, b, ra->run.seed, f.resamples);
  if (!cmp.ok()) return Fail(cmp.status());
  std::printf("%s", RenderComparisonMarkdown(*cmp).c_str());
  for (const std::string& w : cmp->warnings)
    std::fprintf(stderr, "breakfix: warning: %s\n", w.c_str());
  if (!f.json.empty()) {
    Status s = Env::Default()->WriteFileAtomic(f.json, RenderComparisonJson(*cmp));
    if (!s.ok()) return Fail(s);
  }
  return kExitOk;
}

}  // namespace

CommandFn AddCompareCommand(CLI::App& app) {
  auto flags = std::make_shared<CompareFlags>();
  CLI::App* cmd = app.add_subcommand(
      "compare",
      "Paired comparison of two targets on the same items (difference with CI, McNemar p)");
  cmd->add_option("runs", flags->runs, "One run (two of its targets) or two runs")
      ->required()
      ->expected(1, 2);
  cmd->add_option("--a", flags->a, "Target A (from the first run)");
  cmd->add_option("--b", flags->b, "Target B (from the second run, or the same run)");
  cmd->add_option("--store", flags->store, "SQLite store")->capture_default_str();
  cmd->add_option("--json", flags->json, "Also write the comparison as JSON to this file");
  cmd->add_option("--bootstrap", flags->resamples, "Bootstrap resamples for means")
      ->check(CLI::Range(100, 1000000))
      ->capture_default_str();
  return [flags] { return RunCompareCommand(*flags); };
}

}  // namespace breakfix::cli
