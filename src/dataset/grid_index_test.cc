#include "dataset/grid_index.h"

#include <gtest/gtest.h>

#include <set>

namespace breakfix::dataset {
namespace {

TEST(GridIndexTest, MixedRadixLastAxisFastest) {
  std::vector<int64_t> radices = {2, 3};
  std::vector<int64_t> digits;
  std::vector<std::vector<int64_t>> seen;
  for (int64_t i = 0; i < 6; ++i) {
    DecodeMixedRadix(i, radices, &digits);
    seen.push_back(digits);
  }
  EXPECT_EQ(seen,
            (std::vector<std::vector<int64_t>>{{0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}, {1, 2}}));
}

TEST(GridIndexTest, CheckedProductDetectsOverflow) {
  EXPECT_EQ(CheckedProduct({2, 3, 4}, 100), 24);
  EXPECT_EQ(CheckedProduct({}, 100), 1);
  EXPECT_EQ(CheckedProduct({10, 11}, 100), std::nullopt);
  EXPECT_EQ(CheckedProduct({int64_t{1} << 40, int64_t{1} << 40}, INT64_MAX), std::nullopt);
}

TEST(GridIndexTest, PermutationIsABijectionForManySizes) {
  for (uint64_t n : {1u, 2u, 3u, 5u, 16u, 17u, 100u, 1000u, 4097u}) {
    IndexPermutation p(n, 42);
    std::set<uint64_t> images;
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t y = p.Map(i);
      ASSERT_LT(y, n);
      images.insert(y);
    }
    EXPECT_EQ(images.size(), n) << "n=" << n;
  }
}

TEST(GridIndexTest, PermutationDependsOnSeedOnly) {
  IndexPermutation a(1000, 7), b(1000, 7), c(1000, 8);
  int same_as_c = 0;
  for (uint64_t i = 0; i < 1000; ++i) {
    EXPECT_EQ(a.Map(i), b.Map(i));
    same_as_c += a.Map(i) == c.Map(i);
  }
  EXPECT_LT(same_as_c, 50);
}

TEST(GridIndexTest, HugeDomainStaysInRange) {
  const uint64_t n = uint64_t{1} << 62;
  IndexPermutation p(n - 3, 1);
  std::set<uint64_t> images;
  for (uint64_t i = 0; i < 100; ++i) {
    uint64_t y = p.Map(i);
    EXPECT_LT(y, n - 3);
    images.insert(y);
  }
  EXPECT_EQ(images.size(), 100u);
}

}  // namespace
}  // namespace breakfix::dataset
