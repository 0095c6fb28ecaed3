// SentencePiece-style tokenization from a vocabulary with scores (GGUF tokenizer.ggml.model
// "llama"), matching llama.cpp's SPM tokenizer token for token:
//
//   * the text between special tokens gets a leading space when the vocabulary asks for one
//     (add_space_prefix, the default) and every space becomes U+2581 "▁";
//   * the text is cut into UTF-8 characters, then the adjacent pair whose concatenation is a
//     vocabulary entry with the highest score is merged, again and again (ties: the leftmost
//     pair), until no pair forms an entry;
//   * a symbol left that is not an entry is spelled as byte tokens <0xXX> (byte fallback), or
//     <unk> when the vocabulary has no byte tokens.
//
// Decoding turns "▁" back into spaces and byte tokens into raw bytes, and drops the space the
// encoder added in front of the sequence's first token.
#ifndef BREAKFIX_ENGINE_SPM_TOKENIZER_H_
#define BREAKFIX_ENGINE_SPM_TOKENIZER_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "breakfix/engine.h"
#include "breakfix/status.h"
#include "engine/pretokenizer.h"
#include "engine/vocabulary_tokenizer.h"

namespace breakfix::engine {

// "▁" (U+2581), SentencePiece's stand-in for a space.
inline constexpr std::string_view kSpmSpace = "\xE2\x96\x81";

// The piece with every "▁" replaced by a space.
std::string SpmUnescape(std::string_view piece);
// The byte a piece of the form "<0xXX>" stands for, or -1 when it has another form.
int ParseByteToken(std::string_view piece);

// A lookup from token text to id that accepts string_view keys without copying them.
struct TextHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};
using TokenIndex = std::unordered_map<std::string, int32_t, TextHash, std::equal_to<>>;

struct SpmVocabulary {
  std::vector<std::string> tokens;  // id -> piece, as stored ("▁the", "<0x0A>")
  std::vector<float> scores;        // id -> score; higher merges first (empty: all 0)
  std::vector<TokenType> types;     // id -> type (empty: all normal)
  int32_t bos_id = -1;              // -1 when none
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  int32_t eot_id = -1;           // an extra end-of-turn token (GGUF eot_token_id), -1 = none
  bool add_bos = true;           // whether prompts start with BOS
  bool add_space_prefix = true;  // a space in front of each plain text fragment
  std::string kind = "spm";      // what kind() reports ("sentencepiece" for tokenizer.model)
  // lstrip/rstrip of added tokens (tokenizer_config.json), by id.
  std::map<int32_t, std::pair<bool, bool>> strip;
};

// Immutable after Create: thread-safe.
class SpmTokenizer final : public VocabularyTokenizer {
 public:
  // Errors name the field that disagrees: sizes of scores/types vs tokens, an id out of range.
  static Result<std::unique_ptr<SpmTokenizer>> Create(SpmVocabulary vocab);

  std::vector<int32_t> Encode(std::string_view text, bool add_bos,
                              bool parse_special) const override;
  int32_t bos_id() const override { return vocab_.bos_id; }
  int32_t eos_id() const override { return vocab_.eos_id; }
  const std::vector<int32_t>& stop_ids() const override { return stop_ids_; }
  bool add_bos_default() const override { return vocab_.add_bos; }
  const std::string& kind() const override { return vocab_.kind; }

  // The id of a piece ("▁the", "<s>"), or -1.
  int32_t Find(std::string_view piece) const;

 private:
  explicit SpmTokenizer(SpmVocabulary vocab);
  const std::vector<std::string>& pieces() const override { return vocab_.tokens; }
  const std::vector<TokenType>& types() const override { return vocab_.types; }
  // Tokenizes one plain fragment, already escaped ("▁" for spaces).
  void EncodeEscaped(std::string_view text, std::vector<int32_t>* out) const;
  // What a token contributes when decoded; `skip_special` drops control/unknown tokens.
  std::string Render(int32_t id, bool first, bool skip_special) const override;

  SpmVocabulary vocab_;
  TokenIndex index_;                   // piece -> id (the first id when a piece repeats)
  std::array<int32_t, 256> byte_ids_;  // byte -> <0xXX> token (or -1)
  SpecialTokenMatcher matcher_;
  std::vector<int32_t> stop_ids_;
};

}  // namespace breakfix::engine

#endif  // BREAKFIX_ENGINE_SPM_TOKENIZER_H_
