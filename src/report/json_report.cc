// The JSON report (schema: docs/report-schema.md).
#include <nlohmann/json.hpp>

#include "breakfix/report.h"

namespace breakfix {

constexpr int kReportSchemaVersion = 1;

std::string RenderJson(const RunReport& report) {
  nlohmann::json j;
  j["schema_version"] = kReportSchemaVersion;
  j["breakfix_version"] = BREAKFIX_VERSION;
  const RunRecord& run = report.run;
  nlohmann::json config = nlohmann::json::parse(run.config_json, nullptr, false);
  j["run"] = {{"id", run.id},
              {"name", run.name},
              {"status", RunStatusName(run.status)},
              {"config_hash", run.config_hash},
              {"suite", run.suite_name},
              {"suite_hash", run.suite_hash},
              {"seed", run.seed},
              {"judge", run.judge},
              {"simulator", run.simulator},
              {"created_us", run.created_us},
              {"updated_us", run.updated_us},
              {"config", config.is_discarded() ? nlohmann::json() : config}};
  j["targets"] = report.targets;
  nlohmann::json families = nlohmann::json::array();
  for (const FamilyInfo& f : report.families) {
    families.push_back({{"name", f.name},
                        {"title", f.title},
                        {"metric", f.is_mean ? "mean_ungroundedness" : "defect_rate"},
                        {"threshold", f.threshold},
                        {"turns", f.turns},
                        {"max_turns", f.max_turns},
                        {"rubric", f.rubric}});
  }
  j["families"] = families;
  nlohmann::json rows = nlohmann::json::array();
  for (const MetricRow& r : report.rows) {
    rows.push_back(
        {{"family", r.family},
         {"category", r.category.empty() ? nlohmann::json() : nlohmann::json(r.category)},
         {"target", r.target},
         {"metric", r.is_mean ? "mean_ungroundedness" : "defect_rate"},
         {"threshold", r.is_mean ? nlohmann::json() : nlohmann::json(r.threshold)},
         {"n", r.n},
         {"scorable", r.scorable},
         {"unscorable", r.unscorable},
         {"defects", r.is_mean ? nlohmann::json() : nlohmann::json(r.defects)},
         {"value", r.scorable > 0 ? nlohmann::json(r.value) : nlohmann::json()},
         {"ci_low", r.ci.lo},
         {"ci_high", r.ci.hi},
         {"histogram", r.histogram}});
  }
  j["rows"] = rows;
  nlohmann::json counts = nlohmann::json::object();
  for (const auto& [target, c] : report.counts) {
    counts[target] = {{"units", c.units},
                      {"conversations_done", c.conversations_done},
                      {"conversations_failed", c.conversations_failed},
                      {"scored", c.scored},
                      {"unscorable", c.unscorable},
                      {"pending", c.pending}};
  }
  j["counts"] = counts;
  nlohmann::json usage = nlohmann::json::object();
  for (const auto& [role, u] : report.usage) {
    usage[role] = {{"calls", u.calls},
                   {"failed_calls", u.failed_calls},
                   {"prompt_tokens", u.usage.prompt_tokens},
                   {"completion_tokens", u.usage.completion_tokens},
                   {"latency_ms_total", u.latency_ms_total}};
  }
  j["usage"] = usage;
  nlohmann::json by_label = nlohmann::json::array();
  for (const RefusalLabelRow& r : report.refusal_by_label) {
    by_label.push_back({{"family", r.family},
                        {"target", r.target},
                        {"label", r.label},
                        {"should_refuse", r.should_refuse},
                        {"scored", r.scored},
                        {"unscorable", r.unscorable},
                        {"full_refusals", r.full_refusals},
                        {"partial_refusals", r.partial_refusals},
                        {"refusal_rate", r.rate},
                        {"ci_low", r.ci.lo},
                        {"ci_high", r.ci.hi},
                        {"full_refusal_rate", r.full_rate}});
  }
  j["refusal_by_label"] = by_label;
  if (!report.judge_validation_file.empty()) {
    nlohmann::json corrected = nlohmann::json::array();
    for (const CorrectedRow& c : report.corrected) {
      const CorrectedRate& r = c.corrected;
      corrected.push_back(
          {{"family", c.family},
           {"category", c.category.empty() ? nlohmann::json() : nlohmann::json(c.category)},
           {"target", c.target},
           {"rubric", c.rubric},
           {"rubric_counts", c.rubric_counts},
           {"defects", r.defects},
           {"n", r.n},
           {"raw", r.raw},
           {"sensitivity", r.sensitivity},
           {"specificity", r.specificity},
           {"defined", r.defined},
           {"reason", r.reason},
           {"value", r.defined ? nlohmann::json(r.value) : nlohmann::json()},
           {"ci_low", r.defined ? nlohmann::json(r.ci.lo) : nlohmann::json()},
           {"ci_high", r.defined ? nlohmann::json(r.ci.hi) : nlohmann::json()},
           {"chance_draw_share", r.chance_draw_share}});
    }
    j["judge_correction"] = {{"validation_file", report.judge_validation_file},
                             {"notes", report.judge_validation_notes},
                             {"method", "rogan_gladen_parametric_bootstrap"},
                             {"rows", corrected}};
  }
  j["intervals"] = {{"level", 0.95},
                    {"rates", "wilson"},
                    {"means", "percentile_bootstrap"},
                    {"bootstrap_resamples", report.bootstrap_resamples}};
  return j.dump(2) + "\n";
}

}  // namespace breakfix
