#include "engine/bpe_tokenizer.h"

#include <queue>

namespace breakfix::engine {
namespace {

// GPT-2's alphabet: bytes that print stand for themselves; the other 68 are moved, in order,
// to U+0100 and up.
bool PrintsAsItself(int b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct ByteAlphabet {
  std::array<char32_t, 256> to_char{};
  std::array<int16_t, 324> to_byte{};  // code points 0..323 -> byte, -1 outside the alphabet
  ByteAlphabet() {
    to_byte.fill(-1);
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      to_char[static_cast<size_t>(b)] = PrintsAsItself(b) ? static_cast<char32_t>(b) : next++;
      to_byte[to_char[static_cast<size_t>(b)]] = static_cast<int16_t>(b);
    }
  }
};

const ByteAlphabet& Alphabet() {
  static const ByteAlphabet kAlphabet;
  return kAlphabet;
}

// A symbol of a word being merged: bytes [start, start + len) of the word, its token (-1 when
// the text is no token), and links to the live neighbours.
struct Symbol {
  size_t start = 0;
  size_t len = 0;
  int32_t id = -1;
  int prev = -1;
  int next = -1;
};

struct Candidate {
  int32_t rank = 0;
  int left = 0;
  int right = 0;
  int32_t left_id = -1;
  int32_t right_id = -1;
  int32_t result = -1;
};

// The queue's top is the lowest rank; among equal ranks, the leftmost pair.
struct LaterCandidate {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

char32_t ByteLevelChar(uint8_t byte) { return Alphabet().to_char[byte]; }

int ByteLevelByte(char32_t cp) {
  if (cp >= Alphabet().to_byte.size()) return -1;
  return Alphabet().to_byte[cp];
}

Result<std::unique_ptr<BpeTokenizer>> BpeTokenizer::Create(BpeVocabulary vocab) {
  const size_t n = vocab.tokens.size();
  if (n == 0) return Status::InvalidArgument("the vocabulary has no tokens");
  if (n > static_cast<size_t>(INT32_MAX)) {
    return Status::InvalidArgument("the vocabulary has more tokens than fit an int32 id");
  }
  if (vocab.types.empty()) vocab.types.assign(n, TokenType::kNormal);
  BF_RETURN_IF_ERROR(CheckTypesAndSpecialIds(vocab.types, n, vocab.bos_id, vocab.eos_id,
                                             vocab.unk_id, vocab.eot_id));
  std::unique_ptr<BpeTokenizer> tokenizer(new BpeTokenizer(std::move(vocab)));

  const BpeVocabulary& v = tokenizer->vocab_;
  tokenizer->merges_.reserve(v.merges.size());
  for (size_t rank = 0; rank < v.merges.size(); ++rank) {
    const auto& [a, b] = v.merges[rank];
    const int32_t left = tokenizer->Find(a);
    const int32_t right = tokenizer->Find(b);
    const int32_t result = tokenizer->Find(a + b);
    const char* missing = left < 0 ? "its first part" : right < 0 ? "its second part" : nullptr;
    if (missing == nullptr && result < 0) missing = "the merged text";
    if (missing != nullptr) {
      return Status::InvalidArgument("merge " + std::to_string(rank) + " (\"" + a + "\" + \"" + b +
                                     "\"): " + missing +
                                     " is not a token (expected every merge to join two "
                                     "tokens into a third)");
    }
    // A repeated pair keeps its first (lowest) rank.
    tokenizer->merges_.emplace(PairKey(left, right), Merge{static_cast<int32_t>(rank), result});
  }
  return tokenizer;
}

BpeTokenizer::BpeTokenizer(BpeVocabulary vocab) : vocab_(std::move(vocab)) {
  const auto n = static_cast<int32_t>(vocab_.tokens.size());
  index_.reserve(vocab_.tokens.size());
  std::vector<AddedToken> specials;
  for (int32_t id = 0; id < n; ++id) {
    const std::string& text = vocab_.tokens[static_cast<size_t>(id)];
    if (text.empty()) continue;  // a hole in a sparse vocabulary
    index_.emplace(text, id);
    const TokenType type = TypeOf(id);
    if (type != TokenType::kControl && type != TokenType::kUnknown &&
        type != TokenType::kUserDefined) {
      continue;
    }
    AddedToken token{text, id, /*special=*/type != TokenType::kUserDefined};
    if (auto it = vocab_.strip.find(id); it != vocab_.strip.end()) {
      token.lstrip = it->second.first;
      token.rstrip = it->second.second;
    }
    specials.push_back(std::move(token));
  }
  matcher_ = SpecialTokenMatcher(specials);

  byte_ids_.fill(-1);
  static const char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    byte_ids_[static_cast<size_t>(b)] =
        Find(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">");
  }
  stop_ids_ = CollectStopIds(vocab_.eos_id, vocab_.eot_id,
                             [this](std::string_view text) { return Find(text); });
}

int32_t BpeTokenizer::Find(std::string_view text) const {
  auto it = index_.find(text);
  return it == index_.end() ? -1 : it->second;
}

std::vector<int32_t> BpeTokenizer::Encode(std::string_view text, bool add_bos,
                                          bool parse_special) const {
  std::vector<int32_t> out;
  if (add_bos && vocab_.add_bos && vocab_.bos_id >= 0) out.push_back(vocab_.bos_id);
  for (const SpecialTokenMatcher::Fragment& fragment : matcher_.Split(text, parse_special)) {
    if (fragment.id >= 0) {
      out.push_back(fragment.id);
    } else {
      EncodeFragment(fragment.text, fragment.text.data() == text.data(), &out);
    }
  }
  return out;
}

void BpeTokenizer::EncodeFragment(std::string_view text, bool at_text_start,
                                  std::vector<int32_t>* out) const {
  if (vocab_.mode == BpeMode::kByteLevel) {
    std::string prefixed;
    if (vocab_.add_prefix_space && !text.empty() && text[0] != ' ') {
      prefixed = " " + std::string(text);
      text = prefixed;
    }
    std::vector<std::string_view> pieces;
    if (vocab_.use_pattern) {
      pieces = SplitPretokens(vocab_.pattern, text);
    } else {
      pieces.push_back(text);
    }
    std::string word;
    for (std::string_view piece : pieces) {
      word.clear();
      for (char c : piece) AppendUtf8(ByteLevelChar(static_cast<uint8_t>(c)), &word);
      EncodeWord(word, out);
    }
    return;
  }

  // Metaspace: spaces become "▁", and a "▁" goes in front as the scheme says.
  std::string escaped;
  const bool starts_with_space = !text.empty() && text[0] == ' ';
  bool prepend = false;
  switch (vocab_.prepend) {
    case MetaspacePrepend::kAlways:
      prepend = true;
      break;
    case MetaspacePrepend::kUnlessSpace:
      prepend = !starts_with_space;
      break;
    case MetaspacePrepend::kFirstUnlessSpace:
      prepend = at_text_start && !starts_with_space;
      break;
    case MetaspacePrepend::kNever:
      break;
  }
  if (prepend) escaped += kSpmSpace;
  for (char c : text) {
    if (c == ' ') {
      escaped += kSpmSpace;
    } else {
      escaped.push_back(c);
    }
  }
  if (!vocab_.split_on_space) {
    EncodeWord(escaped, out);
    return;
  }
  // Each "▁" starts a new word.
  size_t word_start = 0;
  for (size_t pos = escaped.find(kSpmSpace, 1); pos != std::string::npos;
       pos = escaped.find(kSpmSpace, pos + kSpmSpace.size())) {
    EncodeWord(std::string_view(escaped).substr(word_start, pos - word_start), out);
    word_start = pos;
  }
  EncodeWord(std::string_view(escaped).substr(word_start), out);
}

void BpeTokenizer::EncodeWord(std::string_view word, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  if (vocab_.ignore_merges) {
    if (const int32_t id = Find(word); id >= 0) {
      out->push_back(id);
      return;
    }
  }
  std::vector<Symbol> symbols;
  for (const CodePoint& cp : DecodeUtf8(word)) {
    Symbol s;
    s.start = cp.offset;
    s.len = cp.length;
    s.id = Find(word.substr(s.start, s.len));
    s.prev = static_cast<int>(symbols.size()) - 1;
    s.next = static_cast<int>(symbols.size()) + 1;
    symbols.push_back(s);
  }
  symbols.back().next = -1;

  std::priority_queue<Candidate, std::vector<Candidate>, LaterCandidate> queue;
  const auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[static_cast<size_t>(left)];
    const Symbol& r = symbols[static_cast<size_t>(right)];
    if (l.id < 0 || r.id < 0) return;
    auto it = merges_.find(PairKey(l.id, r.id));
    if (it == merges_.end()) return;
    queue.push({it->second.rank, left, right, l.id, r.id, it->second.result});
  };
  for (size_t i = 1; i < symbols.size(); ++i) {
    try_add(static_cast<int>(i) - 1, static_cast<int>(i));
  }
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<size_t>(c.left)];
    Symbol& right = symbols[static_cast<size_t>(c.right)];
    // Stale: a side was merged away or changed since the pair was queued.
    if (left.len == 0 || right.len == 0 || left.next != c.right || left.id != c.left_id ||
        right.id != c.right_id) {
      continue;
    }
    left.id = c.result;
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = c.left;
    try_add(left.prev, c.left);
    try_add(c.left, left.next);
  }

  bool last_was_unk = false;
  for (int i = 0; i != -1; i = symbols[static_cast<size_t>(i)].next) {
    const Symbol& s = symbols[static_cast<size_t>(i)];
    if (s.id >= 0) {
      out->push_back(s.id);
      last_was_unk = false;
      continue;
    }
    if (vocab_.mode == BpeMode::kMetaspace && vocab_.byte_fallback) {
      bool all_bytes = true;
      for (char c : word.substr(s.start, s.len)) {
        all_bytes = all_bytes && byte_ids_[static_cast<unsigned char>(c)] >= 0;
      }
      if (all_bytes) {
        for (char c : word.substr(s.start, s.len)) {
          out->push_back(byte_ids_[static_cast<unsigned char>(c)]);
        }
        last_was_unk = false;
        continue;
      }
    }
    if (vocab_.unk_id >= 0 && !(vocab_.fuse_unk && last_was_unk)) {
      out->push_back(vocab_.unk_id);
    }
    last_was_unk = true;
  }
}

std::string BpeTokenizer::Render(int32_t id, bool first, bool skip_special) const {
  if (id < 0 || id >= vocab_size() || id == vocab_.bos_id || id == vocab_.eos_id) return {};
  const std::string& text = vocab_.tokens[static_cast<size_t>(id)];
  switch (TypeOf(id)) {
    case TokenType::kControl:
    case TokenType::kUnknown:
    case TokenType::kUnused:
      return skip_special ? std::string() : text;
    case TokenType::kUserDefined:
      return text;
    case TokenType::kByte:
    case TokenType::kNormal:
      break;
  }
  if (vocab_.mode == BpeMode::kByteLevel) {
    std::string bytes;
    for (const CodePoint& cp : DecodeUtf8(text)) {
      const int b = ByteLevelByte(cp.value);
      if (b < 0) return text;  // not spelled in the byte alphabet: the text as it is
      bytes.push_back(static_cast<char>(b));
    }
    return bytes;
  }
  if (const int b = ParseByteToken(text); b >= 0) return std::string(1, static_cast<char>(b));
  std::string out = SpmUnescape(text);
  if (first && vocab_.prepend != MetaspacePrepend::kNever && !out.empty() && out[0] == ' ') {
    out.erase(0, 1);
  }
  return out;
}

}  // namespace breakfix::engine
