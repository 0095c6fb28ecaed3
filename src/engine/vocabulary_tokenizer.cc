#include "engine/vocabulary_tokenizer.h"

namespace breakfix::engine {

std::string VocabularyTokenizer::Decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string out;
  bool first = true;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size() || id == bos_id() || id == eos_id()) continue;
    if (skip_special && IsSpecial(id)) continue;
    out += Render(id, first, skip_special);
    first = false;
  }
  return out;
}

std::string VocabularyTokenizer::Piece(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return pieces()[static_cast<size_t>(id)];
}

bool VocabularyTokenizer::IsSpecial(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return false;
  const TokenType t = TypeOf(id);
  return t == TokenType::kControl || t == TokenType::kUnknown || t == TokenType::kUnused;
}

}  // namespace breakfix::engine
