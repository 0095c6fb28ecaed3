#include "engine/spm_tokenizer.h"

#include <algorithm>
#include <queue>
#include <utility>

namespace breakfix::engine {

std::string SpmUnescape(std::string_view piece) {
  std::string out;
  out.reserve(piece.size());
  size_t i = 0;
  while (i < piece.size()) {
    if (piece.substr(i, kSpmSpace.size()) == kSpmSpace) {
      out.push_back(' ');
      i += kSpmSpace.size();
    } else {
      out.push_back(piece[i++]);
    }
  }
  return out;
}

int ParseByteToken(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  int value = 0;
  for (char c : piece.substr(3, 2)) {
    value <<= 4;
    if (c >= '0' && c <= '9') {
      value |= c - '0';
    } else if (c >= 'A' && c <= 'F') {
      value |= c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      value |= c - 'a' + 10;
    } else {
      return -1;
    }
  }
  return value;
}

namespace {

// A run of the text being merged: [start, start + len) bytes; len 0 once merged into its left
// neighbour. prev/next link the live symbols (-1 at the ends).
struct Symbol {
  size_t start = 0;
  size_t len = 0;
  int prev = -1;
  int next = -1;
};

// A candidate merge of two adjacent symbols into a vocabulary piece of `size` bytes.
struct Bigram {
  int left = 0;
  int right = 0;
  float score = 0;
  size_t size = 0;
};

// The queue's top is the highest score; among equal scores, the leftmost pair.
struct LowerPriority {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

Result<std::unique_ptr<SpmTokenizer>> SpmTokenizer::Create(SpmVocabulary vocab) {
  const size_t n = vocab.tokens.size();
  if (n == 0) return Status::InvalidArgument("the vocabulary has no tokens");
  if (n > static_cast<size_t>(INT32_MAX)) {
    return Status::InvalidArgument("the vocabulary has more tokens than fit an int32 id");
  }
  if (vocab.scores.empty()) vocab.scores.assign(n, 0.0f);
  if (vocab.types.empty()) vocab.types.assign(n, TokenType::kNormal);
  if (vocab.scores.size() != n) {
    return Status::InvalidArgument("scores has " + std::to_string(vocab.scores.size()) +
                                   " entries but there are " + std::to_string(n) +
                                   " tokens (expected one score per token)");
  }
  BF_RETURN_IF_ERROR(CheckTypesAndSpecialIds(vocab.types, n, vocab.bos_id, vocab.eos_id,
                                             vocab.unk_id, vocab.eot_id));
  return std::unique_ptr<SpmTokenizer>(new SpmTokenizer(std::move(vocab)));
}

SpmTokenizer::SpmTokenizer(SpmVocabulary vocab) : vocab_(std::move(vocab)) {
  const auto n = static_cast<int32_t>(vocab_.tokens.size());
  index_.reserve(vocab_.tokens.size());
  std::vector<AddedToken> specials;
  for (int32_t id = 0; id < n; ++id) {
    const std::string& piece = vocab_.tokens[static_cast<size_t>(id)];
    if (piece.empty()) continue;  // a hole left by sparse added-token ids
    index_.emplace(piece, id);    // keeps the first id of a repeated piece
    const TokenType type = TypeOf(id);
    if (type != TokenType::kControl && type != TokenType::kUnknown &&
        type != TokenType::kUserDefined) {
      continue;
    }
    AddedToken token{piece, id, /*special=*/type != TokenType::kUserDefined};
    if (auto it = vocab_.strip.find(id); it != vocab_.strip.end()) {
      token.lstrip = it->second.first;
      token.rstrip = it->second.second;
    }
    specials.push_back(std::move(token));
  }
  matcher_ = SpecialTokenMatcher(specials);

  // Byte fallback: the byte-typed <0xXX> token, else any <0xXX> piece, else the byte itself.
  byte_ids_.fill(-1);
  for (int32_t id = 0; id < n; ++id) {
    if (TypeOf(id) != TokenType::kByte) continue;
    const int b = ParseByteToken(vocab_.tokens[static_cast<size_t>(id)]);
    if (b >= 0 && byte_ids_[static_cast<size_t>(b)] < 0) byte_ids_[static_cast<size_t>(b)] = id;
  }
  static const char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    if (byte_ids_[static_cast<size_t>(b)] >= 0) continue;
    const std::string hex = std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
    int32_t id = Find(hex);
    if (id < 0) id = Find(std::string(1, static_cast<char>(b)));
    byte_ids_[static_cast<size_t>(b)] = id;
  }
  stop_ids_ = CollectStopIds(vocab_.eos_id, vocab_.eot_id,
                             [this](std::string_view text) { return Find(text); });
}

int32_t SpmTokenizer::Find(std::string_view piece) const {
  auto it = index_.find(piece);
  return it == index_.end() ? -1 : it->second;
}

std::vector<int32_t> SpmTokenizer::Encode(std::string_view text, bool add_bos,
                                          bool parse_special) const {
  std::vector<int32_t> out;
  if (add_bos && vocab_.add_bos && vocab_.bos_id >= 0) out.push_back(vocab_.bos_id);
  // Like llama.cpp: each plain fragment that starts the text or follows a special token gets
  // the space prefix (which is every fragment, since specials separate them).
  bool after_special = true;
  std::string escaped;
  for (const SpecialTokenMatcher::Fragment& fragment : matcher_.Split(text, parse_special)) {
    if (fragment.id >= 0) {
      out.push_back(fragment.id);
      after_special = true;
      continue;
    }
    escaped.clear();
    if (vocab_.add_space_prefix && after_special) escaped += kSpmSpace;
    for (char c : fragment.text) {
      if (c == ' ') {
        escaped += kSpmSpace;
      } else {
        escaped.push_back(c);
      }
    }
    EncodeEscaped(escaped, &out);
    after_special = false;
  }
  return out;
}

void SpmTokenizer::EncodeEscaped(std::string_view text, std::vector<int32_t>* out) const {
  if (text.empty()) return;
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t offset = 0; offset < text.size();) {
    Symbol s;
    s.start = offset;
    s.len = std::min<size_t>(Utf8SequenceLength(static_cast<unsigned char>(text[offset])),
                             text.size() - offset);
    offset += s.len;
    s.prev = static_cast<int>(symbols.size()) - 1;
    s.next = offset == text.size() ? -1 : static_cast<int>(symbols.size()) + 1;
    symbols.push_back(s);
  }

  std::priority_queue<Bigram, std::vector<Bigram>, LowerPriority> queue;
  const auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[static_cast<size_t>(left)];
    const Symbol& r = symbols[static_cast<size_t>(right)];
    const std::string_view piece = text.substr(l.start, l.len + r.len);
    const int32_t id = Find(piece);
    if (id < 0) return;
    queue.push({left, right, vocab_.scores[static_cast<size_t>(id)], piece.size()});
  };
  for (size_t i = 1; i < symbols.size(); ++i) {
    try_add(static_cast<int>(i) - 1, static_cast<int>(i));
  }

  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<size_t>(bigram.left)];
    Symbol& right = symbols[static_cast<size_t>(bigram.right)];
    // Stale: one side was merged away or has grown since this pair was queued.
    if (left.len == 0 || right.len == 0 || left.len + right.len != bigram.size) continue;
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = bigram.left;
    try_add(left.prev, bigram.left);
    try_add(bigram.left, left.next);
  }

  for (int i = 0; i != -1; i = symbols[static_cast<size_t>(i)].next) {
    const Symbol& s = symbols[static_cast<size_t>(i)];
    const std::string_view piece = text.substr(s.start, s.len);
    const int32_t id = Find(piece);
    if (id >= 0) {
      out->push_back(id);
      continue;
    }
    for (char c : piece) {
      const int32_t byte_id = byte_ids_[static_cast<unsigned char>(c)];
      if (byte_id >= 0) {
        out->push_back(byte_id);
      } else if (vocab_.unk_id >= 0) {
        out->push_back(vocab_.unk_id);
      }
    }
  }
}

std::string SpmTokenizer::Render(int32_t id, bool first, bool skip_special) const {
  if (id < 0 || id >= vocab_size() || id == vocab_.bos_id || id == vocab_.eos_id) return {};
  const std::string& piece = vocab_.tokens[static_cast<size_t>(id)];
  switch (TypeOf(id)) {
    case TokenType::kNormal: {
      std::string text = SpmUnescape(piece);
      if (first && vocab_.add_space_prefix && !text.empty() && text[0] == ' ') text.erase(0, 1);
      return text;
    }
    case TokenType::kByte: {
      const int b = ParseByteToken(piece);
      return b >= 0 ? std::string(1, static_cast<char>(b)) : piece;
    }
    case TokenType::kUserDefined:
      return piece;
    case TokenType::kControl:
    case TokenType::kUnknown:
    case TokenType::kUnused:
      return skip_special ? std::string() : piece;
  }
  return {};
}

}  // namespace breakfix::engine
