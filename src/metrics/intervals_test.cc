// Wilson, McNemar and Newcombe against hand-computed golden files (testdata/*.txt), and the
// bootstrap's determinism and accuracy.
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "breakfix/env.h"
#include "breakfix/metrics.h"

namespace breakfix {
namespace {

constexpr double kTol = 1e-4;

struct GoldenLine {
  int lineno;
  std::vector<double> fields;
};

// The numeric rows of a golden file; '#' lines and blank lines are skipped.
std::vector<GoldenLine> ReadGolden(const std::string& name, size_t fields) {
  const std::string path = std::string(BREAKFIX_SOURCE_DIR) + "/src/metrics/testdata/" + name;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::vector<GoldenLine> out;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    GoldenLine g{lineno, {}};
    double v;
    while (ss >> v) g.fields.push_back(v);
    EXPECT_TRUE(ss.eof()) << path << ":" << lineno << ": not a number";
    EXPECT_EQ(g.fields.size(), fields) << path << ":" << lineno;
    if (g.fields.size() == fields) out.push_back(g);
  }
  return out;
}

TEST(WilsonIntervalTest, Golden) {
  auto rows = ReadGolden("wilson.txt", 4);
  ASSERT_GE(rows.size(), 8u);
  for (const GoldenLine& g : rows) {
    SCOPED_TRACE("wilson.txt:" + std::to_string(g.lineno));
    Interval ci =
        WilsonInterval(static_cast<int64_t>(g.fields[0]), static_cast<int64_t>(g.fields[1]));
    EXPECT_NEAR(ci.lo, g.fields[2], kTol);
    EXPECT_NEAR(ci.hi, g.fields[3], kTol);
  }
}

TEST(WilsonIntervalTest, ExactEdgesAndBadInput) {
  EXPECT_EQ(WilsonInterval(0, 10).lo, 0.0);
  EXPECT_EQ(WilsonInterval(10, 10).hi, 1.0);
  Interval neg = WilsonInterval(3, -5);
  EXPECT_EQ(neg.lo, 0.0);
  EXPECT_EQ(neg.hi, 1.0);
  // Successes beyond n are clamped rather than producing NaN.
  Interval over = WilsonInterval(12, 10);
  EXPECT_NEAR(over.lo, 0.722467, kTol);
  EXPECT_EQ(over.hi, 1.0);
  // z = 0 collapses the interval onto the observed rate.
  Interval z0 = WilsonInterval(3, 10, 0.0);
  EXPECT_NEAR(z0.lo, 0.3, 1e-12);
  EXPECT_NEAR(z0.hi, 0.3, 1e-12);
  // A wider z gives a wider interval.
  EXPECT_LT(WilsonInterval(3, 10, 2.576).lo, WilsonInterval(3, 10).lo);
}

TEST(WilsonIntervalTest, ContainsRateAndStaysInUnitInterval) {
  for (int64_t n : {1, 2, 5, 17, 100, 1000000}) {
    for (int64_t x = 0; x <= n; x += std::max<int64_t>(1, n / 7)) {
      Interval ci = WilsonInterval(x, n);
      double p = static_cast<double>(x) / static_cast<double>(n);
      EXPECT_LE(0.0, ci.lo);
      EXPECT_LE(ci.lo, p + 1e-12);
      EXPECT_LE(p - 1e-12, ci.hi);
      EXPECT_LE(ci.hi, 1.0);
    }
  }
}

TEST(McNemarExactPTest, Golden) {
  auto rows = ReadGolden("mcnemar.txt", 3);
  ASSERT_GE(rows.size(), 12u);
  for (const GoldenLine& g : rows) {
    SCOPED_TRACE("mcnemar.txt:" + std::to_string(g.lineno));
    double p = McNemarExactP(static_cast<int64_t>(g.fields[0]), static_cast<int64_t>(g.fields[1]));
    EXPECT_NEAR(p, g.fields[2], kTol * g.fields[2]);
  }
}

TEST(McNemarExactPTest, SymmetricBoundedAndStableForHugeCounts) {
  EXPECT_EQ(McNemarExactP(10, 3), McNemarExactP(3, 10));
  EXPECT_LT(McNemarExactP(30, 10), McNemarExactP(25, 15));
  // Very large counts: no overflow, no NaN, and a clear split gives a tiny p.
  double p = McNemarExactP(3000000000LL, 2999000000LL);
  EXPECT_TRUE(std::isfinite(p));
  EXPECT_GT(p, 0.0);
  EXPECT_LE(p, 1.0);
  double tiny = McNemarExactP(1000000, 0);
  EXPECT_TRUE(std::isfinite(tiny));
  EXPECT_GE(tiny, 0.0);
  EXPECT_LT(tiny, 1e-300);
  EXPECT_EQ(McNemarExactP(-4, 0), 1.0);  // negative counts are taken as 0
}

TEST(ComparePairedRatesTest, NewcombeGolden) {
  auto rows = ReadGolden("newcombe.txt", 7);
  ASSERT_GE(rows.size(), 5u);
  for (const GoldenLine& g : rows) {
    SCOPED_TRACE("newcombe.txt:" + std::to_string(g.lineno));
    auto count = [&](int i) { return static_cast<int64_t>(g.fields[i]); };
    PairedRateComparison c = ComparePairedRates(count(0), count(1), count(2), count(3));
    EXPECT_EQ(c.n, count(0) + count(1) + count(2) + count(3));
    EXPECT_NEAR(c.difference, g.fields[4], kTol);
    EXPECT_NEAR(c.ci.lo, g.fields[5], kTol);
    EXPECT_NEAR(c.ci.hi, g.fields[6], kTol);
    EXPECT_NEAR(c.rate_a - c.rate_b, c.difference, 1e-12);
    EXPECT_DOUBLE_EQ(c.mcnemar_p, McNemarExactP(count(1), count(2)));
  }
}

TEST(ComparePairedRatesTest, FieldsSymmetryAndEmpty) {
  PairedRateComparison c = ComparePairedRates(14, 5, 0, 22);
  EXPECT_EQ(c.both, 14);
  EXPECT_EQ(c.only_a, 5);
  EXPECT_EQ(c.only_b, 0);
  EXPECT_EQ(c.neither, 22);
  EXPECT_NEAR(c.rate_a, 19.0 / 41, 1e-12);
  EXPECT_NEAR(c.rate_b, 14.0 / 41, 1e-12);
  EXPECT_NEAR(c.mcnemar_p, 0.0625, 1e-12);

  PairedRateComparison swapped = ComparePairedRates(14, 0, 5, 22);
  EXPECT_NEAR(swapped.ci.lo, -c.ci.hi, 1e-12);
  EXPECT_NEAR(swapped.ci.hi, -c.ci.lo, 1e-12);

  PairedRateComparison empty = ComparePairedRates(0, 0, 0, 0);
  EXPECT_EQ(empty.n, 0);
  EXPECT_EQ(empty.difference, 0);
  EXPECT_EQ(empty.ci.lo, -1);
  EXPECT_EQ(empty.ci.hi, 1);
  EXPECT_EQ(empty.mcnemar_p, 1);

  PairedRateComparison all = ComparePairedRates(10, 0, 0, 0);
  EXPECT_NEAR(all.ci.lo, -0.277533, kTol);
  EXPECT_NEAR(all.ci.hi, 0.277533, kTol);
}

TEST(BootstrapMeanIntervalTest, EdgeCases) {
  Interval e = BootstrapMeanInterval({}, 100, 1);
  EXPECT_EQ(e.lo, 0);
  EXPECT_EQ(e.hi, 0);
  Interval one = BootstrapMeanInterval({2.5}, 100, 1);
  EXPECT_EQ(one.lo, 2.5);
  EXPECT_EQ(one.hi, 2.5);
  Interval same = BootstrapMeanInterval({3, 3, 3, 3}, 100, 1);
  EXPECT_EQ(same.lo, 3);
  EXPECT_EQ(same.hi, 3);
  Interval none = BootstrapMeanInterval({1, 2, 3}, 0, 1);
  EXPECT_EQ(none.lo, 2);
  EXPECT_EQ(none.hi, 2);
}

TEST(BootstrapMeanIntervalTest, DeterministicForASeed) {
  std::vector<double> v = {0, 1, 1, 2, 4, 0, 3, 1, 0, 2, 2, 1};
  Interval a = BootstrapMeanInterval(v, 500, 42);
  Interval b = BootstrapMeanInterval(v, 500, 42);
  EXPECT_EQ(a.lo, b.lo);
  EXPECT_EQ(a.hi, b.hi);
  double mean = 17.0 / 12;
  EXPECT_LT(a.lo, mean);
  EXPECT_GT(a.hi, mean);
  EXPECT_GE(a.lo, 0);
  EXPECT_LE(a.hi, 4);
  Interval narrow = BootstrapMeanInterval(v, 500, 42, 0.5);
  EXPECT_GT(narrow.lo, a.lo);
  EXPECT_LT(narrow.hi, a.hi);
}

// With many values the percentile bootstrap agrees with the normal-theory interval
// mean +- z * sd / sqrt(n).
TEST(BootstrapMeanIntervalTest, AgreesWithNormalTheoryForLargeSamples) {
  Random rng(2024);
  std::vector<double> v;
  for (int i = 0; i < 2000; ++i) v.push_back(static_cast<double>(rng.Below(5)));
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  var /= static_cast<double>(v.size() - 1);
  const double half = kZ95 * std::sqrt(var / static_cast<double>(v.size()));
  Interval ci = BootstrapMeanInterval(v, 2000, 99);
  EXPECT_NEAR(ci.lo, mean - half, 0.15 * half);
  EXPECT_NEAR(ci.hi, mean + half, 0.15 * half);
}

TEST(ComparePairedMeansTest, ConstantShift) {
  std::vector<double> a = {1, 2, 3, 4, 2};
  std::vector<double> b = {0, 1, 2, 3, 1};
  PairedMeanComparison c = ComparePairedMeans(a, b, 300, 5);
  EXPECT_EQ(c.n, 5);
  EXPECT_NEAR(c.mean_a, 2.4, 1e-12);
  EXPECT_NEAR(c.mean_b, 1.4, 1e-12);
  EXPECT_NEAR(c.difference, 1.0, 1e-12);
  EXPECT_NEAR(c.ci.lo, 1.0, 1e-12);  // every paired difference is 1
  EXPECT_NEAR(c.ci.hi, 1.0, 1e-12);
}

TEST(ComparePairedMeansTest, PairingMatters) {
  // Large, item-driven variation that cancels in the paired differences.
  std::vector<double> a, b;
  for (int i = 0; i < 40; ++i) {
    a.push_back(i % 5);
    b.push_back(i % 5 + (i % 2 == 0 ? 0.5 : 0.0));
  }
  PairedMeanComparison c = ComparePairedMeans(a, b, 1000, 3);
  EXPECT_NEAR(c.difference, -0.25, 1e-12);
  EXPECT_GE(c.ci.lo, -0.5);
  EXPECT_LE(c.ci.hi, 0.0);
  EXPECT_LT(c.ci.lo, -0.25);
  EXPECT_GT(c.ci.hi, -0.25);
}

TEST(ComparePairedMeansTest, MismatchedOrEmptyIsEmpty) {
  PairedMeanComparison c = ComparePairedMeans({1, 2, 3}, {1, 2}, 100, 1);
  EXPECT_EQ(c.n, 0);
  EXPECT_EQ(c.difference, 0);
  EXPECT_EQ(ComparePairedMeans({}, {}, 100, 1).n, 0);
}

}  // namespace
}  // namespace breakfix
