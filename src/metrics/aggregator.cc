// MetricsAggregator: streams judged samples into per-(family, category, target) cells and turns
// each cell into a row: a defect rate with its Wilson interval, or a mean score with a bootstrap
// interval. Unscorable samples are counted but never enter a rate or a mean.
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "breakfix/env.h"
#include "breakfix/hash.h"
#include "breakfix/metrics.h"

namespace breakfix {
namespace {

// A seed for one cell's bootstrap: depends on the run's seed and the cell, not on the order
// in which cells were filled, so adding a family does not move another family's interval.
uint64_t CellSeed(uint64_t seed, const std::array<std::string, 3>& key) {
  std::string hex = KeyBuilder().Add(key[0]).Add(key[1]).Add(key[2]).Hex().substr(0, 16);
  uint64_t stream = std::stoull(hex, nullptr, 16);
  return Random(seed).Fork(stream).Next();
}

}  // namespace

MetricsAggregator::MetricsAggregator(AggregateOptions options) : options_(std::move(options)) {}

void MetricsAggregator::Add(const ScoredSample& sample) {
  const int scale_max = ScaleMax(sample.scale);
  const bool binary = sample.scale == Scale::kBinary;
  const bool mean_family = [&] {
    auto it = options_.mean_families.find(sample.family);
    return it != options_.mean_families.end() && it->second;
  }();

  auto add_to = [&](const std::array<std::string, 3>& key) {
    auto [it, inserted] = cells_.try_emplace(key);
    Cell& cell = it->second;
    // The first valid scored sample fixes the cell's scale; until one arrives, the first sample of
    // any outcome does (so a cell of unscorable samples still reports a histogram of the right
    // size).
    const bool has_scorable =
        std::any_of(cell.hist.begin(), cell.hist.end(), [](int64_t count) { return count > 0; });
    const bool valid =
        sample.outcome == Outcome::kScored && sample.score >= 0 && sample.score <= scale_max;
    if (inserted || (!has_scorable && valid)) {
      cell.scale_max = scale_max;
      cell.binary = binary;
    }
    // A score that cannot be placed on the cell's histogram (another scale, or outside it) is
    // treated like an unusable judgement: counted, never a pass or a fail.
    const bool usable = valid && cell.scale_max == scale_max && cell.binary == binary;
    if (!usable) {
      ++cell.unscorable;
      return;
    }
    ++cell.hist[static_cast<size_t>(sample.score)];
    if (mean_family) cell.scores.push_back(static_cast<uint8_t>(sample.score));
  };
  add_to({sample.family, sample.category, sample.target});
  if (!sample.category.empty()) add_to({sample.family, "", sample.target});
}

std::vector<MetricRow> MetricsAggregator::Finish() const {
  std::vector<MetricRow> rows;
  rows.reserve(cells_.size());
  // std::map orders keys by family, then category ("" before any other), then target.
  for (const auto& [key, cell] : cells_) {
    MetricRow row;
    row.family = key[0];
    row.category = key[1];
    row.target = key[2];
    auto mean_it = options_.mean_families.find(row.family);
    row.is_mean = mean_it != options_.mean_families.end() && mean_it->second;
    if (cell.binary) {
      row.threshold = 1;
    } else {
      auto t = options_.thresholds.find(row.family);
      row.threshold = t != options_.thresholds.end() ? t->second : 1;
    }
    row.histogram.assign(cell.hist.begin(), cell.hist.begin() + cell.scale_max + 1);
    for (int s = 0; s <= cell.scale_max; ++s) {
      row.scorable += cell.hist[s];
      if (s >= row.threshold) row.defects += cell.hist[s];
    }
    row.unscorable = cell.unscorable;
    row.n = row.scorable + row.unscorable;

    if (row.is_mean) {
      if (row.scorable == 0) {
        row.value = 0;
        row.ci = {0, 0};
      } else {
        double sum = 0;
        for (int s = 0; s <= cell.scale_max; ++s) sum += static_cast<double>(s) * cell.hist[s];
        row.value = sum / static_cast<double>(row.scorable);
        std::vector<double> scores(cell.scores.begin(), cell.scores.end());
        row.ci = BootstrapMeanInterval(scores, options_.bootstrap_resamples,
                                       CellSeed(options_.seed, key));
      }
    } else {
      row.value = row.scorable == 0
                      ? 0
                      : static_cast<double>(row.defects) / static_cast<double>(row.scorable);
      row.ci = WilsonInterval(row.defects, row.scorable);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace breakfix
