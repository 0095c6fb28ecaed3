#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace breakfix::engine {
namespace {

GenerationParams Params(double temperature) {
  GenerationParams p;
  p.temperature = temperature;
  return p;
}

// Logits whose softmax is exactly `probs`.
std::vector<float> FromProbs(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(static_cast<float>(std::log(p)));
  return out;
}

std::vector<int32_t> Draw(Sampler& s, const std::vector<float>& logits, int n) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(s.Sample(logits).id);
  return out;
}

std::map<int32_t, int> Histogram(const std::vector<int32_t>& ids) {
  std::map<int32_t, int> h;
  for (int32_t id : ids) ++h[id];
  return h;
}

TEST(SamplerTest, GreedyTakesTheMaximumAndBreaksTiesTowardsTheLowerId) {
  Sampler s(Params(0), 1);
  EXPECT_EQ(s.Sample(std::vector<float>{0.1f, 3.0f, -2.0f, 2.9f}).id, 1);
  EXPECT_EQ(s.Sample(std::vector<float>{1.0f, 5.0f, 5.0f, 5.0f}).id, 1);
  EXPECT_EQ(s.Sample(std::vector<float>{-INFINITY, -INFINITY, -1e30f}).id, 2);
  // NaN is never chosen over a number.
  EXPECT_EQ(s.Sample(std::vector<float>{NAN, -5.0f, NAN}).id, 1);
}

TEST(SamplerTest, GreedyIgnoresTheSeed) {
  const std::vector<float> logits = {0.5f, 0.7f, 0.6f};
  Sampler a(Params(0), 1), b(Params(0), 999);
  EXPECT_EQ(Draw(a, logits, 20), Draw(b, logits, 20));
  EXPECT_EQ(Draw(a, logits, 1)[0], 1);
}

TEST(SamplerTest, SameSeedSameTokensDifferentSeedsDiffer) {
  const std::vector<float> logits = FromProbs({0.2, 0.2, 0.2, 0.2, 0.2});
  Sampler a(Params(1.0), 42), b(Params(1.0), 42), c(Params(1.0), 43);
  const auto da = Draw(a, logits, 64), db = Draw(b, logits, 64), dc = Draw(c, logits, 64);
  EXPECT_EQ(da, db);
  EXPECT_NE(da, dc);
  EXPECT_EQ(Histogram(da).size(), 5u);  // all five equally likely tokens appear
}

TEST(SamplerTest, TopKOneEqualsGreedyAtAnyTemperature) {
  GenerationParams p = Params(1.7);
  p.top_k = 1;
  Sampler s(p, 5);
  const std::vector<float> logits = {0.1f, 0.4f, 0.39f, -1.0f};
  for (int32_t id : Draw(s, logits, 50)) EXPECT_EQ(id, 1);
}

TEST(SamplerTest, TopKKeepsOnlyTheKBest) {
  GenerationParams p = Params(1.0);
  p.top_k = 3;
  Sampler s(p, 9);
  const std::vector<float> logits = FromProbs({0.1, 0.25, 0.05, 0.3, 0.2, 0.1});
  const auto h = Histogram(Draw(s, logits, 3000));
  EXPECT_EQ(h.size(), 3u);
  EXPECT_TRUE(h.count(1) && h.count(3) && h.count(4));
}

TEST(SamplerTest, TopPKeepsTheSmallestNucleus) {
  const std::vector<float> logits = FromProbs({0.5, 0.3, 0.15, 0.05});
  GenerationParams p = Params(1.0);
  p.top_p = 0.75;
  Sampler a(p, 3);
  auto h = Histogram(Draw(a, logits, 3000));
  EXPECT_EQ(h.size(), 2u);
  EXPECT_TRUE(h.count(0) && h.count(1));
  p.top_p = 0.85;
  Sampler b(p, 3);
  h = Histogram(Draw(b, logits, 3000));
  EXPECT_EQ(h.size(), 3u);
  EXPECT_FALSE(h.count(3));
  // Renormalised over the nucleus: 0.5 / 0.95 of the draws are token 0 (loose bound).
  EXPECT_NEAR(h[0] / 3000.0, 0.5 / 0.95, 0.04);
}

TEST(SamplerTest, TopPOnALargeVocabularyBothWithAndWithoutTheShortcut) {
  // A peaked distribution: the nucleus is found among the first few hundred candidates.
  std::vector<float> peaked(5000, 0.0f);
  peaked[4321] = 12.0f;
  peaked[17] = 11.0f;
  GenerationParams p = Params(1.0);
  p.top_p = 0.9;
  Sampler a(p, 1);
  const auto ha = Histogram(Draw(a, peaked, 500));
  for (const auto& [id, n] : ha) EXPECT_TRUE(id == 4321 || id == 17) << id;
  // A flat one: the nucleus is the first ~4500 ids by the tie-break (give or take float
  // rounding of the cumulative mass at the boundary); none of the last 400 may appear.
  std::vector<float> flat(5000, 1.0f);
  Sampler b(p, 2);
  const auto hb = Histogram(Draw(b, flat, 2000));
  EXPECT_GT(hb.size(), 1000u);
  EXPECT_LT(hb.rbegin()->first, 4600);
  EXPECT_GT(hb.rbegin()->first, 4000);
}

TEST(SamplerTest, MinPDropsTokensFarBelowTheBest) {
  const std::vector<float> logits = FromProbs({0.5, 0.3, 0.15, 0.05});
  GenerationParams p = Params(1.0);
  p.min_p = 0.4;  // keeps p >= 0.2
  Sampler s(p, 4);
  const auto h = Histogram(Draw(s, logits, 2000));
  EXPECT_EQ(h.size(), 2u);
  EXPECT_TRUE(h.count(0) && h.count(1));
}

TEST(SamplerTest, TemperatureSharpensAndFlattens) {
  const std::vector<float> logits = FromProbs({0.6, 0.4});
  Sampler cold(Params(0.25), 8), hot(Params(4.0), 8);
  const auto hc = Histogram(Draw(cold, logits, 4000));
  const auto hh = Histogram(Draw(hot, logits, 4000));
  // p0 at T: 0.6^(1/T) / (0.6^(1/T) + 0.4^(1/T)): 0.835 at T = 0.25, 0.525 at T = 4.
  EXPECT_NEAR(hc.at(0) / 4000.0, 0.835, 0.03);
  EXPECT_NEAR(hh.at(0) / 4000.0, 0.525, 0.03);
}

TEST(SamplerTest, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  GenerationParams p = Params(0);
  p.repetition_penalty = 1.5;
  {
    Sampler s(p, 1);
    const std::vector<int32_t> seen = {0};
    s.Observe(seen);
    // 2.0 / 1.5 = 1.33 < 1.9.
    EXPECT_EQ(s.Sample(std::vector<float>{2.0f, 1.9f, -3.0f}).id, 1);
  }
  {
    p.repetition_penalty = 2.0;
    Sampler s(p, 1);
    const std::vector<int32_t> seen = {0, 0, 0};
    s.Observe(seen);
    // -1.0 * 2 = -2.0 < -1.2.
    EXPECT_EQ(s.Sample(std::vector<float>{-1.0f, -1.2f}).id, 1);
    // Token 1 is now in the sequence too: -2.4 < -2.0.
    EXPECT_EQ(s.Sample(std::vector<float>{-1.0f, -1.2f}).id, 0);
  }
  {
    GenerationParams off = Params(0);
    Sampler s(off, 1);
    const std::vector<int32_t> seen = {0};
    s.Observe(seen);
    EXPECT_EQ(s.Sample(std::vector<float>{2.0f, 1.9f}).id, 0);
  }
}

TEST(SamplerTest, LogprobIsTheModelsOwnLogSoftmax) {
  const std::vector<float> logits = {3.0f, 2.0f, 1.0f, -1.0f};
  double norm = 0;
  for (float l : logits) norm += std::exp(l);
  GenerationParams p = Params(0);
  p.logprobs = true;
  p.repetition_penalty = 3.0;  // changes the choice, not the reported probability
  Sampler s(p, 1);
  SampledToken first = s.Sample(logits);
  EXPECT_EQ(first.id, 0);
  EXPECT_NEAR(first.logprob, 3.0 - std::log(norm), 1e-5);
  SampledToken second = s.Sample(logits);
  EXPECT_EQ(second.id, 1);
  EXPECT_NEAR(second.logprob, 2.0 - std::log(norm), 1e-5);

  p = Params(2.0);
  p.logprobs = true;
  Sampler t(p, 3);
  for (int i = 0; i < 100; ++i) {
    SampledToken tok = t.Sample(logits);
    EXPECT_LE(tok.logprob, 0.0f);
    EXPECT_NEAR(tok.logprob, logits[tok.id] - std::log(norm), 1e-5);
  }
}

TEST(SamplerTest, ValidateNamesTheBadField) {
  const std::vector<std::pair<std::function<void(GenerationParams&)>, std::string>> cases = {
      {[](GenerationParams& p) { p.max_tokens = 0; }, "max_tokens"},
      {[](GenerationParams& p) { p.temperature = -0.5; }, "temperature"},
      {[](GenerationParams& p) { p.temperature = NAN; }, "temperature"},
      {[](GenerationParams& p) { p.top_k = -1; }, "top_k"},
      {[](GenerationParams& p) { p.top_p = 0; }, "top_p"},
      {[](GenerationParams& p) { p.top_p = 1.5; }, "top_p"},
      {[](GenerationParams& p) { p.min_p = -0.1; }, "min_p"},
      {[](GenerationParams& p) { p.repetition_penalty = 0; }, "repetition_penalty"},
      {[](GenerationParams& p) {
         p.stop = {"ok", ""};
       },
       "stop[1]"},
  };
  for (const auto& [edit, field] : cases) {
    GenerationParams p;
    edit(p);
    Status s = ValidateGenerationParams(p);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << field;
    EXPECT_NE(s.message().find(field), std::string::npos) << s.message();
  }
  EXPECT_TRUE(ValidateGenerationParams(GenerationParams{}).ok());
}

}  // namespace
}  // namespace breakfix::engine
