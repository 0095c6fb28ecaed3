#include "breakfix/campaign.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "testing/scratch_dir.h"

namespace breakfix {
namespace {

using test_support::ScratchDir;
using ::testing::HasSubstr;

constexpr char kCampaign[] = R"yaml(
name: c1
seed: 4
concurrency: 3
objectives:
  - {csv: data/adv.csv, limit: 2}
  - {builtin: indirect_injection, categories: [intrusion]}
strategies: [crescendo, direct, indirect_injection]
converters: [[], [base64, "char_swap:0.5"]]
personas: [low_skilled, intermediate]
targets: [t1, "local:models/tiny"]
attacker: atk
scorer: sc
settings: {max_turns: 3, success_threshold: 7}
models:
  atk: "url=http://127.0.0.1:1/v1,model=a"
)yaml";

TEST(CampaignConfigTest, ParsesResolvesAndPlansTheGrid) {
  ScratchDir dir("campaign");
  dir.Write("data/adv.csv", "goal,target\nA one,x\nA two,x\nA three,x\n");
  auto c = ParseCampaignConfig(kCampaign, dir.File("c.yaml"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->name, "c1");
  EXPECT_EQ(c->concurrency, 3);
  EXPECT_EQ(c->objectives[0].csv, dir.File("data/adv.csv"));
  EXPECT_EQ(c->targets[1], "local:" + dir.File("models/tiny"));
  ASSERT_EQ(c->converters.size(), 2u);
  EXPECT_EQ(c->converters[1], (std::vector<std::string>{"base64", "char_swap:0.5"}));
  EXPECT_EQ(c->personas.size(), 2u);
  EXPECT_EQ(c->settings.max_turns, 3);
  EXPECT_EQ(c->settings.success_threshold, 7);
  EXPECT_THAT(c->models_yaml, HasSubstr("atk"));

  auto objectives = LoadCampaignObjectives(*c);
  ASSERT_TRUE(objectives.ok()) << objectives.status().ToString();
  ASSERT_EQ(objectives->size(), 4u);  // 2 from the CSV (limit), 2 intrusion injections
  const std::vector<PlannedAttack> plan = PlanCampaign(*c, *objectives);
  // CSV objectives: 2 x 2 targets x (crescendo x 2 personas + direct) x 2 chains = 24;
  // injections: 2 x 2 targets x 1 x 2 chains = 8.
  EXPECT_EQ(plan.size(), 32u);
  for (const PlannedAttack& a : plan) {
    EXPECT_EQ(a.strategy == "indirect_injection", a.objective.source == "injection");
    EXPECT_EQ(a.uses_persona, a.strategy == "crescendo");
  }
  EXPECT_EQ(plan.back().position, 31);
}

TEST(CampaignConfigTest, MistakesNameFileLineAndColumn) {
  struct Case {
    std::string yaml, expected;
  };
  const std::string ok_tail = "targets: [t]\nscorer: s\nattacker: a\n";
  const std::vector<Case> cases = {
      {"name: x\nobjectives: [{csv: a.csv}]\nstrategies: [direct]\n" + ok_tail + "extra: 1\n",
       "c.yaml:7:1: unknown key \"extra\""},
      {"name: x\nobjectives: [{csv: a.csv, suite: rai}]\nstrategies: [direct]\n" + ok_tail,
       "exactly one of csv, suite or builtin"},
      {"name: x\nobjectives: [{builtin: other}]\nstrategies: [direct]\n" + ok_tail,
       "only built-in objectives are indirect_injection"},
      {"name: x\nobjectives: [{csv: a.csv}]\nstrategies: [direct]\nconverters: [[base65]]\n" +
           ok_tail,
       "c.yaml:4:15: unknown converter \"base65\""},
      {"name: x\nobjectives: [{csv: a.csv}]\nstrategies: [direct]\npersonas: [expert]\n" + ok_tail,
       "unknown attacker persona \"expert\""},
      {"name: x\nobjectives: [{csv: a.csv}]\nstrategies: [direct]\nsettings: {max_turns: 0}\n" +
           ok_tail,
       "max_turns is out of range"},
      {"name: x\nobjectives: [{csv: a.csv}]\nstrategies: [direct]\ntargets: [t]\n",
       "scorer: required"},
      {"objectives: [{csv: a.csv}]\nstrategies: [direct]\n" + ok_tail, "name: required"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseCampaignConfig(c.yaml, "c.yaml");
    ASSERT_FALSE(parsed.ok()) << c.yaml;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(parsed.status().message(), HasSubstr(c.expected)) << c.yaml;
  }
}

TEST(CampaignReportTest, RatesIntervalsPairsAndEscaping) {
  ScratchDir dir("campaign");
  dir.Write("adv.csv", "goal,target\nG1,x\nG2,x\n");
  auto c = ParseCampaignConfig(
      "name: rep\nobjectives: [{csv: adv.csv}]\nstrategies: [direct, direct_jailbreak]\n"
      "targets: [t]\nscorer: s\n",
      dir.File("c.yaml"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto store = Store::OpenSqlite(dir.File("s.db"));
  ASSERT_TRUE(store.ok());
  auto put = [&](const std::string& key, const std::string& objective, const std::string& strategy,
                 const std::string& outcome, const std::string& category) {
    AttackRecord a;
    a.key = key;
    a.campaign = "rep";
    a.objective_id = objective;
    a.category = category;
    a.strategy = strategy;
    a.target = "t";
    a.converters = "none";
    a.outcome = outcome;
    a.turns_to_success = outcome == "succeeded" ? 1 : 0;
    a.result_json = R"({"usage":{"target":{"prompt_tokens":10,"completion_tokens":4}}})";
    ASSERT_TRUE((*store)->PutAttack(a).ok());
  };
  put("k1", "advbench/0", "direct", "resisted", "a|b");
  put("k2", "advbench/0", "direct_jailbreak", "succeeded", "a|b");
  put("k3", "advbench/1", "direct", "resisted", "a|b");
  put("k4", "advbench/1", "direct_jailbreak", "attacker_refused", "a|b");
  auto report = BuildCampaignReport(*c, store->get());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->planned, 4);
  EXPECT_EQ(report->attacks, 4);
  std::map<std::string, AsrCell> by;
  for (const AsrCell& cell : report->by.at("strategy")) by[cell.key] = cell;
  EXPECT_EQ(by["direct"].attacks, 2);
  EXPECT_EQ(by["direct"].succeeded, 0);
  EXPECT_EQ(by["direct_jailbreak"].attacks, 1);  // the attacker-refused one is counted apart
  EXPECT_EQ(by["direct_jailbreak"].attacker_refused, 1);
  EXPECT_DOUBLE_EQ(by["direct_jailbreak"].rate, 1.0);
  const Interval w = WilsonInterval(1, 1);
  EXPECT_DOUBLE_EQ(by["direct_jailbreak"].ci.lo, w.lo);
  ASSERT_TRUE(report->has_paired_jailbreak);
  EXPECT_EQ(report->jailbreak_vs_direct.n, 2);
  EXPECT_EQ(report->jailbreak_vs_direct.only_a, 1);  // wrapper succeeded, direct did not
  EXPECT_EQ(report->tokens_by_role.at("target").prompt_tokens, 40);

  const std::string md = RenderCampaignMarkdown(*report);
  EXPECT_THAT(md, HasSubstr("| a\\|b |"));
  EXPECT_THAT(md, HasSubstr("Jailbreak wrapper, paired"));
  nlohmann::json j = nlohmann::json::parse(RenderCampaignJson(*report));
  EXPECT_EQ(j["jailbreak_vs_direct"]["n"], 2);
  auto findings = CampaignFindingsJsonl("rep", store->get());
  ASSERT_TRUE(findings.ok());
  ASSERT_EQ(findings->size(), 1u);
  EXPECT_EQ(nlohmann::json::parse((*findings)[0])["key"], "k2");
}

}  // namespace
}  // namespace breakfix
