#include "engine/vocabulary_tokenizer.h"

namespace breakfix::engine {
namespace {

Status CheckId(const char* field, int32_t id, size_t n) {
  if (id < -1 || id >= static_cast<int64_t>(n)) {
    return Status::InvalidArgument(
        std::string(field) + " " + std::to_string(id) + " is outside the vocabulary of " +
        std::to_string(n) + " tokens (expected -1 for none, or 0.." + std::to_string(n - 1) + ")");
  }
  return Status::OK();
}

}  // namespace

Status CheckTypesAndSpecialIds(const std::vector<TokenType>& types, size_t n, int32_t bos_id,
                               int32_t eos_id, int32_t unk_id, int32_t eot_id) {
  if (types.size() != n) {
    return Status::InvalidArgument("token types has " + std::to_string(types.size()) +
                                   " entries but there are " + std::to_string(n) +
                                   " tokens (expected one type per token)");
  }
  for (size_t i = 0; i < n; ++i) {
    const auto t = static_cast<int>(types[i]);
    if (t < static_cast<int>(TokenType::kNormal) || t > static_cast<int>(TokenType::kByte)) {
      return Status::InvalidArgument("token " + std::to_string(i) + " has type " +
                                     std::to_string(t) + " (expected 1..6)");
    }
  }
  BF_RETURN_IF_ERROR(CheckId("bos id", bos_id, n));
  BF_RETURN_IF_ERROR(CheckId("eos id", eos_id, n));
  BF_RETURN_IF_ERROR(CheckId("unk id", unk_id, n));
  return CheckId("eot id", eot_id, n);
}

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
