#include "train/train_data.h"

#include <algorithm>
#include <filesystem>
#include <string>
#include <utility>

#include "breakfix/env.h"
#include "breakfix/hash.h"
#include "engine/gguf.h"
#include "engine/tokenizer_loader.h"

namespace breakfix::train {
namespace {

// The template assumed for a model that ships none (LoadEngine's rule).
ChatTemplateKind FamilyTemplate(const std::string& architecture) {
  if (architecture == "phi3") return ChatTemplateKind::kPhi3;
  if (architecture == "mistral") return ChatTemplateKind::kMistral;
  return ChatTemplateKind::kChatML;
}

size_t CommonPrefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

std::vector<int32_t> EncodeRendered(const ChatCodec& codec, const std::vector<Message>& messages,
                                    bool add_generation_prompt) {
  const std::string text = RenderChat(codec.chat_template, messages, codec.bos_text, codec.eos_text,
                                      add_generation_prompt);
  return codec.tokenizer->Encode(text, /*add_bos=*/false, /*parse_special=*/true);
}

bool IsStop(const Tokenizer& tokenizer, int32_t id) {
  const std::vector<int32_t>& stops = tokenizer.stop_ids();
  return std::find(stops.begin(), stops.end(), id) != stops.end() || id == tokenizer.eos_id();
}

}  // namespace

int TokenSequence::target_count() const {
  int n = 0;
  for (uint8_t t : target) n += t;
  return n;
}

Result<ChatCodec> LoadChatCodec(const std::string& model_path, const std::string& forced_template,
                                const std::string& architecture, int model_vocab) {
  engine::LoadedTokenizer loaded;
  std::error_code ec;
  if (std::filesystem::is_directory(model_path, ec)) {
    auto tok = engine::TokenizerFromHfDir(model_path);
    if (!tok.ok()) return tok.status().WithContext(model_path);
    loaded = std::move(tok).value();
  } else {
    BF_ASSIGN_OR_RETURN(auto gguf, engine::GgufFile::Open(model_path));
    auto tok = engine::TokenizerFromGguf(*gguf);
    if (!tok.ok()) return tok.status().WithContext(model_path);
    loaded = std::move(tok).value();
  }
  if (!loaded.tokenizer)
    return Status::Internal(model_path + ": the tokenizer loader returned none");
  if (loaded.tokenizer->vocab_size() > model_vocab) {
    return Status::InvalidArgument(
        model_path + ": mismatched tokenizer: it has " +
        std::to_string(loaded.tokenizer->vocab_size()) + " tokens but the model's embedding has " +
        std::to_string(model_vocab) + " rows (is the tokenizer from another model?)");
  }
  ChatCodec codec;
  codec.model_vocab = model_vocab;
  if (!forced_template.empty()) {
    auto kind = ParseChatTemplateName(forced_template);
    if (!kind.ok()) return kind.status().WithContext("chat_template");
    codec.chat_template = *kind;
  } else if (!loaded.chat_template.empty()) {
    auto kind = DetectChatTemplate(loaded.chat_template);
    if (!kind.ok()) return kind.status().WithContext(model_path);
    codec.chat_template = *kind;
  } else {
    codec.chat_template = FamilyTemplate(architecture);
  }
  codec.tokenizer = std::move(loaded.tokenizer);
  codec.bos_text = std::move(loaded.bos_text);
  codec.eos_text = std::move(loaded.eos_text);
  return codec;
}

Result<TokenSequence> EncodeConversation(const ChatCodec& codec,
                                         const std::vector<Message>& messages, TargetTurns turns,
                                         int max_seq_len, const std::string& where) {
  if (max_seq_len < 2) {
    return Status::InvalidArgument("max_seq_len must be at least 2, got " +
                                   std::to_string(max_seq_len));
  }
  TokenSequence seq;
  seq.tokens = EncodeRendered(codec, messages, /*add_generation_prompt=*/false);
  seq.target.assign(seq.tokens.size(), 0);
  for (size_t t = 0; t < seq.tokens.size(); ++t) {
    if (seq.tokens[t] < 0 || seq.tokens[t] >= codec.model_vocab) {
      return Status::InvalidArgument(where + ": token " + std::to_string(seq.tokens[t]) +
                                     " is outside the model's vocabulary of " +
                                     std::to_string(codec.model_vocab));
    }
  }

  // Each assistant turn spans from where the conversation before it, rendered with the
  // generation prompt, stops matching the whole rendering, to its first stop token (or to where
  // the conversation up to it stops matching). Comparing token prefixes rather than encoding
  // pieces separately keeps every token exactly as the whole rendering has it.
  int last_start = -1;
  const size_t first_turn = turns == TargetTurns::kLast ? messages.size() - 1 : 0;
  for (size_t i = first_turn; i < messages.size(); ++i) {
    if (messages[i].role != Role::kAssistant) continue;
    const std::vector<Message> before(messages.begin(), messages.begin() + i);
    const std::vector<Message> upto(messages.begin(), messages.begin() + i + 1);
    const size_t start = CommonPrefix(EncodeRendered(codec, before, true), seq.tokens);
    size_t end = CommonPrefix(EncodeRendered(codec, upto, false), seq.tokens);
    for (size_t t = start; t < end; ++t) {
      if (IsStop(*codec.tokenizer, seq.tokens[t])) {
        end = t + 1;
        break;
      }
    }
    // The first token of a sequence has nothing to be predicted from.
    for (size_t t = std::max<size_t>(start, 1); t < end; ++t) seq.target[t] = 1;
    if (end > start) last_start = static_cast<int>(std::max<size_t>(start, 1));
  }
  if (last_start < 0) {
    return Status::InvalidArgument(where +
                                   ": no assistant tokens to train on (the template "
                                   "rendered no assistant turn)");
  }

  const int n = static_cast<int>(seq.tokens.size());
  if (n > max_seq_len) {
    const int keep_bos =
        codec.tokenizer->bos_id() >= 0 && seq.tokens[0] == codec.tokenizer->bos_id() ? 1 : 0;
    const int drop = n - max_seq_len;
    // The last reply and the token before it (which predicts its first token) must stay.
    if (last_start - 1 < drop + keep_bos) {
      const int reply = n - last_start;
      return Status::InvalidArgument(where + ": the reply is " + std::to_string(reply) +
                                     " tokens, which with its prompt's last token does not fit "
                                     "max_seq_len " +
                                     std::to_string(max_seq_len) +
                                     " (replies are never truncated; raise max_seq_len)");
    }
    // Keep [0, keep_bos) and [keep_bos + drop, n), in place.
    seq.tokens.erase(seq.tokens.begin() + keep_bos, seq.tokens.begin() + keep_bos + drop);
    seq.target.erase(seq.target.begin() + keep_bos, seq.target.begin() + keep_bos + drop);
    seq.dropped = drop;
    // The first kept token lost its real predecessor; it is context only.
    seq.target[keep_bos] = 0;
  }
  if (seq.target_count() == 0) {
    return Status::InvalidArgument(where + ": no assistant tokens remain to train on");
  }
  return seq;
}

std::string ExampleName(const char* kind, size_t index, const std::string& id) {
  std::string name = std::string(kind) + " " + std::to_string(index + 1);
  if (!id.empty()) name += " (id \"" + id + "\")";
  return name;
}

Result<std::vector<TokenSequence>> EncodeSftData(const ChatCodec& codec,
                                                 const std::vector<ChatExample>& examples,
                                                 int max_seq_len) {
  if (examples.empty()) {
    return Status::InvalidArgument("the training data is empty: SFT needs at least one example");
  }
  std::vector<TokenSequence> out;
  out.reserve(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    const std::string where = ExampleName("example", i, examples[i].id);
    bool has_reply = false;
    for (const Message& m : examples[i].messages) {
      has_reply = has_reply || (m.role == Role::kAssistant && !m.content.empty());
    }
    if (!has_reply) {
      return Status::InvalidArgument(where +
                                     ": no assistant message with content (SFT trains on the "
                                     "assistant turns; the example has none)");
    }
    BF_ASSIGN_OR_RETURN(
        TokenSequence seq,
        EncodeConversation(codec, examples[i].messages, TargetTurns::kAll, max_seq_len, where));
    out.push_back(std::move(seq));
  }
  return out;
}

Result<TokenSequence> EncodeReply(const ChatCodec& codec, const std::vector<Message>& prompt,
                                  const std::string& reply, int max_seq_len,
                                  const std::string& where) {
  if (prompt.empty()) return Status::InvalidArgument(where + ": the prompt has no messages");
  if (prompt.back().role != Role::kUser) {
    return Status::InvalidArgument(where + ": the prompt ends with a " +
                                   RoleName(prompt.back().role) +
                                   " message, expected it to end with a user message");
  }
  if (reply.empty()) return Status::InvalidArgument(where + ": the reply is empty");
  std::vector<Message> messages = prompt;
  messages.push_back(Message{Role::kAssistant, reply});
  return EncodeConversation(codec, messages, TargetTurns::kLast, max_seq_len, where);
}

Result<std::vector<PairSequences>> EncodePairData(const ChatCodec& codec,
                                                  const std::vector<PreferencePair>& pairs,
                                                  int max_seq_len) {
  if (pairs.empty()) {
    return Status::InvalidArgument(
        "the training data is empty: DPO/IPO needs at least one preference pair");
  }
  std::vector<PairSequences> out;
  out.reserve(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    const PreferencePair& p = pairs[i];
    const std::string where = ExampleName("pair", i, p.id);
    if (p.chosen.empty() || p.rejected.empty()) {
      return Status::InvalidArgument(where + ": the " +
                                     std::string(p.chosen.empty() ? "chosen" : "rejected") +
                                     " reply is empty; a pair needs two replies");
    }
    PairSequences s;
    BF_ASSIGN_OR_RETURN(s.chosen,
                        EncodeReply(codec, p.prompt, p.chosen, max_seq_len, where + " chosen"));
    BF_ASSIGN_OR_RETURN(s.rejected,
                        EncodeReply(codec, p.prompt, p.rejected, max_seq_len, where + " rejected"));
    out.push_back(std::move(s));
  }
  return out;
}

std::string FingerprintSequences(const std::vector<const TokenSequence*>& sequences) {
  Sha256 sha;
  for (const TokenSequence* s : sequences) {
    const std::string n = std::to_string(s->tokens.size()) + ":";
    sha.Update(n);
    sha.Update(std::string_view(reinterpret_cast<const char*>(s->tokens.data()),
                                s->tokens.size() * sizeof(int32_t)));
    sha.Update(std::string_view(reinterpret_cast<const char*>(s->target.data()), s->target.size()));
  }
  return sha.HexDigest();
}

std::vector<int64_t> EpochOrder(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  Random rng = Random(seed).Fork(static_cast<uint64_t>(epoch) + 1);
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(rng.Below(static_cast<uint64_t>(i) + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

std::vector<int64_t> GroupedEpochOrder(const std::vector<int64_t>& lengths, int batch_size,
                                       uint64_t seed, int64_t epoch) {
  const int64_t n = static_cast<int64_t>(lengths.size());
  const int64_t batch = std::max(1, batch_size);
  std::vector<int64_t> order = EpochOrder(n, seed, epoch);
  const int64_t window = batch * 64;
  for (int64_t begin = 0; begin < n; begin += window) {
    const auto first = order.begin() + begin;
    const auto last = order.begin() + std::min(n, begin + window);
    std::stable_sort(first, last, [&](int64_t a, int64_t b) { return lengths[a] > lengths[b]; });
  }
  const int64_t full = n / batch;
  std::vector<int64_t> batches(full);
  for (int64_t i = 0; i < full; ++i) batches[i] = i;
  Random rng = Random(seed).Fork(0x6c656e67746873ULL ^ static_cast<uint64_t>(epoch));
  for (int64_t i = full - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(rng.Below(static_cast<uint64_t>(i) + 1));
    std::swap(batches[i], batches[j]);
  }
  std::vector<int64_t> out;
  out.reserve(n);
  for (int64_t b : batches) {
    out.insert(out.end(), order.begin() + b * batch, order.begin() + (b + 1) * batch);
  }
  out.insert(out.end(), order.begin() + full * batch, order.end());
  return out;
}

}  // namespace breakfix::train
