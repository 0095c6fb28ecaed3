// What the SentencePiece-style and BPE tokenizers share: a vocabulary of pieces with token
// types, and decoding built on each one's Render().
#ifndef BREAKFIX_ENGINE_VOCABULARY_TOKENIZER_H_
#define BREAKFIX_ENGINE_VOCABULARY_TOKENIZER_H_

#include <span>
#include <string>
#include <vector>

#include "breakfix/engine.h"
#include "engine/pretokenizer.h"

namespace breakfix::engine {

// Checks what both vocabularies share: one type per token, every type known, and the special
// ids (-1 for none) inside the vocabulary of `n` tokens. Errors name the field.
Status CheckTypesAndSpecialIds(const std::vector<TokenType>& types, size_t n, int32_t bos_id,
                               int32_t eos_id, int32_t unk_id, int32_t eot_id);

class VocabularyTokenizer : public Tokenizer {
 public:
  int32_t vocab_size() const final { return static_cast<int32_t>(pieces().size()); }
  // Concatenated Render() of every token but BOS/EOS (and special tokens when skip_special).
  std::string Decode(std::span<const int32_t> ids, bool skip_special) const final;
  std::string TokenBytes(int32_t id, bool first) const final {
    return Render(id, first, /*skip_special=*/false);
  }
  std::string Piece(int32_t id) const final;
  // Control, unknown and unused tokens.
  bool IsSpecial(int32_t id) const final;

 protected:
  virtual const std::vector<std::string>& pieces() const = 0;
  virtual const std::vector<TokenType>& types() const = 0;
  // What token `id` contributes to decoded text; `first` = it opens the sequence;
  // `skip_special` drops control/unknown tokens.
  virtual std::string Render(int32_t id, bool first, bool skip_special) const = 0;
  TokenType TypeOf(int32_t id) const { return types()[static_cast<size_t>(id)]; }
};

}  // namespace breakfix::engine

#endif  // BREAKFIX_ENGINE_VOCABULARY_TOKENIZER_H_
