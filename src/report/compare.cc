// Paired comparison of two targets on the same items.
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_map>

#include "breakfix/manifest.h"
#include "breakfix/report.h"
#include "report/format.h"

namespace breakfix {
namespace {

struct ItemScore {
  std::string family;
  Scale scale = Scale::kSeverity;
  int score = 0;
};

Result<std::unordered_map<std::string, ItemScore>> ScoredItems(Store* store,
                                                               const RunReport& report,
                                                               const std::string& target) {
  std::unordered_map<std::string, ItemScore> out;
  BF_RETURN_IF_ERROR(store->ForEachResult(report.run.id, [&](const ResultRow& row) {
    if (row.unit.target != target || !row.annotated || row.annotation.outcome != Outcome::kScored)
      return Status::OK();
    out[row.unit.item_id] = {row.unit.family, row.annotation.scale, row.annotation.score};
    return Status::OK();
  }));
  return out;
}

bool HasTarget(const RunReport& report, const std::string& target) {
  for (const std::string& t : report.targets) {
    if (t == target) return true;
  }
  return false;
}

// Top-level configuration keys that differ between the two runs, apart from the targets.
std::vector<std::string> ConfigDifferences(const RunReport& a, const RunReport& b) {
  std::vector<std::string> out;
  if (a.run.id == b.run.id) return out;
  nlohmann::json ca = nlohmann::json::parse(a.run.config_json, nullptr, false);
  nlohmann::json cb = nlohmann::json::parse(b.run.config_json, nullptr, false);
  if (ca.is_discarded() || cb.is_discarded() || !ca.is_object() || !cb.is_object()) {
    out.push_back("a run's stored configuration could not be read; comparability is unknown");
    return out;
  }
  std::set<std::string> keys;
  for (auto it = ca.begin(); it != ca.end(); ++it) keys.insert(it.key());
  for (auto it = cb.begin(); it != cb.end(); ++it) keys.insert(it.key());
  for (const std::string& k : keys) {
    if (k == "targets") continue;
    if (!ca.contains(k) || !cb.contains(k) || ca[k] != cb[k]) {
      out.push_back("runs differ in \"" + k +
                    "\" (not only in the target): " + (ca.contains(k) ? ca[k].dump() : "absent") +
                    " vs " + (cb.contains(k) ? cb[k].dump() : "absent"));
    }
  }
  return out;
}

// A run's manifest, or a note saying why it cannot be used.
struct ManifestOrNote {
  std::optional<RunManifest> manifest;
  std::string note;
};

Result<ManifestOrNote> LoadManifest(Store* store, const RunRecord& run) {
  ManifestOrNote out;
  BF_ASSIGN_OR_RETURN(RunManifestRecord record, store->GetRunManifest(run.id));
  if (record.state != RunManifestState::kRecorded) {
    out.note = "run " + run.name + ": " + RunManifestMissingNote(record.state);
    return out;
  }
  Result<RunManifest> parsed = ParseRunManifest(record.manifest_json);
  if (!parsed.ok()) {
    out.note = "run " + run.name + ": the stored manifest could not be read (" +
               parsed.status().message() + ")";
    return out;
  }
  out.manifest = std::move(parsed).value();
  return out;
}

// Everything but the target in which the two runs differ. Two targets of one run differ in
// nothing else. With both manifests the comparison covers versions, hashes, sampling and system
// fingerprints; without, it falls back to the recorded configurations and says what it could not
// check.
Result<std::vector<std::string>> RunDifferences(Store* store, const RunReport& a,
                                                const std::string& target_a, const RunReport& b,
                                                const std::string& target_b) {
  if (a.run.id == b.run.id) return std::vector<std::string>();
  BF_ASSIGN_OR_RETURN(ManifestOrNote ma, LoadManifest(store, a.run));
  BF_ASSIGN_OR_RETURN(ManifestOrNote mb, LoadManifest(store, b.run));
  if (ma.manifest && mb.manifest) {
    return RunManifestDifferences(*ma.manifest, target_a, *mb.manifest, target_b);
  }
  std::vector<std::string> out = ConfigDifferences(a, b);
  for (const ManifestOrNote* m : {&ma, &mb}) {
    if (!m->manifest) {
      out.push_back(m->note +
                    "; breakfix versions, dataset files and system fingerprints were not compared");
    }
  }
  return out;
}

}  // namespace

Result<Comparison> CompareTargets(Store* store, const RunReport& report_a,
                                  const std::string& target_a, const RunReport& report_b,
                                  const std::string& target_b, uint64_t seed, int resamples) {
  if (!HasTarget(report_a, target_a)) {
    return Status::InvalidArgument("run " + report_a.run.name + " has no target \"" + target_a +
                                   "\"");
  }
  if (!HasTarget(report_b, target_b)) {
    return Status::InvalidArgument("run " + report_b.run.name + " has no target \"" + target_b +
                                   "\"");
  }
  Comparison cmp;
  cmp.run_a = report_a.run.name;
  cmp.target_a = target_a;
  cmp.run_b = report_b.run.name;
  cmp.target_b = target_b;
  BF_ASSIGN_OR_RETURN(cmp.warnings, RunDifferences(store, report_a, target_a, report_b, target_b));

  BF_ASSIGN_OR_RETURN(auto a, ScoredItems(store, report_a, target_a));
  BF_ASSIGN_OR_RETURN(auto b, ScoredItems(store, report_b, target_b));

  for (const FamilyInfo& family : report_a.families) {
    FamilyComparison fc;
    fc.family = family;
    int64_t both = 0, only_a = 0, only_b = 0, neither = 0;
    std::vector<double> means_a, means_b;
    auto defect = [&](const ItemScore& s) {
      return s.scale == Scale::kBinary ? s.score >= 1 : s.score >= family.threshold;
    };
    for (const auto& [item, sa] : a) {
      if (sa.family != family.name) continue;
      auto it = b.find(item);
      if (it == b.end()) {
        ++fc.only_in_a;
        continue;
      }
      const ItemScore& sb = it->second;
      if (family.is_mean) {
        means_a.push_back(sa.score);
        means_b.push_back(sb.score);
      } else {
        const bool da = defect(sa), db = defect(sb);
        if (da && db)
          ++both;
        else if (da)
          ++only_a;
        else if (db)
          ++only_b;
        else
          ++neither;
      }
    }
    for (const auto& [item, sb] : b) {
      if (sb.family == family.name && a.find(item) == a.end()) ++fc.only_in_b;
    }
    if (family.is_mean) {
      fc.mean = ComparePairedMeans(means_a, means_b, resamples, seed);
    } else {
      fc.rate = ComparePairedRates(both, only_a, only_b, neither);
    }
    cmp.families.push_back(fc);
  }
  return cmp;
}

std::string RenderComparisonMarkdown(const Comparison& c) {
  std::ostringstream md;
  md << "# breakfix comparison\n\n";
  md << "A = " << MarkdownCell(c.target_a) << " (run " << MarkdownCell(c.run_a)
     << "), B = " << MarkdownCell(c.target_b) << " (run " << MarkdownCell(c.run_b)
     << "). Paired on items "
     << "scored for both; difference = A - B (negative: A is better).\n\n";
  for (const std::string& w : c.warnings) md << "> Warning: " << MarkdownCell(w) << "\n";
  if (!c.warnings.empty()) md << "\n";
  md << "| Metric | Pairs | A | B | A - B | 95% CI | McNemar p | Discordant (A only / B only) |\n";
  md << "|---|---|---|---|---|---|---|---|\n";
  for (const FamilyComparison& f : c.families) {
    md << "| " << MarkdownCell(MetricLabel(f.family)) << " | ";
    const int64_t pairs = f.family.is_mean ? f.mean.n : f.rate.n;
    if (pairs == 0) {
      md << "0 | n/a | n/a | n/a | n/a | - | - |\n";
    } else if (f.family.is_mean) {
      md << f.mean.n << " | " << FormatValue(f.mean.mean_a) << " | " << FormatValue(f.mean.mean_b)
         << " | " << FormatValue(f.mean.difference) << " | [" << FormatValue(f.mean.ci.lo) << ", "
         << FormatValue(f.mean.ci.hi) << "] | - | - |\n";
    } else {
      char p[32];
      std::snprintf(p, sizeof(p), "%.4g", f.rate.mcnemar_p);
      md << f.rate.n << " | " << FormatValue(f.rate.rate_a) << " | " << FormatValue(f.rate.rate_b)
         << " | " << FormatValue(f.rate.difference) << " | [" << FormatValue(f.rate.ci.lo) << ", "
         << FormatValue(f.rate.ci.hi) << "] | " << p << " | " << f.rate.only_a << " / "
         << f.rate.only_b << " |\n";
    }
  }
  md << "\nRates: Newcombe hybrid score interval for paired proportions and exact McNemar test. "
        "Means: percentile bootstrap of paired differences.\n";
  bool unpaired = false;
  for (const FamilyComparison& f : c.families) unpaired |= f.only_in_a + f.only_in_b > 0;
  if (unpaired) {
    md << "\nItems scored for one side only (left out of the pairing):\n\n";
    for (const FamilyComparison& f : c.families) {
      if (f.only_in_a + f.only_in_b == 0) continue;
      md << "- " << MarkdownCell(f.family.name) << ": " << f.only_in_a << " only in A, "
         << f.only_in_b << " only in B\n";
    }
  }
  return md.str();
}

std::string RenderComparisonJson(const Comparison& c) {
  nlohmann::json j;
  j["a"] = {{"run", c.run_a}, {"target", c.target_a}};
  j["b"] = {{"run", c.run_b}, {"target", c.target_b}};
  j["warnings"] = c.warnings;
  nlohmann::json fams = nlohmann::json::array();
  for (const FamilyComparison& f : c.families) {
    nlohmann::json x = {{"family", f.family.name},
                        {"title", f.family.title},
                        {"only_in_a", f.only_in_a},
                        {"only_in_b", f.only_in_b}};
    if (f.family.is_mean) {
      x["metric"] = "mean_ungroundedness";
      x["pairs"] = f.mean.n;
      x["a"] = f.mean.mean_a;
      x["b"] = f.mean.mean_b;
      x["difference"] = f.mean.difference;
      x["ci_low"] = f.mean.ci.lo;
      x["ci_high"] = f.mean.ci.hi;
    } else {
      x["metric"] = "defect_rate";
      x["threshold"] = f.family.threshold;
      x["pairs"] = f.rate.n;
      x["a"] = f.rate.rate_a;
      x["b"] = f.rate.rate_b;
      x["difference"] = f.rate.difference;
      x["ci_low"] = f.rate.ci.lo;
      x["ci_high"] = f.rate.ci.hi;
      x["mcnemar_p"] = f.rate.mcnemar_p;
      x["both"] = f.rate.both;
      x["only_a"] = f.rate.only_a;
      x["only_b"] = f.rate.only_b;
      x["neither"] = f.rate.neither;
    }
    fams.push_back(x);
  }
  j["families"] = fams;
  return j.dump(2) + "\n";
}

}  // namespace breakfix
