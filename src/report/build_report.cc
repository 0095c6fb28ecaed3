// BuildReport: reads a run back from the store and computes its metric rows and counts.
#include <nlohmann/json.hpp>

#include "breakfix/report.h"

namespace breakfix {
namespace {

Result<std::vector<FamilyInfo>> FamiliesFromConfig(const RunRecord& run) {
  nlohmann::json config = nlohmann::json::parse(run.config_json, nullptr, false);
  if (config.is_discarded() || !config.contains("families") || !config["families"].is_array()) {
    return Status::Corruption("run " + run.name + ": stored configuration has no family list");
  }
  std::vector<FamilyInfo> out;
  for (const auto& f : config["families"]) {
    FamilyInfo info;
    info.name = f.value("name", "");
    info.title = f.value("title", info.name);
    info.is_mean = f.value("metric", "") == "ungroundedness";
    info.threshold = f.value("threshold", 1);
    info.turns = f.value("turns", "single");
    info.max_turns = f.value("max_turns", 1);
    if (info.name.empty()) return Status::Corruption("run " + run.name + ": family without name");
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace

Result<RunReport> BuildReport(Store* store, const std::string& run, const ReportOptions& options) {
  RunReport report;
  BF_ASSIGN_OR_RETURN(report.run, store->FindRun(run));
  BF_ASSIGN_OR_RETURN(report.families, FamiliesFromConfig(report.run));
  report.targets = report.run.targets;
  report.bootstrap_resamples = options.bootstrap_resamples;

  AggregateOptions agg_options;
  for (const FamilyInfo& f : report.families) {
    agg_options.thresholds[f.name] = f.threshold;
    agg_options.mean_families[f.name] = f.is_mean;
  }
  agg_options.bootstrap_resamples = options.bootstrap_resamples;
  agg_options.seed = report.run.seed;
  MetricsAggregator aggregator(agg_options);

  for (const std::string& t : report.targets) report.counts[t];
  BF_RETURN_IF_ERROR(store->ForEachResult(report.run.id, [&](const ResultRow& row) {
    TargetCounts& c = report.counts[row.unit.target];
    ++c.units;
    if (row.conversation_status == ConversationStatus::kDone) ++c.conversations_done;
    if (row.conversation_status == ConversationStatus::kFailed) ++c.conversations_failed;
    if (!row.annotated) {
      ++c.pending;
      return Status::OK();
    }
    if (row.annotation.outcome == Outcome::kScored) {
      ++c.scored;
    } else {
      ++c.unscorable;
    }
    ScoredSample s;
    s.family = row.unit.family;
    s.category = row.unit.category;
    s.target = row.unit.target;
    s.outcome = row.annotation.outcome;
    s.scale = row.annotation.scale;
    s.score = row.annotation.score;
    aggregator.Add(s);
    return Status::OK();
  }));
  report.rows = aggregator.Finish();
  BF_ASSIGN_OR_RETURN(report.usage, store->UsageByRole(report.run.id));
  return report;
}

const MetricRow* FindHeadline(const RunReport& report, const std::string& family,
                              const std::string& target) {
  for (const MetricRow& row : report.rows) {
    if (row.family == family && row.category.empty() && row.target == target) return &row;
  }
  return nullptr;
}

}  // namespace breakfix
