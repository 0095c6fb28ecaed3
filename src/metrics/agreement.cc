// Agreement statistics between a judge and a reference: confusion matrices, Wilson intervals for
// the proportions, Cohen's kappa (unweighted and quadratic-weighted), F1, and a seeded percentile
// bootstrap over the rated items.
#include "breakfix/agreement.h"

#include <algorithm>
#include <cmath>

#include "breakfix/env.h"

namespace breakfix {

ConfusionMatrix::ConfusionMatrix(int levels)
    : levels_(std::max(levels, 0)),
      counts_(static_cast<size_t>(levels_) * static_cast<size_t>(levels_), 0) {}

bool ConfusionMatrix::Add(int truth, int judged, int64_t count) {
  if (truth < 0 || truth >= levels_ || judged < 0 || judged >= levels_ || count < 0) return false;
  counts_[static_cast<size_t>(truth) * levels_ + judged] += count;
  return true;
}

int64_t ConfusionMatrix::at(int truth, int judged) const {
  if (truth < 0 || truth >= levels_ || judged < 0 || judged >= levels_) return 0;
  return counts_[static_cast<size_t>(truth) * levels_ + judged];
}

int64_t ConfusionMatrix::total() const {
  int64_t sum = 0;
  for (int64_t c : counts_) sum += c;
  return sum;
}

int64_t ConfusionMatrix::truth_total(int truth) const {
  int64_t sum = 0;
  for (int j = 0; j < levels_; ++j) sum += at(truth, j);
  return sum;
}

int64_t ConfusionMatrix::judged_total(int judged) const {
  int64_t sum = 0;
  for (int t = 0; t < levels_; ++t) sum += at(t, judged);
  return sum;
}

std::vector<std::vector<int64_t>> ConfusionMatrix::rows() const {
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(levels_));
  for (int t = 0; t < levels_; ++t) {
    for (int j = 0; j < levels_; ++j) out[t].push_back(at(t, j));
  }
  return out;
}

BinaryCounts Dichotomize(const ConfusionMatrix& matrix, int threshold) {
  BinaryCounts c;
  for (int t = 0; t < matrix.levels(); ++t) {
    for (int j = 0; j < matrix.levels(); ++j) {
      const int64_t k = matrix.at(t, j);
      const bool truth = t >= threshold, judged = j >= threshold;
      if (truth && judged) c.tp += k;
      if (!truth && judged) c.fp += k;
      if (truth && !judged) c.fn += k;
      if (!truth && !judged) c.tn += k;
    }
  }
  return c;
}

ConfusionMatrix BinaryMatrix(const BinaryCounts& counts) {
  ConfusionMatrix m(2);
  m.Add(0, 0, std::max<int64_t>(counts.tn, 0));
  m.Add(0, 1, std::max<int64_t>(counts.fp, 0));
  m.Add(1, 0, std::max<int64_t>(counts.fn, 0));
  m.Add(1, 1, std::max<int64_t>(counts.tp, 0));
  return m;
}

Proportion MakeProportion(int64_t successes, int64_t n) {
  Proportion p;
  p.successes = std::max<int64_t>(successes, 0);
  p.n = std::max<int64_t>(n, 0);
  if (p.n == 0) return p;
  p.successes = std::min(p.successes, p.n);
  p.value = static_cast<double>(p.successes) / static_cast<double>(p.n);
  p.ci = WilsonInterval(p.successes, p.n);
  return p;
}

std::optional<double> F1Score(const BinaryCounts& counts) {
  const double denom = 2.0 * counts.tp + counts.fp + counts.fn;
  if (denom <= 0) return std::nullopt;
  return 2.0 * counts.tp / denom;
}

std::optional<double> CohenKappa(const ConfusionMatrix& matrix) {
  // kappa = (p_o - p_e) / (1 - p_e); multiplied through by n^2 so that the undefined case
  // (p_e == 1) is an exact comparison of integers held in doubles.
  const double n = static_cast<double>(matrix.total());
  if (n <= 0) return std::nullopt;
  double diagonal = 0, chance = 0;  // sum O_ii; sum row_i * col_i
  for (int i = 0; i < matrix.levels(); ++i) {
    diagonal += static_cast<double>(matrix.at(i, i));
    chance +=
        static_cast<double>(matrix.truth_total(i)) * static_cast<double>(matrix.judged_total(i));
  }
  const double denom = n * n - chance;
  if (denom <= 0) return std::nullopt;
  return (n * diagonal - chance) / denom;
}

std::optional<double> QuadraticWeightedKappa(const ConfusionMatrix& matrix) {
  const double n = static_cast<double>(matrix.total());
  if (n <= 0) return std::nullopt;
  const int k = matrix.levels();
  std::vector<double> rows(k), cols(k);
  for (int i = 0; i < k; ++i) {
    rows[i] = static_cast<double>(matrix.truth_total(i));
    cols[i] = static_cast<double>(matrix.judged_total(i));
  }
  double observed = 0, expected = 0;
  for (int i = 0; i < k; ++i) {
    for (int j = 0; j < k; ++j) {
      const double w = static_cast<double>((i - j) * (i - j));
      observed += w * static_cast<double>(matrix.at(i, j));
      expected += w * rows[i] * cols[j] / n;
    }
  }
  if (expected <= 0) return std::nullopt;
  return 1.0 - observed / expected;
}

Interval PercentileInterval(std::vector<double> values, double level) {
  if (values.empty()) return {0, 0};
  std::sort(values.begin(), values.end());
  const double tail = (1.0 - std::clamp(level, 0.0, 1.0)) / 2.0;
  auto quantile = [&](double q) {
    const double h = q * static_cast<double>(values.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(h));
    const size_t hi = std::min(lo + 1, values.size() - 1);
    return values[lo] + (h - static_cast<double>(lo)) * (values[hi] - values[lo]);
  };
  return {quantile(tail), quantile(1.0 - tail)};
}

std::vector<Statistic> BootstrapStatistics(const ConfusionMatrix& matrix,
                                           const std::vector<MatrixStatistic>& statistics,
                                           const AgreementOptions& options) {
  std::vector<Statistic> out(statistics.size());
  for (size_t s = 0; s < statistics.size(); ++s) out[s].value = statistics[s](matrix);
  const int64_t n = matrix.total();
  if (options.bootstrap < 1 || n <= 0) return out;

  // The non-empty cells and their cumulative counts: drawing an item uniformly from 0..n-1 and
  // finding its cell is drawing a row of the labelled file with replacement.
  struct Cell {
    int truth, judged;
    int64_t upper;  // cumulative count up to and including this cell
  };
  std::vector<Cell> cells;
  int64_t running = 0;
  for (int t = 0; t < matrix.levels(); ++t) {
    for (int j = 0; j < matrix.levels(); ++j) {
      if (matrix.at(t, j) == 0) continue;
      running += matrix.at(t, j);
      cells.push_back({t, j, running});
    }
  }

  Random rng(options.seed);
  std::vector<std::vector<double>> draws(statistics.size());
  for (auto& d : draws) d.reserve(static_cast<size_t>(options.bootstrap));
  std::vector<int64_t> cell_counts(cells.size());
  for (int r = 0; r < options.bootstrap; ++r) {
    std::fill(cell_counts.begin(), cell_counts.end(), 0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t item = static_cast<int64_t>(rng.Below(static_cast<uint64_t>(n)));
      auto it = std::upper_bound(cells.begin(), cells.end(), item,
                                 [](int64_t v, const Cell& c) { return v < c.upper; });
      ++cell_counts[static_cast<size_t>(it - cells.begin())];
    }
    ConfusionMatrix resampled(matrix.levels());
    for (size_t c = 0; c < cells.size(); ++c) {
      resampled.Add(cells[c].truth, cells[c].judged, cell_counts[c]);
    }
    for (size_t s = 0; s < statistics.size(); ++s) {
      std::optional<double> v = statistics[s](resampled);
      if (v) {
        draws[s].push_back(*v);
      } else {
        ++out[s].undefined_resamples;
      }
    }
  }
  for (size_t s = 0; s < statistics.size(); ++s) {
    if (out[s].value && !draws[s].empty()) {
      out[s].ci = PercentileInterval(std::move(draws[s]), 0.95);
    }
  }
  return out;
}

BinaryAgreement ComputeBinaryAgreement(const BinaryCounts& counts,
                                       const AgreementOptions& options) {
  BinaryAgreement a;
  a.counts = counts;
  a.accuracy = MakeProportion(counts.tp + counts.tn, counts.n());
  a.precision = MakeProportion(counts.tp, counts.tp + counts.fp);
  a.recall = MakeProportion(counts.tp, counts.tp + counts.fn);
  a.specificity = MakeProportion(counts.tn, counts.tn + counts.fp);
  const MatrixStatistic f1 = [](const ConfusionMatrix& m) { return F1Score(Dichotomize(m, 1)); };
  const MatrixStatistic kappa = [](const ConfusionMatrix& m) { return CohenKappa(m); };
  std::vector<Statistic> stats = BootstrapStatistics(BinaryMatrix(counts), {f1, kappa}, options);
  a.f1 = stats[0];
  a.kappa = stats[1];
  return a;
}

ExactAgreement ComputeExactAgreement(const ConfusionMatrix& matrix,
                                     const AgreementOptions& options) {
  ExactAgreement a;
  a.matrix = matrix;
  int64_t diagonal = 0;
  for (int i = 0; i < matrix.levels(); ++i) diagonal += matrix.at(i, i);
  a.accuracy = MakeProportion(diagonal, matrix.total());
  const MatrixStatistic kappa = [](const ConfusionMatrix& m) { return CohenKappa(m); };
  const MatrixStatistic quadratic = [](const ConfusionMatrix& m) {
    return QuadraticWeightedKappa(m);
  };
  std::vector<Statistic> stats = BootstrapStatistics(matrix, {kappa, quadratic}, options);
  a.kappa = stats[0];
  a.quadratic_kappa = stats[1];
  return a;
}

}  // namespace breakfix
