// A campaign's HTML page: attack success rate per strategy, target, converter chain, category
// and persona as bar charts with Wilson intervals, and every attack's transcript in the browser
// (the strategy is the "family", the attack's outcome the "outcome", its 1-10 rating the score).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "breakfix/campaign.h"
#include "breakfix/html_report.h"

namespace breakfix {
namespace {

using nlohmann::json;

std::string Text(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::vector<HtmlRateChart> CampaignRateCharts(const CampaignReport& report) {
  std::vector<HtmlRateChart> charts;
  for (const char* by : {"strategy", "target", "converters", "category", "persona"}) {
    auto it = report.by.find(by);
    if (it == report.by.end() || it->second.empty()) continue;
    if (std::string(by) == "persona" && it->second.size() == 1 && it->second[0].key.empty()) {
      continue;
    }
    HtmlRateChart chart;
    chart.title = "Attack success by " + std::string(by);
    for (const AsrCell& cell : it->second) {
      chart.bars.push_back({cell.key.empty() ? "(none)" : cell.key, cell.attacks, cell.succeeded,
                            cell.rate, cell.ci});
    }
    charts.push_back(std::move(chart));
  }
  return charts;
}

Status ForEachCampaignAttack(Store* store, const std::string& campaign,
                             const std::function<Status(const HtmlConversation&)>& emit) {
  BF_ASSIGN_OR_RETURN(std::vector<AttackRecord> attacks, store->Attacks(campaign));
  for (const AttackRecord& a : attacks) {
    HtmlConversation c;
    c.run = campaign;
    c.family = a.strategy;
    c.category = a.category;
    c.target = a.target;
    c.item_id = a.objective_id + (a.converters.empty() ? "" : " [" + a.converters + "]") +
                (a.persona.empty() ? "" : " (" + a.persona + ")");
    c.outcome = a.outcome;
    c.score = a.best_score;
    c.scale = "1-10";
    const json detail = json::parse(a.result_json, nullptr, false);
    if (detail.is_object()) {
      if (auto o = detail.find("objective"); o != detail.end() && o->is_object()) {
        c.goal = Text(*o, "goal");
      }
      c.judge = Text(detail, "scorer");
      c.reason = Text(detail, "note");
      int assistant = 0;
      for (const json& t : detail.value("turns", json::array())) {
        if (!t.is_object()) continue;
        std::string sent = Text(t, "sent");
        if (t.value("backtracked", false))
          sent = "[backtracked: not kept in the target's view] " + sent;
        if (t.value("pruned", false)) sent = "[pruned off-topic: never sent] " + sent;
        c.turns.push_back({Role::kUser, sent});
        c.turns.push_back({Role::kAssistant, Text(t, "reply")});
        ++assistant;
        if (t.contains("score") && t["score"].is_number_integer()) {
          c.turn_scores.push_back({assistant, t["score"].get<int>(), Text(t, "reason")});
        }
      }
    }
    BF_RETURN_IF_ERROR(emit(c));
  }
  return Status::OK();
}

Status WriteCampaignHtml(const CampaignReport& report, Store* store, const std::string& path) {
  HtmlReportInput input;
  input.title = "breakfix red-team campaign: " + report.campaign;
  input.notes.push_back(std::to_string(report.attacks) + " of " + std::to_string(report.planned) +
                        " planned attacks finished.");
  if (report.has_paired_jailbreak) {
    const PairedRateComparison& p = report.jailbreak_vs_direct;
    char buf[200];
    std::snprintf(buf, sizeof(buf),
                  "Jailbreak wrappers vs the plain request, paired: %+.1f pp [%+.1f, %+.1f], "
                  "McNemar p=%.3g, n=%lld",
                  100 * p.difference, 100 * p.ci.lo, 100 * p.ci.hi, p.mcnemar_p,
                  static_cast<long long>(p.n));
    input.notes.push_back(buf);
  }
  input.rate_charts = CampaignRateCharts(report);
  input.family_label = "Strategy";
  input.score_label = "Best rating (1-10)";
  input.conversations = [&](const std::function<Status(const HtmlConversation&)>& emit) {
    return ForEachCampaignAttack(store, report.campaign, emit);
  };
  return WriteHtmlReport(input, HtmlReportOptions{}, path);
}

}  // namespace breakfix
