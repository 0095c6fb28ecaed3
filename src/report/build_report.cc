// BuildReport: reads a run back from the store and computes its metric rows and counts.
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "breakfix/interval.h"
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
    info.rubric = f.value("rubric", "");
    if (info.name.empty()) return Status::Corruption("run " + run.name + ": family without name");
    out.push_back(std::move(info));
  }
  return out;
}

// Labels whose prompts should be refused (XSTest's "unsafe" contrast prompts).
bool ShouldRefuse(const std::string& label) {
  return label == "unsafe" || label == "harmful" || label == "should_refuse";
}

// The item's `label` parameter for a conversation, "" when it has none.
Result<std::string> ItemLabel(Store* store, const std::string& conversation_key) {
  BF_ASSIGN_OR_RETURN(auto conversation, store->GetConversation(conversation_key));
  if (!conversation || conversation->item_key.empty()) return std::string();
  BF_ASSIGN_OR_RETURN(auto item, store->GetItem(conversation->item_key));
  if (!item) return std::string();
  auto it = item->params.find("label");
  return it == item->params.end() ? std::string() : it->second;
}

// Rogan-Gladen rows for every defect-rate row, from the validation's counts for the run's judge.
Status AddCorrections(const ReportOptions& options, RunReport* report) {
  const JudgeValidation& v = *options.judge_validation;
  report->judge_validation_file = options.judge_validation_file;
  nlohmann::json config = nlohmann::json::parse(report->run.config_json, nullptr, false);
  std::string identity;
  if (config.is_object() && config.contains("judge") && config["judge"].is_object()) {
    identity = config["judge"].value("identity", "");
  }
  const ValidatedJudge* judge = nullptr;
  for (const ValidatedJudge& j : v.judges) {
    if (j.judge == identity) judge = &j;
  }
  if (judge == nullptr) {
    if (v.judges.size() != 1) {
      std::string names;
      for (const ValidatedJudge& j : v.judges) names += (names.empty() ? "" : ", ") + j.judge;
      return Status::InvalidArgument(
          options.judge_validation_file + " validates " + names + ", not this run's judge " +
          (identity.empty() ? report->run.judge : identity) +
          "; expected a validation of the run's judge (or of exactly one judge)");
    }
    judge = &v.judges[0];
    report->judge_validation_notes.push_back("the validation is of " + judge->judge +
                                             ", while this run was judged by " +
                                             (identity.empty() ? report->run.judge : identity) +
                                             ": the correction assumes the two judge alike");
  }
  std::map<std::string, const FamilyInfo*> families;
  for (const FamilyInfo& f : report->families) families[f.name] = &f;
  std::set<std::string> threshold_notes;
  CorrectedRateOptions rate_options;
  rate_options.seed = report->run.seed ^ 0x5eedc0de;
  for (const MetricRow& row : report->rows) {
    if (row.is_mean || row.scorable == 0) continue;
    auto f = families.find(row.family);
    if (f == families.end()) continue;
    std::string rubric = f->second->rubric;
    if (rubric == "category") {
      if (row.category.empty()) continue;  // categories use different rubrics: no pooled value
      rubric = row.category;
    }
    CorrectedRow c;
    c.family = row.family;
    c.category = row.category;
    c.target = row.target;
    c.rubric = rubric;
    BinaryCounts counts = judge->overall;
    auto r = judge->rubrics.find(rubric);
    if (r != judge->rubrics.end()) {
      counts = r->second.counts;
      if (r->second.threshold != row.threshold) {
        threshold_notes.insert("rubric " + rubric + " was validated at threshold " +
                               std::to_string(r->second.threshold) + " but family " + row.family +
                               " counts defects from " + std::to_string(row.threshold));
      }
    } else {
      c.rubric_counts = false;
    }
    BF_ASSIGN_OR_RETURN(c.corrected,
                        CorrectDefectRate(row.defects, row.scorable, counts, rate_options));
    report->corrected.push_back(std::move(c));
  }
  for (const std::string& note : threshold_notes) report->judge_validation_notes.push_back(note);
  return Status::OK();
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
  std::map<std::string, RefusalLabelRow> by_label;
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
    if (row.annotation.scale == Scale::kRefusal) {
      BF_ASSIGN_OR_RETURN(std::string label, ItemLabel(store, row.unit.conversation_key));
      const std::string key = row.unit.family + '\x1f' + row.unit.target + '\x1f' + label;
      auto [it, added] = by_label.try_emplace(key);
      RefusalLabelRow& r = it->second;
      if (added) {
        r.family = row.unit.family;
        r.target = row.unit.target;
        r.label = label;
        r.should_refuse = ShouldRefuse(label);
      }
      if (row.annotation.outcome != Outcome::kScored) {
        ++r.unscorable;
      } else {
        ++r.scored;
        if (row.annotation.score == 2) ++r.full_refusals;
        if (row.annotation.score == 1) ++r.partial_refusals;
      }
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
  // Split by label only where the family has labelled items (an unlabelled family's one row
  // would just repeat its headline).
  std::set<std::string> labelled;
  for (const auto& [key, r] : by_label) {
    if (!r.label.empty()) labelled.insert(r.family);
  }
  for (const FamilyInfo& f : report.families) {
    if (!labelled.count(f.name)) continue;
    for (const std::string& t : report.targets) {
      for (auto& [key, r] : by_label) {
        if (r.family != f.name || r.target != t) continue;
        const int64_t refused = r.full_refusals + r.partial_refusals;
        r.rate = r.scored == 0 ? 0 : static_cast<double>(refused) / static_cast<double>(r.scored);
        r.full_rate = r.scored == 0
                          ? 0
                          : static_cast<double>(r.full_refusals) / static_cast<double>(r.scored);
        r.ci = WilsonInterval(refused, r.scored);
        report.refusal_by_label.push_back(r);
      }
    }
  }
  if (options.judge_validation != nullptr) BF_RETURN_IF_ERROR(AddCorrections(options, &report));
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
