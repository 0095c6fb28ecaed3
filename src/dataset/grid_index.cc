#include "dataset/grid_index.h"

#include "breakfix/env.h"

namespace breakfix::dataset {
namespace {

uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::optional<int64_t> CheckedProduct(const std::vector<int64_t>& radices, int64_t limit) {
  int64_t product = 1;
  for (int64_t r : radices) {
    if (r < 0 || __builtin_mul_overflow(product, r, &product) || product > limit) {
      return std::nullopt;
    }
  }
  return product;
}

void DecodeMixedRadix(int64_t index, const std::vector<int64_t>& radices,
                      std::vector<int64_t>* digits) {
  digits->assign(radices.size(), 0);
  for (size_t k = radices.size(); k-- > 0;) {
    (*digits)[k] = index % radices[k];
    index /= radices[k];
  }
}

IndexPermutation::IndexPermutation(uint64_t n, uint64_t seed) : n_(n) {
  int bits = 2;
  while (bits < 64 && (uint64_t{1} << bits) < n) bits += 2;
  half_bits_ = bits / 2;
  Random rng(seed);
  for (uint64_t& k : keys_) k = rng.Next();
}

uint64_t IndexPermutation::Round(uint64_t x) const {
  const uint64_t mask = (uint64_t{1} << half_bits_) - 1;
  uint64_t left = x >> half_bits_;
  uint64_t right = x & mask;
  for (uint64_t key : keys_) {
    uint64_t next = left ^ (Mix64(right ^ key) & mask);
    left = right;
    right = next;
  }
  return (left << half_bits_) | right;
}

uint64_t IndexPermutation::Map(uint64_t i) const {
  // Cycle walking: the Feistel network permutes [0, 2^bits); re-apply it until the value lands
  // inside [0, n). Starting inside [0, n) guarantees this terminates on i's own cycle.
  uint64_t y = Round(i);
  while (y >= n_) y = Round(y);
  return y;
}

}  // namespace breakfix::dataset
