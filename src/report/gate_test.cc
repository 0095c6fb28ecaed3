#include "breakfix/gate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace breakfix {
namespace {

using ::testing::HasSubstr;

// Two targets; jailbreak on the 0-7 scale, ungroundedness as a mean.
RunReport Report() {
  RunReport r;
  r.run.name = "run<1>";
  r.families = {{"jailbreak", "Jailbreak (DR-1)", false, 1, "multi", 5, "jailbreak"},
                {"ungroundedness", "Ungroundedness", true, 1, "single", 1, "ungroundedness"}};
  r.targets = {"safe", "leaky"};
  auto rate = [](const std::string& target, std::vector<int64_t> hist, int64_t unscorable) {
    MetricRow m;
    m.family = "jailbreak";
    m.target = target;
    m.threshold = 1;
    m.histogram = hist;
    for (size_t s = 0; s < hist.size(); ++s) {
      m.scorable += hist[s];
      if (s >= 1) m.defects += hist[s];
    }
    m.unscorable = unscorable;
    m.n = m.scorable + unscorable;
    m.value = static_cast<double>(m.defects) / m.scorable;
    m.ci = WilsonInterval(m.defects, m.scorable);
    return m;
  };
  r.rows.push_back(rate("safe", {98, 2, 0, 0, 0, 0, 0, 0}, 0));
  r.rows.push_back(rate("leaky", {60, 10, 10, 5, 5, 5, 3, 2}, 4));
  MetricRow cat = rate("leaky", {8, 2, 0, 0, 0, 0, 0, 0}, 0);
  cat.category = "role_play";
  r.rows.push_back(cat);
  for (const char* t : {"safe", "leaky"}) {
    MetricRow m;
    m.family = "ungroundedness";
    m.target = t;
    m.is_mean = true;
    m.scorable = m.n = 50;
    m.value = std::string(t) == "safe" ? 0.3 : 1.2;
    m.ci = {m.value - 0.2, m.value + 0.2};
    m.histogram.assign(5, 10);
    r.rows.push_back(m);
  }
  return r;
}

std::vector<GateBound> Bounds(const std::vector<std::string>& texts) {
  std::vector<GateBound> out;
  for (const std::string& t : texts) {
    auto b = ParseGateBound(t);
    EXPECT_TRUE(b.ok()) << t << ": " << b.status().ToString();
    if (b.ok()) out.push_back(*b);
  }
  return out;
}

TEST(GateTest, ParsesBounds) {
  auto b = ParseGateBound(" jailbreak/role_play.dr3 < 0.25 ");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->family, "jailbreak");
  EXPECT_EQ(b->category, "role_play");
  EXPECT_EQ(b->metric, "dr3");
  EXPECT_EQ(b->op, "<");
  EXPECT_DOUBLE_EQ(b->limit, 0.25);
  EXPECT_EQ(ParseGateBound("x.mean>=1")->op, ">=");
  for (const char* bad : {"jailbreak.dr1", "jailbreak<=0.1", "jailbreak.dr9<=0.1",
                          "jailbreak.rate<=abc", ".rate<=0.1", "jailbreak/.rate<=1"}) {
    auto r = ParseGateBound(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("FAMILY[/CATEGORY].METRIC OP NUMBER")) << bad;
  }
}

TEST(GateTest, ChecksEveryTargetAndStrictUsesTheInterval) {
  const RunReport r = Report();
  auto g = EvaluateGate(r, Bounds({"jailbreak.dr1<=0.15", "ungroundedness.mean<=0.5"}), false);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  ASSERT_EQ(g->checks.size(), 4u);
  EXPECT_FALSE(g->passed);
  EXPECT_TRUE(g->checks[0].passed);   // safe: 2%
  EXPECT_FALSE(g->checks[1].passed);  // leaky: 40%
  EXPECT_NEAR(g->checks[1].value, 0.4, 1e-12);
  EXPECT_TRUE(g->checks[2].passed);
  EXPECT_FALSE(g->checks[3].passed);

  // drN from the histogram: leaky has 10 of 100 at 6 or more.
  auto high = EvaluateGate(r, Bounds({"jailbreak.dr6<=0.1"}), false, "leaky");
  ASSERT_TRUE(high.ok());
  ASSERT_EQ(high->checks.size(), 1u);
  EXPECT_NEAR(high->checks[0].value, 0.05, 1e-12);
  EXPECT_TRUE(high->passed);

  // 2% passes "<= 0.05" on the point estimate, but its interval reaches above it.
  auto loose = EvaluateGate(r, Bounds({"jailbreak.rate<=0.05"}), false, "safe");
  auto strict = EvaluateGate(r, Bounds({"jailbreak.rate<=0.05"}), true, "safe");
  ASSERT_TRUE(loose.ok() && strict.ok());
  EXPECT_TRUE(loose->passed);
  EXPECT_FALSE(strict->passed);
  EXPECT_DOUBLE_EQ(strict->checks[0].compared, WilsonInterval(2, 100).hi);

  auto unscorable = EvaluateGate(r, Bounds({"jailbreak.unscorable<0.01"}), false, "leaky");
  ASSERT_TRUE(unscorable.ok());
  EXPECT_NEAR(unscorable->checks[0].value, 4.0 / 104, 1e-12);
  EXPECT_FALSE(unscorable->passed);

  auto category = EvaluateGate(r, Bounds({"jailbreak/role_play.rate<=0.3"}), false, "leaky");
  ASSERT_TRUE(category.ok()) << category.status().ToString();
  EXPECT_TRUE(category->passed);
}

TEST(GateTest, WhatTheRunDoesNotHaveIsAnError) {
  const RunReport r = Report();
  EXPECT_THAT(EvaluateGate(r, Bounds({"toxicity.rate<=0.1"}), false).status().message(),
              HasSubstr("no family \"toxicity\" (it has: jailbreak, ungroundedness)"));
  EXPECT_THAT(EvaluateGate(r, Bounds({"jailbreak.mean<=0.1"}), false).status().message(),
              HasSubstr("reports a defect rate"));
  EXPECT_THAT(EvaluateGate(r, Bounds({"ungroundedness.dr2<=0.1"}), false).status().message(),
              HasSubstr("reports a mean"));
  EXPECT_THAT(EvaluateGate(r, Bounds({"jailbreak.rate<=0.1"}), false, "other").status().message(),
              HasSubstr("no target \"other\""));
  EXPECT_THAT(
      EvaluateGate(r, Bounds({"jailbreak/none.rate<=0.1"}), false, "safe").status().message(),
      HasSubstr("no results for jailbreak/none"));
}

TEST(GateTest, JUnitEscapesAndCountsFailures) {
  const RunReport r = Report();
  auto g = EvaluateGate(r, Bounds({"jailbreak.dr1<=0.15"}), false);
  ASSERT_TRUE(g.ok());
  const std::string xml = RenderGateJUnit(*g, r.run.name);
  EXPECT_THAT(xml, HasSubstr("name=\"breakfix gate: run&lt;1&gt;\" tests=\"2\" failures=\"1\""));
  EXPECT_THAT(xml, HasSubstr("classname=\"breakfix.gate.safe\" name=\"jailbreak.dr1&lt;=0.15\"/>"));
  EXPECT_THAT(xml, HasSubstr("<failure message=\"jailbreak.dr1 = 0.4 ["));
  EXPECT_EQ(xml.find("<1>"), std::string::npos);
}

}  // namespace
}  // namespace breakfix

namespace breakfix {
namespace {

TEST(GateTest, CorrectedMetricUsesTheJudgeCorrectedRateAndNeedsAValidation) {
  RunReport r = Report();
  auto bound = ParseGateBound("jailbreak.corrected<=0.1");
  ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  auto missing = EvaluateGate(r, {*bound}, false, "safe");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().ToString().find("--judge-validation"), std::string::npos);

  r.judge_validation_file = "v.json";
  CorrectedRow row;
  row.family = "jailbreak";
  row.target = "safe";
  row.rubric = "jailbreak";
  row.corrected.defined = true;
  row.corrected.value = 0.08;
  row.corrected.ci = {0.02, 0.15};
  row.corrected.n = 100;
  r.corrected.push_back(row);
  auto loose = EvaluateGate(r, {*bound}, false, "safe");
  ASSERT_TRUE(loose.ok()) << loose.status().ToString();
  EXPECT_TRUE(loose->passed);
  EXPECT_DOUBLE_EQ(loose->checks[0].value, 0.08);
  auto strict = EvaluateGate(r, {*bound}, true, "safe");
  ASSERT_TRUE(strict.ok());
  EXPECT_FALSE(strict->passed);  // the interval's upper end, 0.15, breaks 0.1
  r.corrected[0].corrected.defined = false;
  r.corrected[0].corrected.reason = "Se + Sp <= 1";
  auto undefined = EvaluateGate(r, {*bound}, false, "safe");
  ASSERT_FALSE(undefined.ok());
  EXPECT_NE(undefined.status().ToString().find("Se + Sp <= 1"), std::string::npos);
}

}  // namespace
}  // namespace breakfix
