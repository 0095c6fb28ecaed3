// Rogan-Gladen corrected rates: known cases, the interval's behaviour, the undefined cases, the
// samplers, and the judge validation file's round trip and errors.
#include "breakfix/corrected_rate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

namespace breakfix {
namespace {

TEST(CorrectedRateTest, RoganGladenPointEstimate) {
  // Se = 0.9, Sp = 0.95, q = 0.2: p = (0.2 + 0.95 - 1) / (0.9 + 0.95 - 1) = 0.15 / 0.85.
  auto r = CorrectDefectRateKnownAccuracy(200, 1000, 0.9, 0.95);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->defined) << r->reason;
  EXPECT_DOUBLE_EQ(r->raw, 0.2);
  EXPECT_NEAR(r->value, 0.15 / 0.85, 1e-12);
  EXPECT_NEAR(r->value, 0.176470588, 1e-9);
  EXPECT_NEAR(r->unclipped, r->value, 1e-15);
  EXPECT_LT(r->ci.lo, r->value);
  EXPECT_GT(r->ci.hi, r->value);

  // The same from validation counts: 90 of 100 defects found, 190 of 200 non-defects passed.
  BinaryCounts v{.tp = 90, .fp = 10, .fn = 10, .tn = 190};
  auto c = CorrectDefectRate(200, 1000, v);
  ASSERT_TRUE(c.ok());
  EXPECT_DOUBLE_EQ(c->sensitivity, 0.9);
  EXPECT_DOUBLE_EQ(c->specificity, 0.95);
  EXPECT_NEAR(c->value, 0.15 / 0.85, 1e-12);
  // Estimated accuracy adds uncertainty: wider than with Se and Sp known.
  EXPECT_GT(c->ci.hi - c->ci.lo, r->ci.hi - r->ci.lo);
}

TEST(CorrectedRateTest, PerfectJudgeKeepsTheRawRateAndItsInterval) {
  auto r = CorrectDefectRateKnownAccuracy(37, 250, 1.0, 1.0);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->defined);
  EXPECT_DOUBLE_EQ(r->value, 37.0 / 250.0);
  EXPECT_DOUBLE_EQ(r->raw, 37.0 / 250.0);
  // Every draw is p = q, so the interval is the plain one, bound for bound.
  EXPECT_DOUBLE_EQ(r->ci.lo, r->raw_ci.lo);
  EXPECT_DOUBLE_EQ(r->ci.hi, r->raw_ci.hi);
  // The plain interval is a Jeffreys interval: close to Wilson's at this size.
  Interval wilson = WilsonInterval(37, 250);
  EXPECT_NEAR(r->raw_ci.lo, wilson.lo, 0.006);
  EXPECT_NEAR(r->raw_ci.hi, wilson.hi, 0.006);

  // A judge that was perfect on a very large validation set gives nearly the same interval.
  BinaryCounts huge{.tp = 5'000'000, .fp = 0, .fn = 0, .tn = 5'000'000};
  auto c = CorrectDefectRate(37, 250, huge);
  ASSERT_TRUE(c.ok());
  EXPECT_DOUBLE_EQ(c->value, 37.0 / 250.0);
  EXPECT_NEAR(c->ci.hi - c->ci.lo, r->raw_ci.hi - r->raw_ci.lo, 1e-3);
  EXPECT_DOUBLE_EQ(c->raw_ci.lo, r->raw_ci.lo);  // the q draws do not depend on Se and Sp
}

TEST(CorrectedRateTest, IntervalWidensAsTheValidationShrinks) {
  // Se = 0.9 and Sp = 0.95 measured on ever smaller validation sets.
  double previous = 0;
  for (int64_t scale : {100, 10, 2}) {
    BinaryCounts v{.tp = 9 * scale, .fp = 1 * scale, .fn = 1 * scale, .tn = 19 * scale};
    auto r = CorrectDefectRate(200, 1000, v);
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(r->defined);
    EXPECT_NEAR(r->value, 0.15 / 0.85, 1e-12);
    const double width = r->ci.hi - r->ci.lo;
    EXPECT_GT(width, previous) << "validation with " << 30 * scale << " rows";
    previous = width;
  }
  // With 60 validation rows the interval is far wider than sampling error alone (about 0.05).
  EXPECT_GT(previous, 0.15);
}

TEST(CorrectedRateTest, NoBetterThanChanceIsReportedNotComputed) {
  // Se + Sp == 1: verdicts independent of the truth.
  auto r = CorrectDefectRateKnownAccuracy(30, 100, 0.6, 0.4);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->defined);
  EXPECT_NE(r->reason.find("no better than chance"), std::string::npos) << r->reason;
  EXPECT_DOUBLE_EQ(r->raw, 0.3);  // the raw rate is still reported
  EXPECT_TRUE(std::isfinite(r->value));
  // Se + Sp < 1 from counts.
  BinaryCounts worse{.tp = 3, .fp = 8, .fn = 7, .tn = 2};
  auto c = CorrectDefectRate(30, 100, worse);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->defined);
  EXPECT_NE(c->reason.find("no better than chance"), std::string::npos);
  EXPECT_DOUBLE_EQ(c->sensitivity, 0.3);
  EXPECT_DOUBLE_EQ(c->specificity, 0.2);
}

TEST(CorrectedRateTest, ValidationWithoutOneClassCannotCorrect) {
  auto r = CorrectDefectRate(10, 100, BinaryCounts{.tp = 0, .fp = 2, .fn = 0, .tn = 50});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->defined);
  EXPECT_NE(r->reason.find("sensitivity is unknown"), std::string::npos) << r->reason;
  r = CorrectDefectRate(10, 100, BinaryCounts{.tp = 40, .fp = 0, .fn = 3, .tn = 0});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->defined);
  EXPECT_NE(r->reason.find("specificity is unknown"), std::string::npos) << r->reason;
  r = CorrectDefectRate(0, 0, BinaryCounts{.tp = 4, .fp = 1, .fn = 1, .tn = 4});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->defined);
  EXPECT_NE(r->reason.find("no judged items"), std::string::npos);
}

TEST(CorrectedRateTest, ClipsToTheUnitInterval) {
  // q = 0.02 below the false-positive rate 1 - Sp = 0.05: the unclipped estimate is negative.
  auto r = CorrectDefectRateKnownAccuracy(2, 100, 0.9, 0.95);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->defined);
  EXPECT_LT(r->unclipped, 0);
  EXPECT_EQ(r->value, 0);
  EXPECT_EQ(r->ci.lo, 0);
  EXPECT_GT(r->ci.hi, 0);
  // q = 0.99 above Se = 0.9: clipped to 1.
  r = CorrectDefectRateKnownAccuracy(99, 100, 0.9, 0.95);
  ASSERT_TRUE(r.ok());
  EXPECT_GT(r->unclipped, 1);
  EXPECT_EQ(r->value, 1);
  EXPECT_EQ(r->ci.hi, 1);
}

TEST(CorrectedRateTest, WeakJudgeDrawsNearChanceWidenTheInterval) {
  // Se = 0.6, Sp = 0.5 from 10 rows each: many draws have Se + Sp <= 1.
  BinaryCounts v{.tp = 6, .fp = 5, .fn = 4, .tn = 5};
  auto r = CorrectDefectRate(40, 100, v);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->defined);
  EXPECT_GT(r->chance_draw_share, 0.025);
  // More than the tail share of draws could be anything: the interval spans everything.
  EXPECT_EQ(r->ci.lo, 0);
  EXPECT_EQ(r->ci.hi, 1);
}

TEST(CorrectedRateTest, DeterministicAndSeeded) {
  BinaryCounts v{.tp = 45, .fp = 4, .fn = 5, .tn = 46};
  CorrectedRateOptions o;
  o.draws = 2000;
  auto a = CorrectDefectRate(120, 600, v, o);
  auto b = CorrectDefectRate(120, 600, v, o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->ci.lo, b->ci.lo);
  EXPECT_EQ(a->ci.hi, b->ci.hi);
  o.seed = 7;
  auto c = CorrectDefectRate(120, 600, v, o);
  EXPECT_TRUE(c->ci.lo != a->ci.lo || c->ci.hi != a->ci.hi);
  EXPECT_EQ(c->value, a->value);
}

TEST(CorrectedRateTest, BadInputIsAnError) {
  EXPECT_EQ(CorrectDefectRate(5, 4, BinaryCounts{.tp = 1, .tn = 1}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CorrectDefectRate(-1, 4, BinaryCounts{.tp = 1, .tn = 1}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CorrectDefectRate(1, 4, BinaryCounts{.tp = -1, .tn = 1}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CorrectDefectRateKnownAccuracy(1, 4, 1.2, 0.9).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CorrectDefectRateKnownAccuracy(1, 4, NAN, 0.9).status().code(),
            StatusCode::kInvalidArgument);
  CorrectedRateOptions o;
  o.draws = 10;
  EXPECT_EQ(CorrectDefectRateKnownAccuracy(1, 4, 0.9, 0.9, o).status().code(),
            StatusCode::kInvalidArgument);
  o = CorrectedRateOptions{};
  o.level = 1;
  EXPECT_EQ(CorrectDefectRateKnownAccuracy(1, 4, 0.9, 0.9, o).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(SamplerTest, GammaAndBetaMoments) {
  Random rng(42);
  for (double shape : {0.5, 1.0, 3.7}) {
    double sum = 0, sq = 0;
    const int n = 40000;
    for (int i = 0; i < n; ++i) {
      const double x = SampleGamma(&rng, shape);
      ASSERT_GE(x, 0);
      sum += x;
      sq += x * x;
    }
    const double mean = sum / n, var = sq / n - mean * mean;
    EXPECT_NEAR(mean, shape, 0.04 * shape + 0.01) << "shape " << shape;
    EXPECT_NEAR(var, shape, 0.08 * shape + 0.02) << "shape " << shape;
  }
  // Beta(2.5, 7.5): mean 0.25, variance ab / ((a+b)^2 (a+b+1)) = 18.75 / (100 * 11) = 0.017045.
  double sum = 0, sq = 0;
  const int n = 40000;
  for (int i = 0; i < n; ++i) {
    const double x = SampleBeta(&rng, 2.5, 7.5);
    ASSERT_GE(x, 0);
    ASSERT_LE(x, 1);
    sum += x;
    sq += x * x;
  }
  EXPECT_NEAR(sum / n, 0.25, 0.003);
  EXPECT_NEAR(sq / n - (sum / n) * (sum / n), 0.017045, 0.0008);
}

JudgeValidation SampleValidation() {
  JudgeValidation v;
  v.labels_file = "labels.csv";
  v.labels_sha256 = "ab12";
  v.label_kind = "binary";
  v.rows = 12;
  v.skipped_rows = 1;
  ValidatedJudge j;
  j.judge = "refusal-prefix/0123456789ab";
  j.threshold = 1;
  j.overall = {.tp = 5, .fp = 1, .fn = 0, .tn = 5};
  j.overall_unscorable = 1;
  j.rubrics["jailbreak"] =
      RubricValidation{"binary", 1, BinaryCounts{.tp = 5, .fp = 1, .fn = 0, .tn = 5}, 1};
  v.judges.push_back(j);
  j.judge = "column:llama_guard";
  j.rubrics["jailbreak"].scale = "severity";
  j.rubrics["jailbreak"].threshold = 3;
  v.judges.push_back(j);
  return v;
}

TEST(JudgeValidationFileTest, RoundTrip) {
  const JudgeValidation v = SampleValidation();
  const std::string text = JudgeValidationToJson(v);
  EXPECT_EQ(text.rfind("{\n  \"kind\": \"breakfix-judge-validation\",\n  \"version\": 1,", 0), 0u)
      << text;
  auto back = ParseJudgeValidation(text, "v.json");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->labels_file, "labels.csv");
  EXPECT_EQ(back->labels_sha256, "ab12");
  EXPECT_EQ(back->rows, 12);
  EXPECT_EQ(back->skipped_rows, 1);
  ASSERT_EQ(back->judges.size(), 2u);
  EXPECT_EQ(back->judges[0].judge, "refusal-prefix/0123456789ab");
  EXPECT_EQ(back->judges[0].overall, v.judges[0].overall);
  EXPECT_EQ(back->judges[0].overall_unscorable, 1);
  EXPECT_EQ(back->judges[1].rubrics.at("jailbreak").scale, "severity");
  EXPECT_EQ(back->judges[1].rubrics.at("jailbreak").threshold, 3);
  EXPECT_EQ(JudgeValidationToJson(*back), text);  // stable

  auto found = FindRubricValidation(*back, "refusal-prefix/0123456789ab", "jailbreak");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->counts.tp, 5);
  auto missing = FindRubricValidation(*back, "refusal-prefix/0123456789ab", "violence");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("covers: jailbreak"), std::string::npos);
  missing = FindRubricValidation(*back, "llm-judge/x", "jailbreak");
  EXPECT_NE(missing.status().message().find("column:llama_guard"), std::string::npos);
}

TEST(JudgeValidationFileTest, WriteAndReadAFile) {
  const std::string dir = ::testing::TempDir() + "/corrected_rate_test";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/validation.json";
  ASSERT_TRUE(WriteJudgeValidation(path, SampleValidation()).ok());
  auto read = ReadJudgeValidation(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->judges.size(), 2u);
  auto missing = ReadJudgeValidation(dir + "/nope.json");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.json"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(JudgeValidationFileTest, ErrorsNameTheFileAndField) {
  const std::string good = JudgeValidationToJson(SampleValidation());
  auto expect_error = [](const std::string& text, const std::string& needle) {
    auto r = ParseJudgeValidation(text, "v.json");
    ASSERT_FALSE(r.ok()) << "expected an error containing: " << needle;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
    EXPECT_EQ(r.status().message().rfind("v.json: ", 0), 0u) << r.status().message();
  };
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  expect_error("{", "not valid JSON");
  expect_error("[]", "expected a JSON object");
  expect_error(replace("\"breakfix-judge-validation\"", "\"other\""), "kind is \"other\"");
  expect_error(replace("\"version\": 1", "\"version\": 2"), "version is 2");
  expect_error(replace("\"tp\": 5", "\"tp\": \"x\""),
               "judges[0].overall.tp is \"x\", expected a non-negative integer");
  expect_error(replace("\"tn\": 5,", "\"tn\": -5,"), "judges[0].overall.tn is -5");
  expect_error(replace("\"scale\": \"binary\",", ""),
               "judges[0].rubrics.jailbreak.scale is missing");
  expect_error(replace("\"label_kind\": \"binary\"", "\"label_kind\": \"ternary\""),
               "labels.label_kind");
  expect_error(replace("\"threshold\": 1,", "\"threshold\": 0,"),
               "judges[0].threshold is 0, expected an integer 1..7");
  expect_error(replace("\"threshold\": 3,", "\"threshold\": 9,"),
               "judges[1].rubrics.jailbreak.threshold is 9, expected an integer 1..7");
  // Unknown keys are tolerated (a later version-1 writer may add information).
  auto extra =
      ParseJudgeValidation(replace("\"version\": 1,", "\"version\": 1, \"note\": 3,"), "v.json");
  EXPECT_TRUE(extra.ok()) << extra.status().ToString();
}

}  // namespace
}  // namespace breakfix
