#include "judge/classifier_features.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>
#include <utility>

namespace breakfix::classifier {
namespace {

// One character of the text: its bytes [begin, begin + len) and code point. A byte that does not
// start a valid UTF-8 sequence is a character of its own with the code point 0xDC00 + byte (as
// Python's surrogateescape spells it), so no input is ever rejected.
struct Char {
  size_t begin = 0;
  size_t len = 0;
  char32_t cp = 0;
};

std::vector<Char> DecodeChars(std::string_view s) {
  std::vector<Char> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    size_t len = 1;
    char32_t cp = b0;
    char32_t min = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2, cp = b0 & 0x1F, min = 0x80;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3, cp = b0 & 0x0F, min = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4, cp = b0 & 0x07, min = 0x10000;
    } else if (b0 >= 0x80) {
      len = 0;  // a continuation byte or an invalid lead byte
    }
    bool valid = len > 0 && i + len <= s.size();
    for (size_t k = 1; valid && k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      valid = (b & 0xC0) == 0x80;
      cp = (cp << 6) | (b & 0x3F);
    }
    valid = valid && cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (!valid) {
      out.push_back({i, 1, static_cast<char32_t>(0xDC00 + b0)});
      ++i;
      continue;
    }
    out.push_back({i, len, cp});
    i += len;
  }
  return out;
}

bool IsAsciiAlnum(char32_t cp) {
  return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9');
}

bool IsWordChar(char32_t cp) {
  if (cp < 0x80) return IsAsciiAlnum(cp);
  if (cp >= 0xDC80 && cp <= 0xDCFF) return false;  // a stray byte
  if (cp <= 0xBF) return false;                    // Latin-1 punctuation, NBSP, symbols
  if (cp >= 0x2000 && cp <= 0x206F) return false;  // general punctuation, dashes, quotes
  if (cp >= 0x3000 && cp <= 0x303F) return false;  // CJK punctuation
  return true;
}

bool IsSpace(char32_t cp) {
  return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\v' || cp == '\f' ||
         cp == 0xA0 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x3000;
}

// One group of features: bucket -> count. Counts are small integers, so the order they are
// added in cannot change them; normalising walks the buckets in ascending order, so the
// floating-point result is the same on every run.
class Group {
 public:
  explicit Group(int hash_bits) : hash_bits_(hash_bits) {}
  void Add(std::string_view prefix, std::string_view feature) {
    key_.assign(prefix);
    key_.append(feature);
    ++counts_[HashFeature(key_, hash_bits_)];
  }
  // Appends the L2-normalised group to `out` (bucket -> value).
  void AddNormalisedTo(std::map<uint32_t, double>* out) const {
    if (counts_.empty()) return;
    const std::map<uint32_t, double> sorted(counts_.begin(), counts_.end());
    double norm = 0;
    for (const auto& [index, value] : sorted) norm += value * value;
    norm = std::sqrt(norm);
    for (const auto& [index, value] : sorted) (*out)[index] += value / norm;
  }

 private:
  int hash_bits_;
  std::string key_;
  std::unordered_map<uint32_t, double> counts_;
};

}  // namespace

Status CheckFeatureOptions(const ClassifierFeatureOptions& o) {
  if (o.hash_bits < 10 || o.hash_bits > 26) {
    return Status::InvalidArgument("features.hash_bits is " + std::to_string(o.hash_bits) +
                                   ", expected 10..26");
  }
  if (o.char_ngram_max < 1 || o.char_ngram_max > 8) {
    return Status::InvalidArgument("features.char_ngram_max is " +
                                   std::to_string(o.char_ngram_max) + ", expected 1..8");
  }
  if (o.char_ngram_min < 1 || o.char_ngram_min > o.char_ngram_max) {
    return Status::InvalidArgument(
        "features.char_ngram_min is " + std::to_string(o.char_ngram_min) +
        ", expected 1..char_ngram_max (" + std::to_string(o.char_ngram_max) + ")");
  }
  return Status::OK();
}

std::string NormaliseText(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c >= 'A' && c <= 'Z') {
      out.push_back(static_cast<char>(c - 'A' + 'a'));
    } else if (text.compare(i, 3, "\xE2\x80\x99") == 0) {
      out.push_back('\'');
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::vector<std::string> SplitWords(std::string_view s) {
  std::vector<std::string> words;
  const std::vector<Char> chars = DecodeChars(s);
  size_t i = 0;
  while (i < chars.size()) {
    if (!IsWordChar(chars[i].cp)) {
      ++i;
      continue;
    }
    size_t j = i + 1;
    for (;;) {
      if (j < chars.size() && IsWordChar(chars[j].cp)) {
        ++j;
      } else if (j + 1 < chars.size() && chars[j].cp == '\'' && IsWordChar(chars[j + 1].cp)) {
        j += 2;
      } else {
        break;
      }
    }
    const size_t begin = chars[i].begin;
    const size_t end = chars[j - 1].begin + chars[j - 1].len;
    words.emplace_back(s.substr(begin, end - begin));
    i = j;
  }
  return words;
}

std::vector<std::string> CharNgrams(std::string_view s, int min_n, int max_n) {
  std::vector<std::string> grams;
  // Collapse white space and pad: " word word ".
  std::string text = " ";
  bool last_space = true;
  for (const Char& c : DecodeChars(s)) {
    if (IsSpace(c.cp)) {
      if (!last_space) text.push_back(' ');
      last_space = true;
    } else {
      text.append(s.substr(c.begin, c.len));
      last_space = false;
    }
  }
  if (text.size() == 1) return grams;  // blank
  if (!last_space) text.push_back(' ');
  const std::vector<Char> chars = DecodeChars(text);
  for (size_t i = 0; i < chars.size(); ++i) {
    for (int n = min_n; n <= max_n; ++n) {
      const size_t last = i + static_cast<size_t>(n) - 1;
      if (last >= chars.size()) break;
      const size_t end = chars[last].begin + chars[last].len;
      grams.push_back(text.substr(chars[i].begin, end - chars[i].begin));
    }
  }
  return grams;
}

uint32_t HashFeature(std::string_view feature, int hash_bits) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a offset basis
  for (char c : feature) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;  // FNV prime
  }
  // FNV's low bits mix poorly for short keys; the splitmix64 finaliser spreads every input bit.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return static_cast<uint32_t>(h & ((uint64_t{1} << hash_bits) - 1));
}

std::vector<SparseFeature> ExtractFeatures(const ClassifierFeatureOptions& options,
                                           std::string_view user, std::string_view assistant) {
  std::map<uint32_t, double> merged;
  const std::string reply = NormaliseText(assistant);

  Group words(options.hash_bits);
  const std::vector<std::string> reply_words = SplitWords(reply);
  for (size_t i = 0; i < reply_words.size(); ++i) {
    words.Add("w:", reply_words[i]);
    if (options.word_bigrams && i + 1 < reply_words.size()) {
      words.Add("b:", reply_words[i] + " " + reply_words[i + 1]);
    }
  }
  words.AddNormalisedTo(&merged);

  Group grams(options.hash_bits);
  for (const std::string& g : CharNgrams(reply, options.char_ngram_min, options.char_ngram_max)) {
    grams.Add("c:", g);
  }
  grams.AddNormalisedTo(&merged);

  if (options.user_features) {
    Group user_words(options.hash_bits);
    for (const std::string& w : SplitWords(NormaliseText(user))) user_words.Add("u:", w);
    user_words.AddNormalisedTo(&merged);
  }

  std::vector<SparseFeature> out;
  out.reserve(merged.size());
  for (const auto& [index, value] : merged) out.push_back({index, value});
  return out;
}

}  // namespace breakfix::classifier
