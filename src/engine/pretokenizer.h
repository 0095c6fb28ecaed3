// What happens to text before a tokenizer's model sees it, shared by the three tokenizers:
//
//   1. UTF-8 decoding that never fails: a byte that does not start a valid sequence becomes a
//      code point of its own (kInvalidCodePoint), so byte-level tokenizers still round-trip it.
//   2. Special-token splitting: the textual forms of control / user-defined / added tokens
//      ("<|user|>", "<s>") are cut out of the text, longest match first, before anything else.
//   3. The pre-tokenizer split of byte-level BPE: the GPT-2, Llama 3 and Qwen2 regular
//      expressions, implemented as hand-written scanners over the generated Unicode tables
//      (std::regex cannot express \p{L} or \p{N}).
//
// Plus the vocabulary facts all tokenizers share: token types (numbered as GGUF
// tokenizer.ggml.token_type) and the texts of end-of-turn tokens.
//
// Everything here is a pure function or an immutable object: safe from any thread.
#ifndef BREAKFIX_ENGINE_PRETOKENIZER_H_
#define BREAKFIX_ENGINE_PRETOKENIZER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "breakfix/status.h"

#include "core/utf8.h"

namespace breakfix::engine {

// ---------------------------------------------------------------------------------------------
// UTF-8

// Stands for one byte that is not part of a valid UTF-8 sequence (above U+10FFFF on purpose:
// it is neither a letter, a number nor white space).
inline constexpr char32_t kInvalidCodePoint = 0x110000;

struct CodePoint {
  char32_t value = 0;   // kInvalidCodePoint for a stray byte
  uint32_t offset = 0;  // byte offset of the first byte in the decoded text
  uint32_t length = 0;  // bytes, 1..4
};

// Decodes all of `text`. Overlong forms, surrogates and truncated sequences decode byte by byte
// as kInvalidCodePoint, so the code points' byte spans always tile the text exactly.
std::vector<CodePoint> DecodeUtf8(std::string_view text);
// (AppendUtf8 comes from core/utf8.h.)
// Bytes of the UTF-8 sequence that starts with `lead`, judged by the lead byte alone (1 for a
// continuation or invalid byte): how SentencePiece-style tokenizers cut text into symbols.
int Utf8SequenceLength(unsigned char lead);
// Whether `text` is well-formed UTF-8.
bool IsValidUtf8(std::string_view text);

// ---------------------------------------------------------------------------------------------
// Token types and special tokens

// The kinds of vocabulary entry, numbered as GGUF's tokenizer.ggml.token_type.
enum class TokenType : uint8_t {
  kNormal = 1,
  kUnknown = 2,      // <unk>
  kControl = 3,      // <s>, </s>, <|im_start|>: special, split out only with parse_special
  kUserDefined = 4,  // always split out of text, rendered as its text
  kUnused = 5,
  kByte = 6,  // <0x0A>: one raw byte
};

// A token recognised by its text before tokenization.
struct AddedToken {
  std::string text;
  int32_t id = -1;
  bool special = true;  // true: matched only with parse_special; false: matched always
  bool lstrip = false;  // white space just before the token is swallowed
  bool rstrip = false;  // white space just after the token is swallowed
};

// Splits text on the textual forms of added tokens. At each position the longest token that
// matches (and is allowed: parse_special for special ones) wins; scanning is left to right.
class SpecialTokenMatcher {
 public:
  SpecialTokenMatcher() = default;
  // Tokens with empty text are ignored; of several tokens with the same text the first wins.
  explicit SpecialTokenMatcher(const std::vector<AddedToken>& tokens);

  struct Fragment {
    std::string_view text;  // the raw text of a plain fragment (empty for a token)
    int32_t id = -1;        // the token's id, or -1 for a plain fragment
  };
  // Plain fragments are never empty; the fragments' texts point into `text`.
  std::vector<Fragment> Split(std::string_view text, bool parse_special) const;

 private:
  struct Node {
    std::map<unsigned char, int32_t> next;
    int32_t token = -1;  // index into tokens_ of the token ending here
  };
  std::vector<Node> nodes_;
  std::vector<AddedToken> tokens_;
};

// Texts of tokens that end a turn in the model families breakfix runs: <|end|>, <|eot_id|>,
// <|im_end|>, <|endoftext|>, </s>, <|end_of_text|>.
const std::vector<std::string_view>& EndOfTurnTexts();

// EOS, then `eot` (GGUF tokenizer.ggml.eot_token_id), then every end-of-turn text `find`
// resolves; ids < 0 are skipped and duplicates dropped, order kept.
std::vector<int32_t> CollectStopIds(int32_t eos, int32_t eot,
                                    const std::function<int32_t(std::string_view)>& find);

// ---------------------------------------------------------------------------------------------
// Byte-level BPE pre-tokenizer patterns

enum class PretokenizerPattern {
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kGpt2,
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
  // \s*[\r\n]+|\s+(?!\S)|\s+
  kLlama3,
  // As kLlama3 with \p{N} (one digit per piece) instead of \p{N}{1,3}.
  kQwen2,
};

const char* PretokenizerPatternName(PretokenizerPattern pattern);  // "gpt2", "llama3", "qwen2"

// The pattern a tokenizer.json Split pre-tokenizer spells out as a regular expression. An
// unknown expression is an error that lists the supported ones.
Result<PretokenizerPattern> PatternFromRegex(std::string_view regex);
// The pattern for GGUF tokenizer.ggml.pre: "gpt2" and "default" -> kGpt2, "llama3" and
// "llama-bpe" -> kLlama3, "qwen2" -> kQwen2; anything else is an error listing these names.
Result<PretokenizerPattern> PatternFromGgufPre(std::string_view pre);

// The pieces the pattern cuts `text` into, in order; they tile the text exactly (every code
// point belongs to exactly one piece) and point into it.
std::vector<std::string_view> SplitPretokens(PretokenizerPattern pattern, std::string_view text);

}  // namespace breakfix::engine

#endif  // BREAKFIX_ENGINE_PRETOKENIZER_H_
