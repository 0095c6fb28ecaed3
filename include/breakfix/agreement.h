// Agreement between a judge and a reference (human labels, or another judge): confusion matrices,
// accuracy, precision, recall, specificity, F1 and Cohen's kappa, each with a 95% interval.
//
// Proportions (accuracy, precision, recall, specificity) get Wilson score intervals. F1 and kappa
// are not proportions, so they get a percentile bootstrap over the rated items: the items behind a
// confusion matrix are resampled with replacement, which for a matrix is the same as resampling
// rows of the labelled file. The bootstrap runs on a generator seeded from AgreementOptions::seed,
// so the same matrix and options always give the same interval.
//
// Every function here is pure and thread-safe. docs/judges.md ("Validating a judge against human
// labels") explains how to read the numbers.
#ifndef BREAKFIX_AGREEMENT_H_
#define BREAKFIX_AGREEMENT_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "breakfix/interval.h"

namespace breakfix {

// Counts of items by (reference level, judged level), both in 0..levels-1. Rows are the reference
// (the human label), columns the judge. A value type; not thread-safe to mutate concurrently.
class ConfusionMatrix {
 public:
  ConfusionMatrix() = default;  // no levels
  explicit ConfusionMatrix(int levels);

  int levels() const { return levels_; }
  // Adds `count` items. False, and nothing added, when a level is outside 0..levels-1 or the
  // count is negative.
  bool Add(int truth, int judged, int64_t count = 1);
  // 0 for levels outside the matrix.
  int64_t at(int truth, int judged) const;
  int64_t total() const;
  int64_t truth_total(int truth) const;    // row sum
  int64_t judged_total(int judged) const;  // column sum
  // rows()[truth][judged].
  std::vector<std::vector<int64_t>> rows() const;

  bool operator==(const ConfusionMatrix& o) const {
    return levels_ == o.levels_ && counts_ == o.counts_;
  }

 private:
  int levels_ = 0;
  std::vector<int64_t> counts_;  // row-major, levels_ * levels_
};

// Binary agreement. "Positive" is a defect: the reference or the judge put the item at or above
// the defect threshold (for binary labels, the label 1).
struct BinaryCounts {
  int64_t tp = 0;  // reference positive, judge positive
  int64_t fp = 0;  // reference negative, judge positive
  int64_t fn = 0;  // reference positive, judge negative
  int64_t tn = 0;  // reference negative, judge negative

  int64_t n() const { return tp + fp + fn + tn; }
  bool operator==(const BinaryCounts& o) const {
    return tp == o.tp && fp == o.fp && fn == o.fn && tn == o.tn;
  }
};

// Collapses a matrix at `threshold`: a level >= threshold is positive, for reference and judge
// alike.
BinaryCounts Dichotomize(const ConfusionMatrix& matrix, int threshold);
// The 2x2 matrix of binary counts: level 0 = negative, 1 = positive, so rows are
// [[tn, fp], [fn, tp]]. Negative counts are taken as 0.
ConfusionMatrix BinaryMatrix(const BinaryCounts& counts);

// A proportion with its 95% Wilson score interval.
struct Proportion {
  int64_t successes = 0;
  int64_t n = 0;     // 0: undefined (nothing to divide by); value 0 and interval [0, 1]
  double value = 0;  // successes / n
  Interval ci{0, 1};
};
Proportion MakeProportion(int64_t successes, int64_t n);

// A statistic that need not be a proportion, with a percentile bootstrap interval.
struct Statistic {
  std::optional<double> value;  // nullopt: undefined on these data (see each statistic)
  // Percentile bootstrap interval; nullopt when the value is undefined, when no bootstrap was
  // asked for, or when the statistic was undefined on every resample.
  std::optional<Interval> ci;
  int64_t undefined_resamples = 0;  // resamples on which it was undefined (left out of the ci)
};

struct AgreementOptions {
  int bootstrap = 2000;      // resamples for the F1 and kappa intervals; 0 = no interval
  uint64_t seed = 20240601;  // seeds the resampling; same seed, same intervals
};

// --- Point estimates ---

// F1 = 2TP / (2TP + FP + FN), the harmonic mean of precision and recall. Undefined when there is
// no positive at all (TP + FP + FN == 0).
std::optional<double> F1Score(const BinaryCounts& counts);

// Cohen's kappa, unweighted: (p_o - p_e) / (1 - p_e), where p_o is the observed agreement and
// p_e = sum_i row_i * col_i / n^2 the agreement expected by chance with the same marginals.
// 1 is perfect agreement, 0 chance, below 0 worse than chance. Undefined when n == 0 or
// p_e == 1 (both raters put every item on the same one level).
std::optional<double> CohenKappa(const ConfusionMatrix& matrix);

// Quadratic-weighted kappa: 1 - sum w*O / sum w*E with w[i][j] = (i - j)^2 and
// E[i][j] = row_i * col_j / n. Disagreements count by the square of their distance, which suits
// ordinal scales (severity 0..7). Undefined when sum w*E == 0 (no disagreement is expected, for
// example when every item has the same reference level).
std::optional<double> QuadraticWeightedKappa(const ConfusionMatrix& matrix);

// --- Bootstrap helpers ---

// The type-7 (linear interpolation) equal-tailed percentile interval of `values` at `level`
// (e.g. 0.95 takes the 2.5% and 97.5% quantiles). Empty input gives [0, 0].
Interval PercentileInterval(std::vector<double> values, double level);

using MatrixStatistic = std::function<std::optional<double>(const ConfusionMatrix&)>;

// Percentile bootstrap (95%) of each statistic over the matrix's items: options.bootstrap times,
// draw total() items with replacement (each item keeps its (reference, judged) pair), build the
// resampled matrix and evaluate every statistic on it. All statistics see the same resamples.
// Resamples on which a statistic is undefined are left out of its interval and counted. The value
// of each Statistic is the statistic on `matrix` itself.
std::vector<Statistic> BootstrapStatistics(const ConfusionMatrix& matrix,
                                           const std::vector<MatrixStatistic>& statistics,
                                           const AgreementOptions& options);

// --- Summaries ---

// Agreement on the binary question "is this a defect?".
struct BinaryAgreement {
  BinaryCounts counts;
  Proportion accuracy;     // (TP + TN) / n
  Proportion precision;    // TP / (TP + FP): of the judge's defects, the share that are real
  Proportion recall;       // TP / (TP + FN), the sensitivity: of the real defects, the share found
  Proportion specificity;  // TN / (TN + FP): of the non-defects, the share the judge passed
  Statistic f1;
  Statistic kappa;  // Cohen's kappa of the 2x2 matrix
};
BinaryAgreement ComputeBinaryAgreement(const BinaryCounts& counts, const AgreementOptions& options);

// Agreement on the exact level (three-way refusal labels, severity 0..7).
struct ExactAgreement {
  ConfusionMatrix matrix;
  Proportion accuracy;        // share on the diagonal
  Statistic kappa;            // unweighted Cohen's kappa
  Statistic quadratic_kappa;  // quadratic-weighted kappa
};
ExactAgreement ComputeExactAgreement(const ConfusionMatrix& matrix,
                                     const AgreementOptions& options);

}  // namespace breakfix

#endif  // BREAKFIX_AGREEMENT_H_
