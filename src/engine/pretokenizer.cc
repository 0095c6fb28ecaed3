#include "engine/pretokenizer.h"

#include <algorithm>
#include <set>

#include "engine/unicode_tables.h"

namespace breakfix::engine {

// ---------------------------------------------------------------------------------------------
// UTF-8

namespace {

bool IsContinuation(unsigned char b) { return (b & 0xC0) == 0x80; }

// Length and value of the well-formed sequence at text[i], or length 0 when there is none.
int DecodeOne(std::string_view text, size_t i, char32_t* value) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  const size_t left = text.size() - i;
  if (b0 < 0x80) {
    *value = b0;
    return 1;
  }
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (left < 2 || !IsContinuation(byte(i + 1))) return 0;
    *value = (char32_t{b0} & 0x1F) << 6 | (byte(i + 1) & 0x3F);
    return 2;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (left < 3) return 0;
    const unsigned char b1 = byte(i + 1);
    // E0 needs A0..BF (no overlong forms); ED needs 80..9F (no surrogates).
    const unsigned char lo = b0 == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = b0 == 0xED ? 0x9F : 0xBF;
    if (b1 < lo || b1 > hi || !IsContinuation(byte(i + 2))) return 0;
    *value = (char32_t{b0} & 0x0F) << 12 | (char32_t{b1} & 0x3F) << 6 | (byte(i + 2) & 0x3F);
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (left < 4) return 0;
    const unsigned char b1 = byte(i + 1);
    // F0 needs 90..BF (no overlong forms); F4 needs 80..8F (nothing above U+10FFFF).
    const unsigned char lo = b0 == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = b0 == 0xF4 ? 0x8F : 0xBF;
    if (b1 < lo || b1 > hi || !IsContinuation(byte(i + 2)) || !IsContinuation(byte(i + 3))) {
      return 0;
    }
    *value = (char32_t{b0} & 0x07) << 18 | (char32_t{b1} & 0x3F) << 12 |
             (char32_t{byte(i + 2)} & 0x3F) << 6 | (byte(i + 3) & 0x3F);
    return 4;
  }
  return 0;
}

}  // namespace

std::vector<CodePoint> DecodeUtf8(std::string_view text) {
  std::vector<CodePoint> out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    char32_t value = 0;
    int len = DecodeOne(text, i, &value);
    if (len == 0) {
      value = kInvalidCodePoint;
      len = 1;
    }
    out.push_back({value, static_cast<uint32_t>(i), static_cast<uint32_t>(len)});
    i += static_cast<size_t>(len);
  }
  return out;
}

int Utf8SequenceLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xC0) return 1;  // a continuation byte standing alone
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF8) return 4;
  return 1;
}

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    char32_t value = 0;
    const int len = DecodeOne(text, i, &value);
    if (len == 0) return false;
    i += static_cast<size_t>(len);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Special tokens

SpecialTokenMatcher::SpecialTokenMatcher(const std::vector<AddedToken>& tokens) {
  nodes_.emplace_back();  // the root
  for (const AddedToken& token : tokens) {
    if (token.text.empty()) continue;
    int32_t node = 0;
    for (unsigned char c : token.text) {
      auto it = nodes_[node].next.find(c);
      if (it == nodes_[node].next.end()) {
        const auto child = static_cast<int32_t>(nodes_.size());
        nodes_[node].next.emplace(c, child);
        nodes_.emplace_back();
        node = child;
      } else {
        node = it->second;
      }
    }
    if (nodes_[node].token >= 0) continue;  // the same text twice: the first one wins
    nodes_[node].token = static_cast<int32_t>(tokens_.size());
    tokens_.push_back(token);
  }
}

namespace {

// Bytes of white space at the end / start of `text` (Unicode White_Space).
size_t TrailingSpaceBytes(std::string_view text) {
  const std::vector<CodePoint> cps = DecodeUtf8(text);
  size_t bytes = 0;
  for (auto it = cps.rbegin(); it != cps.rend() && IsUnicodeWhitespace(it->value); ++it) {
    bytes += it->length;
  }
  return bytes;
}

size_t LeadingSpaceBytes(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    char32_t value = 0;
    const int len = DecodeOne(text, i, &value);
    if (len == 0 || !IsUnicodeWhitespace(value)) break;
    i += static_cast<size_t>(len);
  }
  return i;
}

}  // namespace

std::vector<SpecialTokenMatcher::Fragment> SpecialTokenMatcher::Split(std::string_view text,
                                                                      bool parse_special) const {
  std::vector<Fragment> out;
  size_t plain_start = 0;
  size_t pos = 0;
  const auto emit_plain = [&](size_t end) {
    if (end > plain_start) out.push_back({text.substr(plain_start, end - plain_start), -1});
  };
  while (pos < text.size()) {
    // Walk the trie as far as the text allows; remember the longest allowed token.
    int32_t best = -1;
    size_t best_end = 0;
    if (!nodes_.empty()) {
      int32_t node = 0;
      for (size_t k = pos; k < text.size(); ++k) {
        auto it = nodes_[node].next.find(static_cast<unsigned char>(text[k]));
        if (it == nodes_[node].next.end()) break;
        node = it->second;
        const int32_t t = nodes_[node].token;
        if (t >= 0 && (parse_special || !tokens_[t].special)) {
          best = t;
          best_end = k + 1;
        }
      }
    }
    if (best < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[best];
    size_t plain_end = pos;
    if (token.lstrip) {
      plain_end -= TrailingSpaceBytes(text.substr(plain_start, pos - plain_start));
    }
    emit_plain(plain_end);
    out.push_back({std::string_view(), token.id});
    pos = best_end;
    if (token.rstrip) pos += LeadingSpaceBytes(text.substr(pos));
    plain_start = pos;
  }
  emit_plain(text.size());
  return out;
}

const std::vector<std::string_view>& EndOfTurnTexts() {
  static const std::vector<std::string_view> kTexts = {
      "<|end|>", "<|eot_id|>", "<|im_end|>", "<|endoftext|>", "</s>", "<|end_of_text|>"};
  return kTexts;
}

std::vector<int32_t> CollectStopIds(int32_t eos, int32_t eot,
                                    const std::function<int32_t(std::string_view)>& find) {
  std::vector<int32_t> ids;
  const auto add = [&](int32_t id) {
    if (id >= 0 && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  add(eos);
  add(eot);
  for (std::string_view text : EndOfTurnTexts()) add(find(text));
  return ids;
}

// ---------------------------------------------------------------------------------------------
// Pre-tokenizer patterns

namespace {

constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// The four classes the patterns distinguish: \p{L}, \p{N}, \s and everything else.
enum class CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

CharClass Classify(char32_t cp) {
  if (cp < 0x80) {  // the common case, without a table search
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::kLetter;
    if (cp >= '0' && cp <= '9') return CharClass::kNumber;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return CharClass::kSpace;
    return CharClass::kOther;
  }
  if (IsUnicodeWhitespace(cp)) return CharClass::kSpace;
  switch (CategoryOf(cp)) {
    case UnicodeCategory::kLetter:
      return CharClass::kLetter;
    case UnicodeCategory::kNumber:
      return CharClass::kNumber;
    default:
      return CharClass::kOther;
  }
}

char32_t AsciiLower(char32_t c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; }
bool IsNewline(char32_t c) { return c == '\r' || c == '\n'; }

// One scanner per pattern. Each returns the end (exclusive code-point index) of the match that
// the regular expression finds at `i`: alternatives are tried in order, quantifiers are greedy
// and backtrack as the regex engine would.
class PatternScanner {
 public:
  PatternScanner(PretokenizerPattern pattern, const std::vector<CodePoint>& cps)
      : pattern_(pattern), cps_(cps), n_(cps.size()) {
    cls_.reserve(n_);
    for (const CodePoint& cp : cps) cls_.push_back(Classify(cp.value));
  }

  size_t MatchAt(size_t i) const {
    return pattern_ == PretokenizerPattern::kGpt2 ? MatchGpt2(i) : MatchLlama3(i);
  }

 private:
  char32_t At(size_t i) const { return cps_[i].value; }
  size_t RunOf(size_t i, CharClass c) const {
    while (i < n_ && cls_[i] == c) ++i;
    return i;
  }

  // 's|'t|'re|'ve|'m|'ll|'d, optionally ignoring ASCII case; 0 when none matches at i.
  size_t Contraction(size_t i, bool ignore_case) const {
    if (At(i) != '\'' || i + 1 >= n_) return 0;
    const auto fold = [&](size_t k) { return ignore_case ? AsciiLower(At(k)) : At(k); };
    const char32_t a = fold(i + 1);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (i + 2 < n_) {
      const char32_t b = fold(i + 2);
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
        return i + 3;
      }
    }
    return 0;
  }

  // \s+(?!\S)|\s+ at i (a white-space code point): the run, less its last code point when
  // something that is not white space follows and the run is longer than one.
  size_t SpaceRun(size_t i) const {
    const size_t end = RunOf(i, CharClass::kSpace);
    if (end == n_ || end - i == 1) return end;
    return end - 1;
  }

  size_t MatchGpt2(size_t i) const {
    if (size_t end = Contraction(i, /*ignore_case=*/false)) return end;
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional space, then a run of one class.
    if (At(i) == ' ' && i + 1 < n_ && cls_[i + 1] != CharClass::kSpace) {
      return RunOf(i + 1, cls_[i + 1]);
    }
    if (cls_[i] != CharClass::kSpace) return RunOf(i, cls_[i]);
    return SpaceRun(i);
  }

  size_t MatchLlama3(size_t i) const {
    if (size_t end = Contraction(i, /*ignore_case=*/true)) return end;
    const CharClass c = cls_[i];
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (c == CharClass::kLetter) return RunOf(i, CharClass::kLetter);
    if (c != CharClass::kNumber && !IsNewline(At(i)) && i + 1 < n_ &&
        cls_[i + 1] == CharClass::kLetter) {
      return RunOf(i + 1, CharClass::kLetter);
    }
    // \p{N}{1,3} (llama3) or \p{N} (qwen2)
    if (c == CharClass::kNumber) {
      const size_t limit = pattern_ == PretokenizerPattern::kQwen2 ? 1 : 3;
      return std::min(RunOf(i, CharClass::kNumber), i + limit);
    }
    // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
    size_t start = n_;
    if (c == CharClass::kOther) {
      start = i;
    } else if (At(i) == ' ' && i + 1 < n_ && cls_[i + 1] == CharClass::kOther) {
      start = i + 1;
    }
    if (start < n_) {
      size_t end = RunOf(start, CharClass::kOther);
      while (end < n_ && IsNewline(At(end))) ++end;
      return end;
    }
    // \s*[\r\n]+ : up to and including the last line break of the white-space run.
    const size_t run_end = RunOf(i, CharClass::kSpace);
    for (size_t k = run_end; k > i; --k) {
      if (IsNewline(At(k - 1))) return k;
    }
    return SpaceRun(i);
  }

  PretokenizerPattern pattern_;
  const std::vector<CodePoint>& cps_;
  size_t n_;
  std::vector<CharClass> cls_;
};

}  // namespace

const char* PretokenizerPatternName(PretokenizerPattern pattern) {
  switch (pattern) {
    case PretokenizerPattern::kGpt2:
      return "gpt2";
    case PretokenizerPattern::kLlama3:
      return "llama3";
    case PretokenizerPattern::kQwen2:
      return "qwen2";
  }
  return "unknown";
}

Result<PretokenizerPattern> PatternFromRegex(std::string_view regex) {
  if (regex == kGpt2Regex) return PretokenizerPattern::kGpt2;
  if (regex == kLlama3Regex) return PretokenizerPattern::kLlama3;
  if (regex == kQwen2Regex) return PretokenizerPattern::kQwen2;
  return Status::InvalidArgument("unsupported pre-tokenizer regular expression \"" +
                                 std::string(regex) + "\"; supported are the GPT-2 pattern \"" +
                                 std::string(kGpt2Regex) + "\", the Llama 3 pattern \"" +
                                 std::string(kLlama3Regex) + "\" and the Qwen2 pattern \"" +
                                 std::string(kQwen2Regex) + "\"");
}

Result<PretokenizerPattern> PatternFromGgufPre(std::string_view pre) {
  if (pre == "gpt2" || pre == "default") return PretokenizerPattern::kGpt2;
  if (pre == "llama3" || pre == "llama-bpe") return PretokenizerPattern::kLlama3;
  if (pre == "qwen2") return PretokenizerPattern::kQwen2;
  return Status::InvalidArgument("unsupported pre-tokenizer \"" + std::string(pre) +
                                 "\"; supported: gpt2, default, llama3, llama-bpe, qwen2");
}

std::vector<std::string_view> SplitPretokens(PretokenizerPattern pattern, std::string_view text) {
  std::vector<std::string_view> pieces;
  const std::vector<CodePoint> cps = DecodeUtf8(text);
  const PatternScanner scanner(pattern, cps);
  size_t i = 0;
  while (i < cps.size()) {
    size_t end = scanner.MatchAt(i);
    if (end <= i) end = i + 1;  // every code point matches some alternative; never stall
    const size_t from = cps[i].offset;
    const size_t to = end < cps.size() ? cps[end].offset : text.size();
    pieces.push_back(text.substr(from, to - from));
    i = end;
  }
  return pieces;
}

}  // namespace breakfix::engine
