// Index arithmetic for parameter grids, so that a grid of any size is expanded one item at a
// time: a flat index is decoded into one value per axis (mixed radix), and a sampled grid walks a
// seeded permutation of the indices instead of materialising and shuffling them.
#ifndef BREAKFIX_DATASET_GRID_INDEX_H_
#define BREAKFIX_DATASET_GRID_INDEX_H_

#include <cstdint>
#include <optional>
#include <vector>

namespace breakfix::dataset {

// The product of `radices` (each >= 1), or nullopt when it exceeds `limit`.
std::optional<int64_t> CheckedProduct(const std::vector<int64_t>& radices, int64_t limit);

// Decodes `index` (0 <= index < product of radices) into one digit per axis. The last axis varies
// fastest, like nested loops written in axis order.
void DecodeMixedRadix(int64_t index, const std::vector<int64_t>& radices,
                      std::vector<int64_t>* digits);

// A pseudo-random permutation of [0, n), fixed by `seed`: a balanced Feistel network over the
// smallest even power of two >= n, with cycle walking to stay inside [0, n). Memory is O(1) and
// each Map() costs a few rounds on average (the power of two is < 4n). Immutable; thread-safe.
class IndexPermutation {
 public:
  IndexPermutation() = default;
  IndexPermutation(uint64_t n, uint64_t seed);
  // The image of i; i < n. Distinct inputs give distinct outputs.
  uint64_t Map(uint64_t i) const;
  uint64_t size() const { return n_; }

 private:
  static constexpr int kRounds = 6;
  uint64_t Round(uint64_t x) const;
  uint64_t n_ = 0;
  int half_bits_ = 1;
  uint64_t keys_[kRounds] = {};
};

}  // namespace breakfix::dataset

#endif  // BREAKFIX_DATASET_GRID_INDEX_H_
