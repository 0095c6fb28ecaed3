// Shingles, Jaccard similarity and the near-duplicate filter in both modes (exact scan and
// MinHash LSH), which must agree.
#include "curate/near_duplicates.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "breakfix/env.h"

namespace breakfix::curate {
namespace {

TEST(NearDuplicatesTest, ShinglesIgnoreCaseAndPunctuation) {
  EXPECT_EQ(ShingleHashes("The quick, brown FOX!", 2), ShingleHashes("the quick brown fox", 2));
  EXPECT_EQ(ShingleHashes("a b c d", 2).size(), 3u);
  EXPECT_EQ(ShingleHashes("a b", 3).size(), 1u);  // short text: one shingle of all words
  EXPECT_TRUE(ShingleHashes(" ... ", 3).empty());
  // Word boundaries matter: ("ab", "c") is not ("a", "bc").
  EXPECT_NE(ShingleHashes("ab c", 2), ShingleHashes("a bc", 2));
}

TEST(NearDuplicatesTest, JaccardOfSortedSets) {
  EXPECT_DOUBLE_EQ(Jaccard({1, 2, 3}, {2, 3, 4}), 0.5);
  EXPECT_DOUBLE_EQ(Jaccard({1, 2}, {1, 2}), 1.0);
  EXPECT_DOUBLE_EQ(Jaccard({1}, {2}), 0.0);
  EXPECT_DOUBLE_EQ(Jaccard({}, {}), 1.0);
  EXPECT_DOUBLE_EQ(Jaccard({}, {1}), 0.0);
}

std::string RandomText(Random& rng, int words) {
  std::string out;
  for (int i = 0; i < words; ++i) {
    out += (i ? " " : "") + std::string("w") + std::to_string(rng.Below(5000));
  }
  return out;
}

// One word in `every` replaced.
std::string Perturb(const std::string& text, Random& rng, int every) {
  std::string out;
  size_t start = 0;
  int i = 0;
  while (start <= text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    std::string word = text.substr(start, end - start);
    if (++i % every == 0) word = "x" + std::to_string(rng.Below(1000000));
    out += (out.empty() ? "" : " ") + word;
    start = end + 1;
  }
  return out;
}

TEST(NearDuplicatesTest, RemovesNearDuplicatesKeepsDistinctTextsInBothModes) {
  for (bool lsh : {false, true}) {
    SCOPED_TRACE(lsh ? "lsh" : "exact");
    Random rng(11);
    NearDuplicateFilter filter(0.8, 3, lsh);
    std::vector<std::string> originals;
    for (int i = 0; i < 50; ++i) {
      originals.push_back(RandomText(rng, 120));
      EXPECT_FALSE(filter.Add(originals.back()).has_value()) << i;
    }
    // One word in 40 changed: about 3 of 118 shingles differ per change... similarity ~0.86.
    for (int i = 0; i < 50; ++i) {
      auto dup = filter.Add(Perturb(originals[i], rng, 40));
      ASSERT_TRUE(dup.has_value()) << i;
      EXPECT_EQ(*dup, static_cast<size_t>(i));
    }
    // One word in 4 changed: similarity far below 0.8; kept.
    for (int i = 0; i < 20; ++i) {
      EXPECT_FALSE(filter.Add(Perturb(originals[i], rng, 4)).has_value()) << i;
    }
    EXPECT_EQ(filter.kept(), 70u);
  }
}

TEST(NearDuplicatesTest, ModesAgreeOnAMixedStream) {
  Random rng(5);
  std::vector<std::string> stream;
  for (int i = 0; i < 300; ++i) {
    if (i > 10 && rng.Below(3) == 0) {
      stream.push_back(Perturb(stream[rng.Below(stream.size())], rng, 2 + rng.Below(30)));
    } else {
      stream.push_back(RandomText(rng, 20 + rng.Below(80)));
    }
  }
  NearDuplicateFilter exact(0.7, 2, false), lsh(0.7, 2, true);
  int dups = 0;
  for (const std::string& s : stream) {
    auto a = exact.Add(s);
    auto b = lsh.Add(s);
    EXPECT_EQ(a.has_value(), b.has_value());
    dups += a.has_value();
  }
  EXPECT_GT(dups, 20);
  EXPECT_EQ(exact.kept(), lsh.kept());
}

TEST(NearDuplicatesTest, BandRowsFollowThreshold) {
  EXPECT_EQ(NearDuplicateFilter(0.8, 3, true).rows_per_band(), 4);
  EXPECT_LE(NearDuplicateFilter(0.3, 3, true).rows_per_band(), 2);
  EXPECT_GE(NearDuplicateFilter(0.95, 3, true).rows_per_band(), 8);
}

TEST(NearDuplicatesTest, IdenticalAndEmptyTexts) {
  NearDuplicateFilter filter(1.0, 3, true);
  EXPECT_FALSE(filter.Add("same text here").has_value());
  EXPECT_EQ(filter.Add("Same   TEXT here!"), std::optional<size_t>(0));
  EXPECT_FALSE(filter.Add("").has_value());
  EXPECT_EQ(filter.Add("  "), std::optional<size_t>(1));
}

}  // namespace
}  // namespace breakfix::curate
