// Shingling, MinHash and LSH banding. Hashes are fixed functions of the bytes (FNV-1a and the
// splitmix64 finaliser with constant seeds), so results never depend on the platform or the run.
#include "curate/near_duplicates.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <string>

namespace breakfix::curate {
namespace {

uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t Fnv1a(std::string_view s, uint64_t h = 0xcbf29ce484222325ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

bool IsWordByte(unsigned char c) { return std::isalnum(c) || c >= 0x80; }

std::vector<std::string> Words(std::string_view text) {
  std::vector<std::string> words;
  std::string cur;
  for (unsigned char c : text) {
    if (IsWordByte(c)) {
      cur += static_cast<char>(c < 0x80 ? std::tolower(c) : c);
    } else if (!cur.empty()) {
      words.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  return words;
}

uint64_t ShingleHash(const std::vector<std::string>& words, size_t begin, size_t end) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = begin; i < end; ++i) {
    h = Fnv1a(words[i], h);
    h = Fnv1a(" ", h);  // separator, so ("ab","c") and ("a","bc") differ
  }
  return Mix64(h);
}

}  // namespace

std::vector<uint64_t> ShingleHashes(std::string_view text, int ngram) {
  const std::vector<std::string> words = Words(text);
  const size_t n = static_cast<size_t>(std::max(1, ngram));
  std::vector<uint64_t> out;
  if (words.empty()) return out;
  if (words.size() <= n) {
    out.push_back(ShingleHash(words, 0, words.size()));
    return out;
  }
  out.reserve(words.size() - n + 1);
  for (size_t i = 0; i + n <= words.size(); ++i) out.push_back(ShingleHash(words, i, i + n));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

double Jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  if (a.empty() && b.empty()) return 1.0;
  size_t i = 0, j = 0, common = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] == b[j]) {
      ++common;
      ++i;
      ++j;
    } else if (a[i] < b[j]) {
      ++i;
    } else {
      ++j;
    }
  }
  return static_cast<double>(common) / static_cast<double>(a.size() + b.size() - common);
}

NearDuplicateFilter::NearDuplicateFilter(double threshold, int ngram, bool use_lsh)
    : threshold_(threshold), ngram_(ngram), use_lsh_(use_lsh) {
  // A pair with similarity s shares at least one band with probability 1 - (1 - s^r)^b. Take
  // the most rows per band (fewest false candidates) that still finds pairs at the threshold
  // with probability above 0.999.
  rows_ = 1;
  for (int r : {2, 4, 8, 16, 32}) {
    const int bands = kSignatureSize / r;
    const double miss = std::pow(1.0 - std::pow(threshold_, r), bands);
    if (miss < 1e-3) rows_ = r;
  }
}

std::vector<uint64_t> NearDuplicateFilter::Signature(const std::vector<uint64_t>& shingles) const {
  std::vector<uint64_t> sig(kSignatureSize, std::numeric_limits<uint64_t>::max());
  for (uint64_t s : shingles) {
    for (int i = 0; i < kSignatureSize; ++i) {
      const uint64_t h = Mix64(s ^ (0x5851f42d4c957f2dULL * static_cast<uint64_t>(i + 1)));
      sig[i] = std::min(sig[i], h);
    }
  }
  return sig;
}

std::optional<size_t> NearDuplicateFilter::Add(std::string_view text) {
  std::vector<uint64_t> shingles = ShingleHashes(text, ngram_);
  std::vector<uint64_t> band_keys;
  if (use_lsh_) {
    const std::vector<uint64_t> sig = Signature(shingles);
    const int bands = kSignatureSize / rows_;
    band_keys.reserve(bands);
    for (int b = 0; b < bands; ++b) {
      uint64_t h = Mix64(static_cast<uint64_t>(b) + 0x1234567ULL);
      for (int r = 0; r < rows_; ++r) h = Mix64(h ^ sig[b * rows_ + r]);
      band_keys.push_back(h);
    }
    // Candidates in the order they were kept, so the reported match is the earliest one.
    std::vector<size_t> candidates;
    for (uint64_t key : band_keys) {
      auto it = buckets_.find(key);
      if (it != buckets_.end()) {
        candidates.insert(candidates.end(), it->second.begin(), it->second.end());
      }
    }
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    for (size_t c : candidates) {
      if (Jaccard(shingles, kept_[c]) >= threshold_) return c;
    }
  } else {
    for (size_t c = 0; c < kept_.size(); ++c) {
      if (Jaccard(shingles, kept_[c]) >= threshold_) return c;
    }
  }
  const size_t index = kept_.size();
  kept_.push_back(std::move(shingles));
  for (uint64_t key : band_keys) buckets_[key].push_back(index);
  return std::nullopt;
}

}  // namespace breakfix::curate
