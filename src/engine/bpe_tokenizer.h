// BPE with merge ranks, in the two flavours Hugging Face tokenizer.json files and GGUF "gpt2"
// vocabularies use:
//
//   * byte-level (GPT-2, Llama 3, Qwen2): the text between special tokens is cut by the
//     pre-tokenizer pattern (pretokenizer.h); each piece's bytes are spelled with GPT-2's
//     printable byte alphabet ("Ġ" for a space, "Ċ" for a newline), and the piece is merged
//     pair by pair, lowest merge rank first (ties: leftmost). Every byte sequence round-trips.
//   * metaspace (SentencePiece models converted to tokenizer.json, e.g. Llama 2, Mistral,
//     Phi-3): spaces become "▁", a "▁" is prepended, characters are merged by rank, and a
//     character missing from the vocabulary falls back to <0xXX> byte tokens.
//
// With ignore_merges (Llama 3), a piece that is itself a vocabulary entry is taken whole.
#ifndef BREAKFIX_ENGINE_BPE_TOKENIZER_H_
#define BREAKFIX_ENGINE_BPE_TOKENIZER_H_

#include <array>
#include <cstdint>
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
#include "engine/spm_tokenizer.h"
#include "engine/vocabulary_tokenizer.h"

namespace breakfix::engine {

enum class BpeMode { kByteLevel, kMetaspace };

// When metaspace mode puts a "▁" in front of a plain fragment.
enum class MetaspacePrepend {
  kAlways,            // every fragment, unconditionally (a Prepend("▁") normalizer)
  kUnlessSpace,       // every fragment not already starting with "▁" (Metaspace "always")
  kFirstUnlessSpace,  // only at the start of the text, unless "▁" is there (Metaspace "first")
  kNever,
};

// GPT-2's byte alphabet: the code point standing for each byte (printable bytes stand for
// themselves; the others are moved to U+0100 and up).
char32_t ByteLevelChar(uint8_t byte);
// The byte a byte-level code point stands for, or -1 for a code point outside the alphabet.
int ByteLevelByte(char32_t cp);

struct BpeVocabulary {
  std::vector<std::string> tokens;  // id -> token text as stored (byte-level spelled: "Ġthe")
  std::vector<TokenType> types;     // id -> type (empty: all normal)
  // Merges by rank (first = applied first): the two token texts to join. Every text, and
  // their concatenation, must be a token.
  std::vector<std::pair<std::string, std::string>> merges;
  BpeMode mode = BpeMode::kByteLevel;
  // Byte-level.
  bool use_pattern = true;  // split with `pattern` first (ByteLevel use_regex / Split)
  PretokenizerPattern pattern = PretokenizerPattern::kGpt2;
  bool add_prefix_space = false;  // a space in front of a fragment that does not start with one
  // Metaspace.
  MetaspacePrepend prepend = MetaspacePrepend::kAlways;
  bool split_on_space = false;  // cut the text into words before each "▁" before merging
  bool byte_fallback = false;   // unknown characters as <0xXX> tokens (else unk)
  bool fuse_unk = false;        // consecutive unknown characters give one unk
  // Both.
  bool ignore_merges = false;  // a piece that is a token is taken whole
  // lstrip/rstrip of added tokens (HF tokenizer.json), by id.
  std::map<int32_t, std::pair<bool, bool>> strip;
  int32_t bos_id = -1;  // -1 when none
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  int32_t eot_id = -1;  // an extra end-of-turn token (GGUF eot_token_id), -1 = none
  bool add_bos = false;
};

// Immutable after Create: thread-safe.
class BpeTokenizer final : public VocabularyTokenizer {
 public:
  // Errors name what disagrees: sizes, an id out of range, a merge (by rank) whose parts or
  // result are not tokens.
  static Result<std::unique_ptr<BpeTokenizer>> Create(BpeVocabulary vocab);

  std::vector<int32_t> Encode(std::string_view text, bool add_bos,
                              bool parse_special) const override;
  int32_t bos_id() const override { return vocab_.bos_id; }
  int32_t eos_id() const override { return vocab_.eos_id; }
  const std::vector<int32_t>& stop_ids() const override { return stop_ids_; }
  bool add_bos_default() const override { return vocab_.add_bos; }
  const std::string& kind() const override { return kind_; }

  // The id of a token text as stored, or -1.
  int32_t Find(std::string_view text) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };

  explicit BpeTokenizer(BpeVocabulary vocab);
  const std::vector<std::string>& pieces() const override { return vocab_.tokens; }
  const std::vector<TokenType>& types() const override { return vocab_.types; }
  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void EncodeFragment(std::string_view text, bool at_text_start, std::vector<int32_t>* out) const;
  // Merges one word (already spelled in the vocabulary's alphabet) and appends its tokens.
  void EncodeWord(std::string_view word, std::vector<int32_t>* out) const;
  std::string Render(int32_t id, bool first, bool skip_special) const override;

  BpeVocabulary vocab_;
  TokenIndex index_;
  std::unordered_map<uint64_t, Merge> merges_;  // PairKey(left id, right id) -> merge
  std::array<int32_t, 256> byte_ids_;           // metaspace byte fallback: byte -> <0xXX>
  SpecialTokenMatcher matcher_;
  std::vector<int32_t> stop_ids_;
  std::string kind_ = "bpe";
};

}  // namespace breakfix::engine

#endif  // BREAKFIX_ENGINE_BPE_TOKENIZER_H_
