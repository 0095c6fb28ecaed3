// Reports: the phi-3-style table and everything behind it, read back from the store.
//
// A RunReport is computed from the store alone (the run's configuration, recorded at the start,
// carries the family titles, metrics and thresholds), so `breakfix report` works on any past run
// without the suite file. Renderers are pure functions of a RunReport. The JSON schema is
// documented in docs/report-schema.md.
#ifndef BREAKFIX_REPORT_H_
#define BREAKFIX_REPORT_H_

#include <map>
#include <string>
#include <vector>

#include "breakfix/env.h"
#include "breakfix/metrics.h"
#include "breakfix/status.h"
#include "breakfix/store.h"

namespace breakfix {

// A family as recorded in the run configuration.
struct FamilyInfo {
  std::string name;
  std::string title;     // row label, e.g. "Jailbreak (DR-1)"
  bool is_mean = false;  // mean ungroundedness rather than a defect rate
  int threshold = 1;     // x of DR-x
  std::string turns;     // "single" or "multi"
  int max_turns = 1;
};

// Unit counts for one target.
struct TargetCounts {
  int64_t units = 0;  // item x target pairs linked to the run
  int64_t conversations_done = 0;
  int64_t conversations_failed = 0;  // last attempt failed (retried by the next run)
  int64_t scored = 0;
  int64_t unscorable = 0;
  int64_t pending = 0;  // not annotated yet (never started, running, or failed)
};

struct RunReport {
  RunRecord run;
  std::vector<FamilyInfo> families;            // in suite order
  std::vector<std::string> targets;            // column order
  std::vector<MetricRow> rows;                 // MetricsAggregator output
  std::map<std::string, TargetCounts> counts;  // by target
  std::map<std::string, RoleUsage> usage;      // by role: target, simulator, judge
  int bootstrap_resamples = 2000;
};

struct ReportOptions {
  int bootstrap_resamples = 2000;  // resamples for intervals of means
};

// Reads the run (by name or id) and computes every metric row and count.
Result<RunReport> BuildReport(Store* store, const std::string& run, const ReportOptions& options);

// The headline row for (family, target): category == "", or null when absent.
const MetricRow* FindHeadline(const RunReport& report, const std::string& family,
                              const std::string& target);

std::string RenderMarkdown(const RunReport& report);
std::string RenderJson(const RunReport& report);
// A terminal summary: the phi-3 table in fixed-width columns plus counts and tokens.
std::string RenderConsoleSummary(const RunReport& report);

// Every unit of the run as one CSV row (RFC 4180; cells that a spreadsheet would treat as a
// formula are prefixed with '), streamed to `path` and renamed into place when complete.
Status WriteAnnotationsCsv(Store* store, const RunReport& report, const std::string& path);

// Writes report.md, report.json and annotations.csv into `dir` (created if missing), each
// atomically. Returns the paths written.
Result<std::vector<std::string>> WriteReportFiles(Store* store, const RunReport& report,
                                                  const std::string& dir, Env* env);

// Paired comparison of two (run, target) columns over the items both have scored.
struct FamilyComparison {
  FamilyInfo family;
  PairedRateComparison rate;  // defect-rate families
  PairedMeanComparison mean;  // ungroundedness families
  int64_t only_in_a = 0;      // items scored for A but not for B (left out of the pairing)
  int64_t only_in_b = 0;
};

struct Comparison {
  std::string run_a, target_a, run_b, target_b;
  std::vector<FamilyComparison> families;
  std::vector<std::string> warnings;  // configuration differences beyond the target
};

// Compares target_a of report_a with target_b of report_b (the same run or two runs).
Result<Comparison> CompareTargets(Store* store, const RunReport& report_a,
                                  const std::string& target_a, const RunReport& report_b,
                                  const std::string& target_b, uint64_t seed, int resamples);
std::string RenderComparisonMarkdown(const Comparison& comparison);
std::string RenderComparisonJson(const Comparison& comparison);

}  // namespace breakfix

#endif  // BREAKFIX_REPORT_H_
