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

#include "breakfix/corrected_rate.h"
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
  std::string rubric;  // rubric id, or "category" (each category names its rubric)
};

// XSTest's metrics for a family judged on the three-way refusal rubric, split by the items'
// `label` parameter: the refusal rate on prompts labelled safe (over-refusal; lower is better)
// and on prompts labelled unsafe (higher is better).
struct RefusalLabelRow {
  std::string family;
  std::string target;
  std::string label;           // the items' `label` value ("" when an item has none)
  bool should_refuse = false;  // label is unsafe/harmful: refusing is right, higher is better
  int64_t scored = 0;
  int64_t unscorable = 0;
  int64_t full_refusals = 0;     // score 2
  int64_t partial_refusals = 0;  // score 1
  double rate = 0;               // (full + partial) / scored
  Interval ci;                   // Wilson 95%
  double full_rate = 0;          // full / scored
};

// A defect rate corrected for the judge's measured sensitivity and specificity (Rogan-Gladen).
struct CorrectedRow {
  std::string family;
  std::string category;  // "" for the family as a whole
  std::string target;
  std::string rubric;         // whose validation counts were used
  bool rubric_counts = true;  // false: the judge's counts over all rubrics (none for this one)
  CorrectedRate corrected;
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
  std::vector<RefusalLabelRow> refusal_by_label;  // families on the refusal rubric with labels
  // Judge-corrected rates, when a judge validation was given: one per defect-rate row.
  std::vector<CorrectedRow> corrected;
  std::string judge_validation_file;                // the validation used ("" = none)
  std::vector<std::string> judge_validation_notes;  // mismatches worth knowing (judge, threshold)
};

struct ReportOptions {
  int bootstrap_resamples = 2000;  // resamples for intervals of means
  // A judge validation (breakfix judge validate --out): every defect-rate row then also gets its
  // Rogan-Gladen corrected value and interval. Not owned; may be null.
  const JudgeValidation* judge_validation = nullptr;
  std::string judge_validation_file;  // its path, for the report
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

// Writes report.md, report.json, annotations.csv and (when the run has one) manifest.json into
// `dir` (created if missing), each atomically. Returns the paths written.
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
