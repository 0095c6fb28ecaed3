// Text -> hashed sparse features for the classifier judge (classifier_judge.h).
//
// Three groups, each L2-normalised on its own so that a long reply's thousands of character
// n-grams do not drown its few dozen words:
//   * reply words: lowercased word unigrams ("w:") and, optionally, bigrams ("b:");
//   * reply characters: lowercased character n-grams ("c:") of the reply with white space
//     collapsed to one space and a space added at both ends, so word edges are visible;
//   * user words: the user message's word unigrams ("u:"), a smaller group that lets the model
//     see what was asked without confusing it with what was answered.
// Each feature string (prefix included) is hashed with 64-bit FNV-1a, mixed with the splitmix64
// finaliser, and reduced to its low hash_bits bits; counts of features that share a bucket add.
//
// Pure functions: safe from any thread.
#ifndef BREAKFIX_JUDGE_CLASSIFIER_FEATURES_H_
#define BREAKFIX_JUDGE_CLASSIFIER_FEATURES_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "breakfix/classifier_judge.h"
#include "breakfix/status.h"

namespace breakfix::classifier {

// The name the model file records for the hash above; a file naming another is refused.
inline constexpr char kFeatureHashName[] = "fnv1a64-splitmix";

struct SparseFeature {
  uint32_t index = 0;  // bucket, < 2^hash_bits
  double value = 0;

  bool operator==(const SparseFeature& o) const { return index == o.index && value == o.value; }
};

// InvalidArgument naming the field when a setting is out of its range (see the struct).
Status CheckFeatureOptions(const ClassifierFeatureOptions& options);

// Lowercases ASCII letters and writes U+2019 (the typographic apostrophe) as "'", so "Can’t"
// and "can't" are the same word. Other characters are kept as written.
std::string NormaliseText(std::string_view text);

// Words of normalised text: maximal runs of ASCII letters and digits, and of characters beyond
// ASCII other than punctuation blocks (U+0080..U+00BF, U+2000..U+206F, U+3000..U+303F); an
// apostrophe between two word characters stays inside the word ("can't").
std::vector<std::string> SplitWords(std::string_view normalised);

// The character n-grams (n in [min_n, max_n], counted in code points; a byte that is not valid
// UTF-8 counts as one character) of normalised text after white-space collapsing and padding.
// Empty or blank text has none.
std::vector<std::string> CharNgrams(std::string_view normalised, int min_n, int max_n);

// The bucket of one feature string.
uint32_t HashFeature(std::string_view feature, int hash_bits);

// The features of one assistant turn, sorted by index, indices unique.
std::vector<SparseFeature> ExtractFeatures(const ClassifierFeatureOptions& options,
                                           std::string_view user, std::string_view assistant);

}  // namespace breakfix::classifier

#endif  // BREAKFIX_JUDGE_CLASSIFIER_FEATURES_H_
