// What a campaign found: attack success rates with Wilson intervals by strategy, converters,
// category, target and persona; the paired effect of the jailbreak wrapper; tokens per role;
// findings for export; and replays.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "breakfix/campaign.h"
#include "report/format.h"

namespace breakfix {
namespace {

using nlohmann::json;

std::string Percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f%%", 100 * v);
  return buf;
}

}  // namespace

Result<CampaignReport> BuildCampaignReport(const CampaignConfig& config, Store* store) {
  BF_ASSIGN_OR_RETURN(std::vector<Objective> objectives, LoadCampaignObjectives(config));
  CampaignReport report;
  report.campaign = config.name;
  report.planned = static_cast<int64_t>(PlanCampaign(config, objectives).size());
  BF_ASSIGN_OR_RETURN(std::vector<AttackRecord> attacks, store->Attacks(config.name));
  report.attacks = static_cast<int64_t>(attacks.size());

  struct Acc {
    AsrCell cell;
    int64_t turns_sum = 0;
    int64_t backtracks_sum = 0;
  };
  std::map<std::string, std::map<std::string, Acc>> acc;
  // (objective, target, converters) -> {direct succeeded?, wrapped succeeded?}
  std::map<std::string, std::pair<int, int>> paired;
  for (const AttackRecord& a : attacks) {
    const bool refused = a.outcome == AttackOutcomeName(AttackOutcome::kAttackerRefused);
    const bool drift = a.outcome == AttackOutcomeName(AttackOutcome::kAttackerOffTopic);
    const bool success = a.outcome == AttackOutcomeName(AttackOutcome::kSucceeded);
    const std::map<std::string, std::string> keys = {
        {"strategy", a.strategy},
        {"converters", a.converters},
        {"category", a.category.empty() ? "(none)" : a.category},
        {"target", a.target},
        {"persona", a.persona.empty() ? "(not used)" : a.persona}};
    for (const auto& [dimension, value] : keys) {
      Acc& x = acc[dimension][value];
      x.cell.key = value;
      if (refused) {
        ++x.cell.attacker_refused;
        continue;
      }
      if (drift) {
        ++x.cell.attacker_off_topic;
        continue;
      }
      ++x.cell.attacks;
      x.backtracks_sum += a.backtracks;
      if (success) {
        ++x.cell.succeeded;
        x.turns_sum += a.turns_to_success;
      }
    }
    json detail = json::parse(a.result_json, nullptr, false);
    if (detail.is_object() && detail.contains("usage") && detail["usage"].is_object()) {
      for (const auto& [role, u] : detail["usage"].items()) {
        report.tokens_by_role[role] += TokenUsage{u.value("prompt_tokens", int64_t{0}),
                                                  u.value("completion_tokens", int64_t{0})};
      }
    }
    if (a.strategy == "direct" || a.strategy == "direct_jailbreak") {
      auto& p = paired[a.objective_id + "\n" + a.target + "\n" + a.converters];
      if (p.first == 0 && p.second == 0) p = {-1, -1};
      (a.strategy == "direct" ? p.first : p.second) = success ? 1 : 0;
    }
  }
  for (auto& [dimension, values] : acc) {
    for (auto& [value, x] : values) {
      AsrCell c = x.cell;
      c.rate = c.attacks > 0 ? static_cast<double>(c.succeeded) / c.attacks : 0;
      c.ci = WilsonInterval(c.succeeded, c.attacks);
      c.mean_turns_to_success =
          c.succeeded > 0 ? static_cast<double>(x.turns_sum) / c.succeeded : 0;
      c.mean_backtracks = c.attacks > 0 ? static_cast<double>(x.backtracks_sum) / c.attacks : 0;
      report.by[dimension].push_back(c);
    }
  }
  int64_t both = 0, only_wrapped = 0, only_direct = 0, neither = 0;
  for (const auto& [key, p] : paired) {
    if (p.first < 0 || p.second < 0) continue;
    report.has_paired_jailbreak = true;
    if (p.first && p.second)
      ++both;
    else if (p.second)
      ++only_wrapped;
    else if (p.first)
      ++only_direct;
    else
      ++neither;
  }
  // A = with the wrapper, B = without: the difference is the wrapper's effect.
  if (report.has_paired_jailbreak) {
    report.jailbreak_vs_direct = ComparePairedRates(both, only_wrapped, only_direct, neither);
  }
  return report;
}

std::string RenderCampaignMarkdown(const CampaignReport& r) {
  std::string out = "# Red-team campaign `" + MarkdownCell(r.campaign) + "`\n\n";
  out += std::to_string(r.attacks) + " of " + std::to_string(r.planned) +
         " planned attacks finished. Attack success rate (ASR) = successful attacks / attacks, "
         "with 95% Wilson intervals; attacks the attacker refused or let drift off the objective "
         "are counted apart, never as the target resisting.\n";
  const std::vector<std::pair<std::string, std::string>> dims = {
      {"strategy", "By strategy"},
      {"converters", "By converters"},
      {"category", "By category"},
      {"target", "By target"},
      {"persona", "By attacker persona"}};
  for (const auto& [dim, title] : dims) {
    auto it = r.by.find(dim);
    if (it == r.by.end()) continue;
    out +=
        "\n## " + title + "\n\n| " + dim +
        " | ASR | attacks | turns to first success | backtracks | attacker refused | off topic |\n"
        "|---|---|---|---|---|---|---|\n";
    for (const AsrCell& c : it->second) {
      char numbers[256];
      char turns[32] = "-";
      if (c.succeeded > 0) std::snprintf(turns, sizeof(turns), "%.2f", c.mean_turns_to_success);
      std::snprintf(numbers, sizeof(numbers), " | %s [%s, %s] | %lld | %s | %.2f | %lld | %lld |\n",
                    Percent(c.rate).c_str(), Percent(c.ci.lo).c_str(), Percent(c.ci.hi).c_str(),
                    static_cast<long long>(c.attacks), turns, c.mean_backtracks,
                    static_cast<long long>(c.attacker_refused),
                    static_cast<long long>(c.attacker_off_topic));
      out += "| " + MarkdownCell(c.key) + numbers;
    }
  }
  if (r.has_paired_jailbreak) {
    const PairedRateComparison& p = r.jailbreak_vs_direct;
    char buf[512];
    std::snprintf(buf, sizeof(buf),
                  "\n## Jailbreak wrapper, paired\n\nSame objective, target and converters with "
                  "and without the wrapper (n=%lld): %s with, %s without; difference %+.1f pp "
                  "[%+.1f, %+.1f], exact McNemar p=%.3g.\n",
                  static_cast<long long>(p.n), Percent(p.rate_a).c_str(), Percent(p.rate_b).c_str(),
                  100 * p.difference, 100 * p.ci.lo, 100 * p.ci.hi, p.mcnemar_p);
    out += buf;
  }
  if (!r.tokens_by_role.empty()) {
    out += "\n## Cost\n\n| role | prompt tokens | completion tokens |\n|---|---|---|\n";
    for (const auto& [role, u] : r.tokens_by_role) {
      out += "| " + MarkdownCell(role) + " | " + std::to_string(u.prompt_tokens) + " | " +
             std::to_string(u.completion_tokens) + " |\n";
    }
  }
  return out;
}

std::string RenderCampaignJson(const CampaignReport& r) {
  json by = json::object();
  for (const auto& [dim, cells] : r.by) {
    json rows = json::array();
    for (const AsrCell& c : cells) {
      rows.push_back({{"key", c.key},
                      {"attacks", c.attacks},
                      {"succeeded", c.succeeded},
                      {"asr", c.rate},
                      {"ci95", {c.ci.lo, c.ci.hi}},
                      {"mean_turns_to_success", c.mean_turns_to_success},
                      {"mean_backtracks", c.mean_backtracks},
                      {"attacker_refused", c.attacker_refused},
                      {"attacker_off_topic", c.attacker_off_topic}});
    }
    by[dim] = rows;
  }
  json tokens = json::object();
  for (const auto& [role, u] : r.tokens_by_role) {
    tokens[role] = {{"prompt_tokens", u.prompt_tokens}, {"completion_tokens", u.completion_tokens}};
  }
  json j = {{"campaign", r.campaign},
            {"attacks", r.attacks},
            {"planned", r.planned},
            {"by", by},
            {"tokens_by_role", tokens}};
  if (r.has_paired_jailbreak) {
    const PairedRateComparison& p = r.jailbreak_vs_direct;
    j["jailbreak_vs_direct"] = {{"n", p.n},
                                {"asr_with_wrapper", p.rate_a},
                                {"asr_without", p.rate_b},
                                {"difference", p.difference},
                                {"ci95", {p.ci.lo, p.ci.hi}},
                                {"mcnemar_p", p.mcnemar_p}};
  }
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<std::vector<std::string>> CampaignFindingsJsonl(const std::string& campaign, Store* store) {
  BF_ASSIGN_OR_RETURN(std::vector<AttackRecord> attacks, store->Attacks(campaign));
  std::vector<std::string> out;
  for (const AttackRecord& a : attacks) {
    if (a.outcome != AttackOutcomeName(AttackOutcome::kSucceeded)) continue;
    json detail = json::parse(a.result_json, nullptr, false);
    if (!detail.is_object()) {
      return Status::Corruption("attack " + a.key + ": its stored result is not JSON");
    }
    detail["key"] = a.key;
    detail["campaign"] = a.campaign;
    out.push_back(detail.dump(-1, ' ', false, json::error_handler_t::replace));
  }
  return out;
}

Result<std::vector<ReplayTurn>> ReplayAttack(const AttackRecord& attack, ChatModel* target) {
  json detail = json::parse(attack.result_json, nullptr, false);
  if (!detail.is_object() || !detail.contains("conversation") ||
      !detail["conversation"].is_array()) {
    return Status::Corruption("attack " + attack.key + ": no stored conversation to replay");
  }
  std::vector<Message> recorded;
  for (const json& m : detail["conversation"]) {
    BF_ASSIGN_OR_RETURN(Role role, ParseRole(m.value("role", "")));
    recorded.push_back({role, m.value("content", "")});
  }
  const int max_tokens = 512;
  const uint64_t seed = detail.value("seed", uint64_t{0});
  std::vector<ReplayTurn> out;
  std::vector<Message> sent;
  for (size_t i = 0; i < recorded.size(); ++i) {
    if (recorded[i].role != Role::kUser) continue;
    sent.push_back(recorded[i]);
    ChatRequest request;
    request.messages = sent;
    request.sampling.temperature = 0;
    request.sampling.max_tokens = max_tokens;
    request.sampling.seed = seed;
    BF_ASSIGN_OR_RETURN(ChatResponse response, target->ChatSync(request));
    ReplayTurn t;
    t.sent = recorded[i].content;
    t.recorded_reply = i + 1 < recorded.size() ? recorded[i + 1].content : "";
    t.new_reply = response.message.content;
    t.same = t.new_reply == t.recorded_reply;
    out.push_back(t);
    // The conversation goes on with the recorded reply, as the attack's did.
    sent.push_back({Role::kAssistant, t.recorded_reply});
  }
  if (out.empty())
    return Status::Corruption("attack " + attack.key + ": the conversation is empty");
  return out;
}

}  // namespace breakfix
