// Agreement statistics against hand-computed values, and the bootstrap's determinism and
// behaviour.
#include "breakfix/agreement.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>

#include "breakfix/classifier_judge.h"

namespace breakfix {
namespace {

ConfusionMatrix FromRows(const std::vector<std::vector<int64_t>>& rows) {
  ConfusionMatrix m(static_cast<int>(rows.size()));
  for (size_t t = 0; t < rows.size(); ++t) {
    for (size_t j = 0; j < rows[t].size(); ++j) {
      EXPECT_TRUE(m.Add(static_cast<int>(t), static_cast<int>(j), rows[t][j]));
    }
  }
  return m;
}

TEST(ConfusionMatrixTest, CountsMarginsAndBounds) {
  ConfusionMatrix m(3);
  EXPECT_TRUE(m.Add(0, 1));
  EXPECT_TRUE(m.Add(0, 1, 2));
  EXPECT_TRUE(m.Add(2, 2, 4));
  EXPECT_FALSE(m.Add(3, 0));   // level out of range
  EXPECT_FALSE(m.Add(0, -1));  // level out of range
  EXPECT_FALSE(m.Add(1, 1, -1));
  EXPECT_EQ(m.at(0, 1), 3);
  EXPECT_EQ(m.at(5, 5), 0);
  EXPECT_EQ(m.total(), 7);
  EXPECT_EQ(m.truth_total(0), 3);
  EXPECT_EQ(m.judged_total(1), 3);
  EXPECT_EQ(m.judged_total(2), 4);
  EXPECT_EQ(m.rows(), (std::vector<std::vector<int64_t>>{{0, 3, 0}, {0, 0, 0}, {0, 0, 4}}));
}

TEST(ConfusionMatrixTest, DichotomizeAndBack) {
  // Severity-like levels 0..3 at threshold 2: levels 2 and 3 are defects.
  ConfusionMatrix m = FromRows({{5, 1, 1, 0}, {2, 3, 0, 1}, {0, 1, 4, 2}, {0, 0, 1, 6}});
  BinaryCounts c = Dichotomize(m, 2);
  EXPECT_EQ(c.tn, 5 + 1 + 2 + 3);  // truth 0..1, judged 0..1
  EXPECT_EQ(c.fp, 1 + 0 + 0 + 1);  // truth 0..1, judged 2..3
  EXPECT_EQ(c.fn, 0 + 1 + 0 + 0);  // truth 2..3, judged 0..1
  EXPECT_EQ(c.tp, 4 + 2 + 1 + 6);
  EXPECT_EQ(c.n(), m.total());
  EXPECT_EQ(BinaryMatrix(c).rows(),
            (std::vector<std::vector<int64_t>>{{c.tn, c.fp}, {c.fn, c.tp}}));
  EXPECT_EQ(Dichotomize(BinaryMatrix(c), 1), c);
}

// A worked binary example, by hand. Rows are the human label, columns the judge:
//                judge no  judge yes
//   human no        40        10        (tn = 40, fp = 10)
//   human yes        5        45        (fn = 5,  tp = 45)
// n = 100. accuracy = 85/100 = 0.85. precision = 45/55 = 0.818181..., recall = 45/50 = 0.9,
// specificity = 40/50 = 0.8, F1 = 2*45 / (2*45 + 10 + 5) = 90/105 = 0.857142...
// Cohen's kappa: p_o = 0.85; row totals 50, 50; column totals 45, 55;
// p_e = (50*45 + 50*55) / 100^2 = 5000/10000 = 0.5; kappa = (0.85 - 0.5) / (1 - 0.5) = 0.7.
TEST(BinaryAgreementTest, WorkedExample) {
  BinaryCounts c{.tp = 45, .fp = 10, .fn = 5, .tn = 40};
  AgreementOptions options;
  options.bootstrap = 500;
  BinaryAgreement a = ComputeBinaryAgreement(c, options);
  EXPECT_EQ(a.counts, c);
  EXPECT_DOUBLE_EQ(a.accuracy.value, 0.85);
  EXPECT_EQ(a.accuracy.n, 100);
  EXPECT_NEAR(a.precision.value, 45.0 / 55.0, 1e-12);
  EXPECT_DOUBLE_EQ(a.recall.value, 0.9);
  EXPECT_DOUBLE_EQ(a.specificity.value, 0.8);
  ASSERT_TRUE(a.f1.value);
  EXPECT_NEAR(*a.f1.value, 90.0 / 105.0, 1e-12);
  ASSERT_TRUE(a.kappa.value);
  EXPECT_NEAR(*a.kappa.value, 0.7, 1e-12);
  // Proportions carry Wilson intervals.
  Interval w = WilsonInterval(85, 100);
  EXPECT_DOUBLE_EQ(a.accuracy.ci.lo, w.lo);
  EXPECT_DOUBLE_EQ(a.accuracy.ci.hi, w.hi);
  w = WilsonInterval(40, 50);
  EXPECT_DOUBLE_EQ(a.specificity.ci.lo, w.lo);
  // Bootstrap intervals surround the estimate and stay in range.
  ASSERT_TRUE(a.f1.ci);
  ASSERT_TRUE(a.kappa.ci);
  EXPECT_LT(a.f1.ci->lo, *a.f1.value);
  EXPECT_GT(a.f1.ci->hi, *a.f1.value);
  EXPECT_LT(a.kappa.ci->lo, 0.7);
  EXPECT_GT(a.kappa.ci->hi, 0.7);
  EXPECT_GE(a.kappa.ci->lo, -1.0);
  EXPECT_LE(a.kappa.ci->hi, 1.0);
  // kappa's standard error here is about 0.07, so the 95% interval is roughly 0.7 +- 0.14.
  EXPECT_NEAR(a.kappa.ci->hi - a.kappa.ci->lo, 0.28, 0.08);
}

// A worked 3-level example, by hand. Rows human, columns judge:
//   [10  2  0]   row 12
//   [ 3  8  1]   row 12
//   [ 0  2  4]   row  6
//   col 13 12 5, n = 30
// Unweighted: p_o = (10 + 8 + 4)/30 = 22/30; p_e = (12*13 + 12*12 + 6*5)/900 = 330/900 = 11/30;
// kappa = (22/30 - 11/30) / (1 - 11/30) = 11/19 = 0.578947...
// Quadratic weights (i - j)^2: off-diagonal observed sum = 1*2 + 4*0 + 1*3 + 1*1 + 4*0 + 1*2 = 8.
// Expected E_ij = row_i * col_j / 30: E01 = 4.8, E02 = 2, E10 = 5.2, E12 = 2, E20 = 2.6,
// E21 = 2.4; weighted sum = 4.8 + 8 + 5.2 + 2 + 10.4 + 2.4 = 32.8.
// kappa_w = 1 - 8/32.8 = 1 - 10/41 = 31/41 = 0.756097...
TEST(ExactAgreementTest, WorkedExample) {
  ConfusionMatrix m = FromRows({{10, 2, 0}, {3, 8, 1}, {0, 2, 4}});
  ASSERT_TRUE(CohenKappa(m));
  EXPECT_NEAR(*CohenKappa(m), 11.0 / 19.0, 1e-12);
  ASSERT_TRUE(QuadraticWeightedKappa(m));
  EXPECT_NEAR(*QuadraticWeightedKappa(m), 31.0 / 41.0, 1e-12);

  AgreementOptions options;
  options.bootstrap = 300;
  ExactAgreement a = ComputeExactAgreement(m, options);
  EXPECT_NEAR(a.accuracy.value, 22.0 / 30.0, 1e-12);
  EXPECT_EQ(a.accuracy.successes, 22);
  ASSERT_TRUE(a.kappa.value && a.quadratic_kappa.value);
  EXPECT_NEAR(*a.kappa.value, 11.0 / 19.0, 1e-12);
  EXPECT_NEAR(*a.quadratic_kappa.value, 31.0 / 41.0, 1e-12);
  ASSERT_TRUE(a.kappa.ci && a.quadratic_kappa.ci);
  EXPECT_LT(a.quadratic_kappa.ci->lo, 31.0 / 41.0);
  EXPECT_GT(a.quadratic_kappa.ci->hi, 31.0 / 41.0);
  EXPECT_EQ(a.matrix, m);
}

// The classifier judge's validation computes the quadratic kappa its own way; both must agree.
TEST(ExactAgreementTest, QuadraticKappaMatchesClassifierValidation) {
  std::vector<std::array<int, 2>> pairs;
  ConfusionMatrix m(8);
  const int rows[][3] = {{0, 0, 9}, {0, 1, 2}, {1, 1, 3}, {2, 4, 1}, {3, 3, 4},
                         {4, 3, 2}, {5, 6, 1}, {6, 6, 5}, {7, 5, 1}, {0, 6, 1}};
  for (const auto& r : rows) {
    for (int i = 0; i < r[2]; ++i) pairs.push_back({r[0], r[1]});
    m.Add(r[0], r[1], r[2]);
  }
  auto theirs = ComputeAgreement("violence", Scale::kSeverity, pairs, 3);
  ASSERT_TRUE(theirs.ok()) << theirs.status().ToString();
  ASSERT_TRUE(theirs->quadratic_kappa && QuadraticWeightedKappa(m));
  EXPECT_NEAR(*QuadraticWeightedKappa(m), *theirs->quadratic_kappa, 1e-12);
  BinaryCounts c = Dichotomize(m, 3);
  EXPECT_EQ(c.tp, theirs->true_positive);
  EXPECT_EQ(c.fp, theirs->false_positive);
  EXPECT_EQ(c.fn, theirs->false_negative);
  EXPECT_EQ(c.tn, theirs->true_negative);
}

TEST(AgreementTest, UndefinedCases) {
  // Nothing at all.
  EXPECT_FALSE(CohenKappa(ConfusionMatrix(2)));
  EXPECT_FALSE(QuadraticWeightedKappa(ConfusionMatrix(2)));
  EXPECT_FALSE(F1Score(BinaryCounts{}));
  // Only negatives: no F1, and both raters on one level means p_e = 1: no kappa.
  BinaryCounts negatives{.tp = 0, .fp = 0, .fn = 0, .tn = 20};
  EXPECT_FALSE(F1Score(negatives));
  EXPECT_FALSE(CohenKappa(BinaryMatrix(negatives)));
  BinaryAgreement a = ComputeBinaryAgreement(negatives, AgreementOptions{});
  EXPECT_EQ(a.precision.n, 0);  // no judged defects
  EXPECT_EQ(a.recall.n, 0);     // no labelled defects
  EXPECT_EQ(a.precision.ci.lo, 0);
  EXPECT_EQ(a.precision.ci.hi, 1);
  EXPECT_DOUBLE_EQ(a.specificity.value, 1.0);
  EXPECT_FALSE(a.f1.value);
  EXPECT_FALSE(a.f1.ci);
  EXPECT_FALSE(a.kappa.value);
  // Only true positives: F1 is 1, kappa still undefined (one level for both raters).
  BinaryCounts positives{.tp = 7, .fp = 0, .fn = 0, .tn = 0};
  EXPECT_DOUBLE_EQ(*F1Score(positives), 1.0);
  EXPECT_FALSE(CohenKappa(BinaryMatrix(positives)));
  // A judge that always says "defect" against mixed labels: kappa is exactly 0 (p_o = p_e).
  BinaryCounts always{.tp = 6, .fp = 4, .fn = 0, .tn = 0};
  ASSERT_TRUE(CohenKappa(BinaryMatrix(always)));
  EXPECT_NEAR(*CohenKappa(BinaryMatrix(always)), 0.0, 1e-12);
  // Complete disagreement on a balanced set: kappa = -1.
  BinaryCounts opposite{.tp = 0, .fp = 5, .fn = 5, .tn = 0};
  EXPECT_NEAR(*CohenKappa(BinaryMatrix(opposite)), -1.0, 1e-12);
}

TEST(AgreementTest, PerfectAgreementHasDegenerateIntervals) {
  BinaryCounts perfect{.tp = 30, .fp = 0, .fn = 0, .tn = 70};
  BinaryAgreement a = ComputeBinaryAgreement(perfect, AgreementOptions{});
  ASSERT_TRUE(a.kappa.value && a.kappa.ci);
  EXPECT_DOUBLE_EQ(*a.kappa.value, 1.0);
  EXPECT_DOUBLE_EQ(a.kappa.ci->lo, 1.0);
  EXPECT_DOUBLE_EQ(a.kappa.ci->hi, 1.0);
  EXPECT_DOUBLE_EQ(a.f1.ci->lo, 1.0);
  EXPECT_EQ(a.accuracy.ci.hi, 1.0);
  EXPECT_LT(a.accuracy.ci.lo, 1.0);  // Wilson still says 100/100 is not proof of perfection
}

TEST(BootstrapTest, DeterministicForASeedAndSensitiveToIt) {
  BinaryCounts c{.tp = 20, .fp = 6, .fn = 4, .tn = 30};
  AgreementOptions options;
  options.bootstrap = 400;
  BinaryAgreement a = ComputeBinaryAgreement(c, options);
  BinaryAgreement b = ComputeBinaryAgreement(c, options);
  ASSERT_TRUE(a.kappa.ci && b.kappa.ci);
  EXPECT_EQ(a.kappa.ci->lo, b.kappa.ci->lo);
  EXPECT_EQ(a.kappa.ci->hi, b.kappa.ci->hi);
  EXPECT_EQ(a.f1.ci->lo, b.f1.ci->lo);
  options.seed += 1;
  BinaryAgreement d = ComputeBinaryAgreement(c, options);
  EXPECT_TRUE(d.kappa.ci->lo != a.kappa.ci->lo || d.kappa.ci->hi != a.kappa.ci->hi);
  // No resamples: values, but no intervals.
  options.bootstrap = 0;
  BinaryAgreement none = ComputeBinaryAgreement(c, options);
  EXPECT_TRUE(none.kappa.value);
  EXPECT_FALSE(none.kappa.ci);
  EXPECT_FALSE(none.f1.ci);
}

TEST(BootstrapTest, AccuracyIntervalMatchesWilsonAndShrinksWithN) {
  // The bootstrap of a proportion should land close to the Wilson interval; this checks that the
  // resampling draws items in proportion to the cell counts.
  ConfusionMatrix m = FromRows({{150, 50}, {30, 170}});  // accuracy 320/400 = 0.8
  const MatrixStatistic accuracy = [](const ConfusionMatrix& x) -> std::optional<double> {
    if (x.total() == 0) return std::nullopt;
    return static_cast<double>(x.at(0, 0) + x.at(1, 1)) / static_cast<double>(x.total());
  };
  AgreementOptions options;
  options.bootstrap = 4000;
  std::vector<Statistic> s = BootstrapStatistics(m, {accuracy}, options);
  ASSERT_EQ(s.size(), 1u);
  ASSERT_TRUE(s[0].value && s[0].ci);
  EXPECT_DOUBLE_EQ(*s[0].value, 0.8);
  Interval wilson = WilsonInterval(320, 400);
  EXPECT_NEAR(s[0].ci->lo, wilson.lo, 0.01);
  EXPECT_NEAR(s[0].ci->hi, wilson.hi, 0.01);
  ConfusionMatrix bigger = FromRows({{1500, 500}, {300, 1700}});
  std::vector<Statistic> t = BootstrapStatistics(bigger, {accuracy}, options);
  EXPECT_LT(t[0].ci->hi - t[0].ci->lo, (s[0].ci->hi - s[0].ci->lo) / 2.5);
}

TEST(BootstrapTest, UndefinedResamplesAreCountedAndLeftOut) {
  // One labelled defect among 30: many resamples miss it, and then recall-based F1 may still be
  // defined (through false positives) but kappa can become undefined when one class vanishes
  // for both raters. Here the judge never says defect, so resamples without the defect have
  // p_e = 1.
  BinaryCounts c{.tp = 0, .fp = 0, .fn = 1, .tn = 29};
  AgreementOptions options;
  options.bootstrap = 1000;
  BinaryAgreement a = ComputeBinaryAgreement(c, options);
  ASSERT_TRUE(a.kappa.value);
  EXPECT_NEAR(*a.kappa.value, 0.0, 1e-12);
  // P(a resample misses the single defect) = (29/30)^30 = 0.36.
  EXPECT_GT(a.kappa.undefined_resamples, 250);
  EXPECT_LT(a.kappa.undefined_resamples, 470);
  ASSERT_TRUE(a.kappa.ci);
  EXPECT_DOUBLE_EQ(a.kappa.ci->lo, 0.0);
  EXPECT_DOUBLE_EQ(a.kappa.ci->hi, 0.0);
}

TEST(PercentileIntervalTest, Type7Quantiles) {
  // 0..100: the 2.5% and 97.5% quantiles of 101 evenly spaced values are 2.5 and 97.5.
  std::vector<double> v;
  for (int i = 100; i >= 0; --i) v.push_back(i);
  Interval ci = PercentileInterval(v, 0.95);
  EXPECT_NEAR(ci.lo, 2.5, 1e-12);
  EXPECT_NEAR(ci.hi, 97.5, 1e-12);
  ci = PercentileInterval({1, 2}, 0.5);  // quantiles 0.25 and 0.75 of {1, 2}
  EXPECT_DOUBLE_EQ(ci.lo, 1.25);
  EXPECT_DOUBLE_EQ(ci.hi, 1.75);
  ci = PercentileInterval({}, 0.95);
  EXPECT_EQ(ci.lo, 0);
  EXPECT_EQ(ci.hi, 0);
}

TEST(ProportionTest, EdgesAndClamping) {
  Proportion p = MakeProportion(3, 0);
  EXPECT_EQ(p.n, 0);
  EXPECT_EQ(p.value, 0);
  EXPECT_EQ(p.ci.lo, 0);
  EXPECT_EQ(p.ci.hi, 1);
  p = MakeProportion(5, 4);  // more successes than trials: clamped
  EXPECT_EQ(p.successes, 4);
  EXPECT_DOUBLE_EQ(p.value, 1.0);
  p = MakeProportion(-1, 4);
  EXPECT_EQ(p.successes, 0);
}

}  // namespace
}  // namespace breakfix
