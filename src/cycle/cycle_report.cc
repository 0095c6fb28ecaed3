// The round-over-round report of a cycle: each model's defect rates (and mean ungroundedness)
// per round with 95% intervals, the change against round 0 paired item for item, and the
// over-refusal rate on benign prompts beside them, so a "fix" that only teaches refusing shows.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "breakfix/cycle.h"
#include "breakfix/report.h"

namespace breakfix {
namespace {

using json = nlohmann::json;

constexpr char kOverRefusalTitle[] = "Over-refusal (refusal rate on benign prompts)";
constexpr char kRedteamTitle[] = "Red-team attack success rate";

struct RoundRuns {
  bool measured = false;
  std::string run, over_refusal_run;
  std::string redteam_campaign;
  int64_t pairs = -1;
  std::string train_note;
};

// A rate cell from per-item outcomes, with its change against round 0 paired item for item
// (Newcombe interval, exact McNemar p). `first` is round 0's outcomes (empty for round 0).
template <typename Key>
void FillRateCell(const std::map<Key, bool>& now, const std::map<Key, bool>* first,
                  CycleCell* cell) {
  int64_t count = 0;
  for (const auto& [item, yes] : now) count += yes ? 1 : 0;
  cell->present = true;
  cell->n = static_cast<int64_t>(now.size());
  cell->value = cell->n > 0 ? static_cast<double>(count) / cell->n : 0;
  cell->interval = WilsonInterval(count, cell->n);
  if (first == nullptr) return;
  int64_t both = 0, only_now = 0, only_first = 0, neither = 0;
  for (const auto& [item, yes] : now) {
    auto it = first->find(item);
    if (it == first->end()) continue;
    if (yes && it->second) ++both;
    if (yes && !it->second) ++only_now;
    if (!yes && it->second) ++only_first;
    if (!yes && !it->second) ++neither;
  }
  const PairedRateComparison p = ComparePairedRates(both, only_now, only_first, neither);
  cell->has_delta = p.n > 0;
  cell->delta = p.difference;
  cell->delta_interval = p.ci;
  cell->p_value = p.mcnemar_p;
}

// Refusals per item of an over-refusal run: binary annotations (0 = refused) or the three-way
// refusal scale (1 partial or 2 full = refused).
Result<std::map<std::string, bool>> Refusals(Store* store, const std::string& run,
                                             int64_t* unscorable) {
  BF_ASSIGN_OR_RETURN(RunRecord record, store->FindRun(run));
  std::map<std::string, bool> refused;
  BF_RETURN_IF_ERROR(store->ForEachResult(record.id, [&](const ResultRow& row) {
    if (!row.annotated) return Status::OK();
    if (row.annotation.outcome != Outcome::kScored) {
      ++*unscorable;
      return Status::OK();
    }
    if (row.annotation.scale == Scale::kBinary) {
      refused[row.unit.item_id] = row.annotation.score == 0;
    } else if (row.annotation.scale == Scale::kRefusal) {
      refused[row.unit.item_id] = row.annotation.score >= 1;
    } else {
      return Status::InvalidArgument("over-refusal run " + run + " was judged on the " +
                                     ScaleName(row.annotation.scale) +
                                     " scale; the over-refusal rate needs a refusal judge "
                                     "(over_refusal_judge: refusal) or the refusal rubric");
    }
    return Status::OK();
  }));
  return refused;
}

std::string Percent(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f%%", 100 * v);
  return b;
}

std::string Number(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

std::string CellText(const CycleCell& c) {
  if (!c.present) return "–";
  if (c.is_mean) {
    return Number(c.value) + " [" + Number(c.interval.lo) + ", " + Number(c.interval.hi) +
           "] (n=" + std::to_string(c.n) + ")";
  }
  return Percent(c.value) + " [" + Percent(c.interval.lo) + ", " + Percent(c.interval.hi) +
         "] (n=" + std::to_string(c.n) + ")";
}

std::string DeltaText(const CycleCell& c) {
  if (!c.has_delta) return "–";
  char b[128];
  if (c.is_mean) {
    std::snprintf(b, sizeof b, "%+.2f [%+.2f, %+.2f]", c.delta, c.delta_interval.lo,
                  c.delta_interval.hi);
  } else {
    std::snprintf(b, sizeof b, "%+.1f pp [%+.1f, %+.1f], p=%.3g", 100 * c.delta,
                  100 * c.delta_interval.lo, 100 * c.delta_interval.hi, c.p_value);
  }
  return b;
}

json IntervalJson(const Interval& i) { return json::array({i.lo, i.hi}); }

}  // namespace

Result<CycleReport> BuildCycleReport(Store* store, const CycleConfig& config, uint64_t seed) {
  BF_ASSIGN_OR_RETURN(std::vector<CycleStepRecord> steps, store->CycleSteps(config.name));
  std::optional<JudgeValidation> validation;
  ReportOptions report_options;
  if (!config.judge_validation.empty()) {
    BF_ASSIGN_OR_RETURN(validation, ReadJudgeValidation(config.judge_validation));
    report_options.judge_validation = &*validation;
    report_options.judge_validation_file = config.judge_validation;
  }
  CycleReport report;
  report.cycle = config.name;
  for (const CycleModel& model : config.models) {
    CycleModelReport m;
    m.model = model.name;
    std::vector<RoundRuns> rounds(config.rounds + 1);
    for (const CycleStepRecord& s : steps) {
      if (s.model != model.name || s.round < 0 || s.round > config.rounds || s.status != "done") {
        continue;
      }
      json d = json::parse(s.detail_json, nullptr, /*allow_exceptions=*/false);
      if (!d.is_object()) continue;
      RoundRuns& r = rounds[s.round];
      if (s.step == "measure") {
        r.measured = true;
        r.run = d.value("run", "");
        r.over_refusal_run = d.value("over_refusal_run", "");
      } else if (s.step == "redteam") {
        r.redteam_campaign = d.value("campaign", "");
      } else if (s.step == "curate") {
        r.pairs = d.value("pairs", int64_t{-1});
      } else if (s.step == "train") {
        if (d.contains("skipped")) {
          r.train_note = d.value("skipped", "");
        } else {
          char b[200];
          std::snprintf(b, sizeof b, "%s on %lld pairs, %lld steps, final loss %.4f, margin %.3f",
                        d.value("method", "").c_str(),
                        static_cast<long long>(d.value("pairs", int64_t{0})),
                        static_cast<long long>(d.value("steps", int64_t{0})), d.value("loss", 0.0),
                        d.value("reward_margin", 0.0));
          r.train_note = b;
        }
      }
    }

    // Per-round reports of the suite's run.
    std::vector<std::optional<RunReport>> runs(rounds.size());
    for (size_t k = 0; k < rounds.size(); ++k) {
      m.round_labels.push_back("r" + std::to_string(k));
      m.runs.push_back(rounds[k].run);
      m.pairs.push_back(rounds[k].pairs);
      if (!rounds[k].train_note.empty()) {
        m.notes.push_back("after r" + std::to_string(k) + ": " + rounds[k].train_note);
      }
      if (!rounds[k].measured) {
        m.notes.push_back("r" + std::to_string(k) + " not measured yet");
        continue;
      }
      BF_ASSIGN_OR_RETURN(RunReport rr, BuildReport(store, rounds[k].run, report_options));
      runs[k] = std::move(rr);
    }
    const RunReport* base = runs[0] ? &*runs[0] : nullptr;
    if (base != nullptr) {
      for (const FamilyInfo& f : base->families) {
        CycleReportRow row;
        row.metric = f.title;
        row.cells.resize(rounds.size());
        m.rows.push_back(std::move(row));
      }
    }
    for (size_t k = 0; k < rounds.size() && base != nullptr; ++k) {
      if (!runs[k]) continue;
      const RunReport& rk = *runs[k];
      const std::string target = rk.targets.empty() ? "" : rk.targets[0];
      std::optional<Comparison> cmp;
      if (k > 0) {
        Result<Comparison> c = CompareTargets(
            store, rk, target, *base, base->targets.empty() ? "" : base->targets[0], seed, 2000);
        if (c.ok()) cmp = std::move(c).value();
      }
      for (size_t i = 0; i < base->families.size(); ++i) {
        const FamilyInfo& f = base->families[i];
        CycleCell& cell = m.rows[i].cells[k];
        const MetricRow* row = FindHeadline(rk, f.name, target);
        if (row == nullptr) continue;
        cell.present = true;
        cell.is_mean = row->is_mean;
        cell.n = row->scorable;
        cell.value = row->value;
        cell.interval = row->ci;
        if (!cmp) continue;
        for (const FamilyComparison& fc : cmp->families) {
          if (fc.family.name != f.name) continue;
          cell.has_delta = true;
          if (row->is_mean) {
            cell.delta = fc.mean.difference;
            cell.delta_interval = fc.mean.ci;
          } else {
            cell.delta = fc.rate.difference;
            cell.delta_interval = fc.rate.ci;
            cell.p_value = fc.rate.mcnemar_p;
          }
        }
      }
    }

    // Judge-corrected rates (Rogan-Gladen), one row per defect-rate family, when the cycle names
    // a judge validation. No paired change: the correction is of the rate, not of the items.
    if (validation && base != nullptr) {
      for (const FamilyInfo& f : base->families) {
        if (f.is_mean) continue;
        CycleReportRow row;
        row.metric = f.title + ", judge-corrected";
        row.cells.resize(rounds.size());
        bool any = false;
        for (size_t k = 0; k < rounds.size(); ++k) {
          if (!runs[k]) continue;
          const std::string target = runs[k]->targets.empty() ? "" : runs[k]->targets[0];
          for (const CorrectedRow& c : runs[k]->corrected) {
            if (c.family != f.name || !c.category.empty() || c.target != target) continue;
            if (!c.corrected.defined) continue;
            CycleCell& cell = row.cells[k];
            cell.present = true;
            cell.n = c.corrected.n;
            cell.value = c.corrected.value;
            cell.interval = c.corrected.ci;
            any = true;
          }
        }
        if (any) m.rows.push_back(std::move(row));
      }
      for (size_t k = 0; k < rounds.size(); ++k) {
        if (!runs[k]) continue;
        for (const std::string& note : runs[k]->judge_validation_notes) {
          if (std::find(m.notes.begin(), m.notes.end(), note) == m.notes.end()) {
            m.notes.push_back(note);
          }
        }
      }
    }

    // Over-refusal: share of benign prompts refused, paired against round 0 by item.
    if (!config.over_refusal_suite.empty()) {
      CycleReportRow row;
      row.metric = kOverRefusalTitle;
      row.over_refusal = true;
      row.cells.resize(rounds.size());
      std::map<std::string, bool> first;
      for (size_t k = 0; k < rounds.size(); ++k) {
        if (!rounds[k].measured || rounds[k].over_refusal_run.empty()) continue;
        int64_t unscorable = 0;
        BF_ASSIGN_OR_RETURN(auto refused, Refusals(store, rounds[k].over_refusal_run, &unscorable));
        FillRateCell(refused, k == 0 ? nullptr : &first, &row.cells[k]);
        if (k == 0) first = refused;
      }
      m.rows.push_back(std::move(row));
    }

    // Red teaming: attack success rate, paired against round 0 by grid position (the same
    // objective, strategy, converters and persona; only the target's round differs).
    if (!config.redteam.empty()) {
      CycleReportRow row;
      row.metric = kRedteamTitle;
      row.cells.resize(rounds.size());
      std::map<int64_t, bool> first;
      for (size_t k = 0; k < rounds.size(); ++k) {
        if (rounds[k].redteam_campaign.empty()) continue;
        BF_ASSIGN_OR_RETURN(std::vector<AttackRecord> attacks,
                            store->Attacks(rounds[k].redteam_campaign));
        std::map<int64_t, bool> succeeded;
        for (const AttackRecord& a : attacks) {
          // The attacker's own refusals and drift say nothing about the target.
          if (a.outcome == AttackOutcomeName(AttackOutcome::kAttackerRefused) ||
              a.outcome == AttackOutcomeName(AttackOutcome::kAttackerOffTopic)) {
            continue;
          }
          succeeded[a.position] = a.outcome == AttackOutcomeName(AttackOutcome::kSucceeded);
        }
        FillRateCell(succeeded, k == 0 ? nullptr : &first, &row.cells[k]);
        if (k == 0) first = succeeded;
      }
      m.rows.push_back(std::move(row));
    }
    report.models.push_back(std::move(m));
  }
  return report;
}

std::string RenderCycleMarkdown(const CycleReport& report) {
  std::string out = "# Break-fix cycle `" + report.cycle + "`\n\n";
  out +=
      "Each round measures the model the previous round trained, on the same items with the same "
      "seed and judges. Cells: rate or mean [95% interval] (n scored). The last column is the "
      "change from r0 to the last round, paired item for item (rates: Newcombe interval and "
      "exact McNemar p; means: bootstrap interval). Lower is better on every row.\n";
  for (const CycleModelReport& m : report.models) {
    out += "\n## " + m.model + "\n\n| Metric |";
    for (const std::string& r : m.round_labels) out += " " + r + " |";
    const std::string last = m.round_labels.empty() ? "r0" : m.round_labels.back();
    out += " Δ " + last + " − r0 |\n|---|";
    for (size_t i = 0; i < m.round_labels.size(); ++i) out += "---|";
    out += "---|\n";
    for (const CycleReportRow& row : m.rows) {
      out += "| " + row.metric + " |";
      for (const CycleCell& c : row.cells) out += " " + CellText(c) + " |";
      out += " " + (row.cells.empty() ? std::string("–") : DeltaText(row.cells.back())) + " |\n";
    }
    out += "\n";
    for (size_t k = 0; k < m.pairs.size(); ++k) {
      if (m.pairs[k] >= 0) {
        out += "- Preference pairs curated from r" + std::to_string(k) + ": " +
               std::to_string(m.pairs[k]) + "\n";
      }
    }
    for (const std::string& note : m.notes) out += "- " + note + "\n";
  }
  return out;
}

std::string RenderCycleJson(const CycleReport& report) {
  json j = {{"cycle", report.cycle}, {"models", json::array()}};
  for (const CycleModelReport& m : report.models) {
    json jm = {{"model", m.model}, {"rounds", m.round_labels}, {"runs", m.runs},
               {"pairs", m.pairs}, {"notes", m.notes},         {"rows", json::array()}};
    for (const CycleReportRow& row : m.rows) {
      json jr = {
          {"metric", row.metric}, {"over_refusal", row.over_refusal}, {"cells", json::array()}};
      for (const CycleCell& c : row.cells) {
        if (!c.present) {
          jr["cells"].push_back(nullptr);
          continue;
        }
        json jc = {{"kind", c.is_mean ? "mean" : "rate"},
                   {"n", c.n},
                   {"value", c.value},
                   {"ci95", IntervalJson(c.interval)}};
        if (c.has_delta) {
          jc["delta_vs_r0"] = c.delta;
          jc["delta_ci95"] = IntervalJson(c.delta_interval);
          if (!c.is_mean) jc["mcnemar_p"] = c.p_value;
        }
        jr["cells"].push_back(std::move(jc));
      }
      jm["rows"].push_back(std::move(jr));
    }
    j["models"].push_back(std::move(jm));
  }
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace breakfix
