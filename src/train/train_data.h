// Training data as token sequences: a model's tokenizer and chat template (loaded the way
// LoadEngine loads them), conversations rendered and encoded with a per-token target mask, left
// truncation that never cuts a reply, and the seeded data order. No libtorch here.
#ifndef BREAKFIX_TRAIN_TRAIN_DATA_H_
#define BREAKFIX_TRAIN_TRAIN_DATA_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "breakfix/engine.h"
#include "breakfix/preference.h"
#include "breakfix/status.h"
#include "breakfix/train.h"

namespace breakfix::train {

// A model's tokenizer with the chat template the engine would use for it.
struct ChatCodec {
  std::unique_ptr<Tokenizer> tokenizer;
  ChatTemplateKind chat_template = ChatTemplateKind::kChatML;
  std::string bos_text, eos_text;
  int model_vocab = 0;  // rows of the model's embedding: every token id must be below it
};

// Loads the tokenizer of `model_path` (a Hugging Face directory or a GGUF file) and picks the
// template: `forced_template` when non-empty, else the one recognised from the model's own, else
// the family default (phi3 -> phi3, mistral -> mistral, chatml otherwise), as LoadEngine does.
// A tokenizer with more tokens than `model_vocab` is an error (mismatched tokenizer).
Result<ChatCodec> LoadChatCodec(const std::string& model_path, const std::string& forced_template,
                                const std::string& architecture, int model_vocab);

// A tokenized conversation. target[t] = 1 when token t is trained on, i.e. predicted from
// tokens[0..t). Targets are the tokens of assistant turns as the template renders them, up to
// and including the end-of-turn token (the first stop token of the turn).
struct TokenSequence {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> target;
  int dropped = 0;  // prompt tokens removed from the left by max_seq_len
  int target_count() const;
};

enum class TargetTurns {
  kAll,   // every assistant turn (SFT)
  kLast,  // only the final assistant turn (the reply of a preference pair)
};

// Renders and encodes `messages` as the engine does (template text, parse_special, no added
// BOS), marks the assistant tokens and truncates to `max_seq_len` from the left, keeping a
// leading BOS. `where` names the example in errors ("data example 3 (id \"x\")").
Result<TokenSequence> EncodeConversation(const ChatCodec& codec,
                                         const std::vector<Message>& messages, TargetTurns turns,
                                         int max_seq_len, const std::string& where);

// A preference pair as two sequences sharing the prompt.
struct PairSequences {
  TokenSequence chosen, rejected;
};

// "data example 3 (id \"abc\")" for errors.
std::string ExampleName(const char* kind, size_t index, const std::string& id);

// Checks and encodes every SFT example (an example needs at least one assistant turn with
// content) or preference pair (a prompt ending with a user turn, non-empty chosen and
// rejected replies). Empty data is an error.
Result<std::vector<TokenSequence>> EncodeSftData(const ChatCodec& codec,
                                                 const std::vector<ChatExample>& examples,
                                                 int max_seq_len);
Result<std::vector<PairSequences>> EncodePairData(const ChatCodec& codec,
                                                  const std::vector<PreferencePair>& pairs,
                                                  int max_seq_len);
// One reply after a prompt, as a pair's chosen or rejected side is encoded.
Result<TokenSequence> EncodeReply(const ChatCodec& codec, const std::vector<Message>& prompt,
                                  const std::string& reply, int max_seq_len,
                                  const std::string& where);

// SHA-256 hex over the sequences' tokens and targets: identifies the data for resume checks.
std::string FingerprintSequences(const std::vector<const TokenSequence*>& sequences);

// The order in which epoch `epoch` visits `n` examples: a Fisher-Yates shuffle seeded by
// (seed, epoch), identical on every platform.
std::vector<int64_t> EpochOrder(int64_t n, uint64_t seed, int64_t epoch);

// EpochOrder, then grouped by length so that a batch holds sequences of similar length and
// pads little: the shuffled order is cut into windows of 64 batches, each window is sorted by
// length (longest first, ties by position), cut into batches of `batch_size`, and the full
// batches are shuffled (seeded by seed and epoch); a last partial batch stays last.
// `lengths[i]` is sequence i's padded length.
std::vector<int64_t> GroupedEpochOrder(const std::vector<int64_t>& lengths, int batch_size,
                                       uint64_t seed, int64_t epoch);

}  // namespace breakfix::train

#endif  // BREAKFIX_TRAIN_TRAIN_DATA_H_
