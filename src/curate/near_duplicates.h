// Near-duplicate detection for curated pairs: word n-gram shingles compared by Jaccard similarity.
//
// Texts are lower-cased (ASCII) and split into words (runs of letters, digits and non-ASCII
// bytes); every run of `ngram` consecutive words is a shingle, hashed to 64 bits. A text with
// fewer words than `ngram` is one shingle of all its words. Two texts are near duplicates when the
// Jaccard similarity of their shingle sets is at least the threshold.
//
// With `use_lsh`, a 128-value MinHash signature per text and LSH banding pick the kept texts
// worth comparing (rows per band chosen so that pairs at the threshold collide with probability
// above 0.999); without it every kept text is compared. Either way a reported duplicate has
// been confirmed with the exact Jaccard similarity, and the result depends only on the texts and
// their order. Not thread-safe.
#ifndef BREAKFIX_CURATE_NEAR_DUPLICATES_H_
#define BREAKFIX_CURATE_NEAR_DUPLICATES_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace breakfix::curate {

// Sorted, distinct shingle hashes of `text`.
std::vector<uint64_t> ShingleHashes(std::string_view text, int ngram);

// |a ∩ b| / |a ∪ b| over sorted distinct vectors; two empty sets are identical (1).
double Jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b);

class NearDuplicateFilter {
 public:
  static constexpr int kSignatureSize = 128;

  // threshold in (0, 1]; ngram >= 1.
  NearDuplicateFilter(double threshold, int ngram, bool use_lsh);

  // When `text` is a near duplicate of a text kept earlier, returns that text's index (in the
  // order of Add calls that returned nullopt) and keeps nothing; otherwise keeps `text` and
  // returns nullopt.
  std::optional<size_t> Add(std::string_view text);

  size_t kept() const { return kept_.size(); }
  int rows_per_band() const { return rows_; }

 private:
  std::vector<uint64_t> Signature(const std::vector<uint64_t>& shingles) const;

  double threshold_;
  int ngram_;
  bool use_lsh_;
  int rows_ = 4;
  std::vector<std::vector<uint64_t>> kept_;  // shingle sets of kept texts
  // (band index, band hash) -> indexes of kept texts in that bucket
  std::unordered_map<uint64_t, std::vector<size_t>> buckets_;
};

}  // namespace breakfix::curate

#endif  // BREAKFIX_CURATE_NEAR_DUPLICATES_H_
