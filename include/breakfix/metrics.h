// Metrics: defect rates and mean ungroundedness with confidence intervals, and paired comparisons.
//
// All functions are pure and thread-safe. Rates are fractions in [0, 1]; intervals are two-sided
// 95% unless a level is given.
#ifndef BREAKFIX_METRICS_H_
#define BREAKFIX_METRICS_H_

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "breakfix/interval.h"  // Interval, kZ95, WilsonInterval
#include "breakfix/judge.h"

namespace breakfix {

// Percentile bootstrap interval of the mean of `values` (resampled with replacement `resamples`
// times from a generator seeded with `seed`; deterministic). Empty input gives [0, 0]; one value
// gives [v, v]; resamples < 1 gives [mean, mean]. Bounds are type-7 quantiles of the resampled
// means at (1 - level) / 2 and (1 + level) / 2.
Interval BootstrapMeanInterval(const std::vector<double>& values, int resamples, uint64_t seed,
                               double level = 0.95);

// Exact two-sided McNemar p-value for discordant counts b (A defect, B not) and c (B defect, A
// not): the binomial(b + c, 1/2) probability of a split at least as uneven,
// min(1, 2 * P(X <= min(b, c))), computed in log space so that large counts neither overflow nor
// underflow. b + c == 0 gives 1.
double McNemarExactP(int64_t b, int64_t c);

// Paired comparison of two targets' binary outcomes on the same items.
struct PairedRateComparison {
  int64_t n = 0;       // items judged scorable for both
  int64_t both = 0;    // defect for A and B
  int64_t only_a = 0;  // defect for A only (b)
  int64_t only_b = 0;  // defect for B only (c)
  int64_t neither = 0;
  double rate_a = 0, rate_b = 0;
  double difference = 0;  // rate_a - rate_b
  Interval ci;            // Newcombe's hybrid score interval for a paired difference
  double mcnemar_p = 1;   // exact McNemar p-value
};
// Negative counts are taken as 0. n == 0 gives rates 0, difference 0, CI [-1, 1] and p 1.
PairedRateComparison ComparePairedRates(int64_t both, int64_t only_a, int64_t only_b,
                                        int64_t neither, double z = kZ95);

// Paired comparison of two targets' scores on the same items (ungroundedness).
struct PairedMeanComparison {
  int64_t n = 0;
  double mean_a = 0, mean_b = 0;
  double difference = 0;  // mean_a - mean_b
  Interval ci;            // percentile bootstrap of the paired differences
};
// a[i] and b[i] are the two targets' scores on item i. Vectors of different lengths cannot be
// paired: the result is then empty (n == 0, everything 0), as it is for empty input.
PairedMeanComparison ComparePairedMeans(const std::vector<double>& a, const std::vector<double>& b,
                                        int resamples, uint64_t seed);

// One judged sample as the aggregator sees it.
struct ScoredSample {
  std::string family;
  std::string category;
  std::string target;
  Outcome outcome = Outcome::kScored;
  Scale scale = Scale::kSeverity;
  int score = 0;
};

// One row of results: a family (category == "" means all categories) for one target.
struct MetricRow {
  std::string family;
  std::string category;  // "" for the family as a whole
  std::string target;
  bool is_mean = false;  // true: mean ungroundedness; false: defect rate
  int threshold = 0;     // x of DR-x (defect rates)
  int64_t n = 0;         // samples (scorable + unscorable)
  int64_t scorable = 0;
  int64_t unscorable = 0;
  int64_t defects = 0;             // scorable samples with score >= threshold (defect rates)
  double value = 0;                // the rate or the mean over scorable samples
  Interval ci;                     // Wilson (rates) or bootstrap (means)
  std::vector<int64_t> histogram;  // counts of scorable samples by score, 0..ScaleMax
};

struct AggregateOptions {
  std::map<std::string, int> thresholds;      // family -> x of DR-x (1 when absent; binary: 1)
  std::map<std::string, bool> mean_families;  // family -> reports mean (ungroundedness)
  int bootstrap_resamples = 2000;
  uint64_t seed = 0;  // bootstrap seed (each cell derives its own)
};

// Streams samples in and produces one row per (family, target) and per (family, category,
// target). Memory: a histogram per cell; the scores of mean families are kept as bytes for the
// bootstrap. A cell takes its scale from its first validly scored sample (or, while it has none,
// from its first sample); a scored sample on another scale, or with a score outside its scale, is
// counted as unscorable rather than guessed at.
// Not thread-safe: one thread adds, then calls Finish().
class MetricsAggregator {
 public:
  explicit MetricsAggregator(AggregateOptions options);
  void Add(const ScoredSample& sample);
  // Rows sorted by family, category ("" first), target.
  std::vector<MetricRow> Finish() const;

 private:
  struct Cell {
    std::array<int64_t, 8> hist{};
    int64_t unscorable = 0;
    int scale_max = 7;
    bool binary = false;
    std::vector<uint8_t> scores;  // mean families only
  };
  AggregateOptions options_;
  std::map<std::array<std::string, 3>, Cell> cells_;
};

}  // namespace breakfix

#endif  // BREAKFIX_METRICS_H_
