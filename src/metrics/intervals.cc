// Interval estimates and paired tests: Wilson score intervals, the percentile bootstrap of a mean,
// the exact McNemar test, and Newcombe's hybrid score interval for paired proportions.
#include <math.h>  // lgamma_r

#include <algorithm>
#include <cmath>
#include <vector>

#include "breakfix/env.h"
#include "breakfix/metrics.h"

namespace breakfix {
namespace {

// log(exp(a) + exp(b)) without overflow.
double LogAddExp(double a, double b) {
  if (a == -INFINITY) return b;
  if (b == -INFINITY) return a;
  double hi = std::max(a, b);
  return hi + std::log1p(std::exp(std::min(a, b) - hi));
}

// log(x!) via the reentrant lgamma_r: std::lgamma writes the global `signgam`, a data race
// when several threads compute p-values.
double LogFactorial(int64_t x) {
  int sign = 0;
  return ::lgamma_r(static_cast<double>(x) + 1, &sign);
}

// log of the binomial(n, 1/2) probability of exactly k successes.
double LogBinomialHalf(int64_t n, int64_t k) {
  return LogFactorial(n) - LogFactorial(k) - LogFactorial(n - k) -
         static_cast<double>(n) * std::log(2.0);
}

// Type 7 sample quantile (linear interpolation between order statistics) of sorted `v`.
double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  q = std::clamp(q, 0.0, 1.0);
  double h = q * static_cast<double>(sorted.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(h));
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

double Mean(const std::vector<double>& v) {
  if (v.empty()) return 0;
  double sum = 0;
  for (double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

}  // namespace

Interval BootstrapMeanInterval(const std::vector<double>& values, int resamples, uint64_t seed,
                               double level) {
  if (values.empty()) return {0, 0};
  if (values.size() == 1) return {values[0], values[0]};
  if (resamples < 1) {
    double m = Mean(values);
    return {m, m};
  }
  const uint64_t n = values.size();
  Random rng(seed);
  std::vector<double> means;
  means.reserve(static_cast<size_t>(resamples));
  for (int r = 0; r < resamples; ++r) {
    double sum = 0;
    for (uint64_t i = 0; i < n; ++i) sum += values[rng.Below(n)];
    means.push_back(sum / static_cast<double>(n));
  }
  std::sort(means.begin(), means.end());
  const double tail = (1 - std::clamp(level, 0.0, 1.0)) / 2;
  return {Quantile(means, tail), Quantile(means, 1 - tail)};
}

double McNemarExactP(int64_t b, int64_t c) {
  b = std::max<int64_t>(b, 0);
  c = std::max<int64_t>(c, 0);
  const int64_t n = b + c;
  if (n == 0) return 1;
  const int64_t k = std::min(b, c);
  if (2 * k >= n) return 1;  // an even split: P(X <= k) >= 1/2
  // P(X <= k) for X ~ Binomial(n, 1/2), summed in log space from k downwards. The terms shrink
  // as i falls (k < n/2), so the sum stops once they no longer change it.
  double log_tail = -INFINITY;
  for (int64_t i = k; i >= 0; --i) {
    double term = LogBinomialHalf(n, i);
    log_tail = LogAddExp(log_tail, term);
    // Once a term is e^-50 of the sum, the rest (shrinking geometrically) cannot move it.
    if (term < log_tail - 50) break;
  }
  return std::min(1.0, 2 * std::exp(log_tail));
}

PairedRateComparison ComparePairedRates(int64_t both, int64_t only_a, int64_t only_b,
                                        int64_t neither, double z) {
  PairedRateComparison out;
  out.both = std::max<int64_t>(both, 0);
  out.only_a = std::max<int64_t>(only_a, 0);
  out.only_b = std::max<int64_t>(only_b, 0);
  out.neither = std::max<int64_t>(neither, 0);
  out.n = out.both + out.only_a + out.only_b + out.neither;
  out.mcnemar_p = McNemarExactP(out.only_a, out.only_b);
  if (out.n == 0) {
    out.ci = {-1, 1};
    return out;
  }
  const double n = static_cast<double>(out.n);
  const int64_t a_defects = out.both + out.only_a;
  const int64_t b_defects = out.both + out.only_b;
  const double p1 = static_cast<double>(a_defects) / n;
  const double p2 = static_cast<double>(b_defects) / n;
  out.rate_a = p1;
  out.rate_b = p2;
  out.difference = p1 - p2;

  // Newcombe (1998), method 10: combine the Wilson intervals of both marginal rates, allowing for
  // their correlation through phi. Phi's numerator is shrunk towards zero by n/2 when positive
  // (Newcombe's correction), and phi is 0 when any margin is empty.
  const Interval w1 = WilsonInterval(a_defects, out.n, z);
  const Interval w2 = WilsonInterval(b_defects, out.n, z);
  double phi = 0;
  const double margins = static_cast<double>(a_defects) * static_cast<double>(out.n - a_defects) *
                         static_cast<double>(b_defects) * static_cast<double>(out.n - b_defects);
  if (margins > 0) {
    double cross = static_cast<double>(out.both) * static_cast<double>(out.neither) -
                   static_cast<double>(out.only_a) * static_cast<double>(out.only_b);
    if (cross > n / 2) {
      cross -= n / 2;
    } else if (cross >= 0) {
      cross = 0;
    }
    phi = cross / std::sqrt(margins);
  }
  const double d1 = p1 - w1.lo, e1 = w1.hi - p1;  // distances to rate A's Wilson bounds
  const double d2 = p2 - w2.lo, e2 = w2.hi - p2;  // distances to rate B's Wilson bounds
  const double lower = std::sqrt(std::max(0.0, d1 * d1 - 2 * phi * d1 * e2 + e2 * e2));
  const double upper = std::sqrt(std::max(0.0, e1 * e1 - 2 * phi * e1 * d2 + d2 * d2));
  out.ci = {std::max(-1.0, out.difference - lower), std::min(1.0, out.difference + upper)};
  return out;
}

PairedMeanComparison ComparePairedMeans(const std::vector<double>& a, const std::vector<double>& b,
                                        int resamples, uint64_t seed) {
  PairedMeanComparison out;
  if (a.size() != b.size() || a.empty()) return out;
  std::vector<double> diffs(a.size());
  for (size_t i = 0; i < a.size(); ++i) diffs[i] = a[i] - b[i];
  out.n = static_cast<int64_t>(a.size());
  out.mean_a = Mean(a);
  out.mean_b = Mean(b);
  out.difference = Mean(diffs);
  out.ci = BootstrapMeanInterval(diffs, resamples, seed);
  return out;
}

}  // namespace breakfix
