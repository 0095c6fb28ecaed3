// The Engine implementation: one scheduler thread doing continuous batching over a Transformer,
// plus the text assembly every generation goes through (UTF-8 boundaries, stop strings).
//
// LoadEngine (load_engine.cc) builds the parts from files; tests build them from fakes.
#ifndef BREAKFIX_ENGINE_BATCHING_ENGINE_H_
#define BREAKFIX_ENGINE_BATCHING_ENGINE_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "breakfix/engine.h"
#include "engine/transformer.h"

namespace breakfix::engine {

struct EngineParts {
  std::unique_ptr<Transformer> transformer;  // max_slots() is the batch size
  std::unique_ptr<Tokenizer> tokenizer;      // its vocabulary fits the model's
  ChatTemplateKind chat_template = ChatTemplateKind::kChatML;
  std::string bos_text;  // BOS/EOS as the chat template spells them
  std::string eos_text;
  EngineInfo info;  // context_length and vocab_size are filled from the transformer
};

// Starts the scheduler thread. The engine owns the parts.
std::unique_ptr<Engine> NewBatchingEngine(EngineParts parts);

// Turns a generation's token bytes into the text its events carry: only whole UTF-8 characters
// (a byte that can never start or continue one becomes U+FFFD), and nothing that might still be
// the beginning of a stop string. Not thread-safe; one per generation.
class TextAssembler {
 public:
  // `stop` strings must be non-empty.
  explicit TextAssembler(std::vector<std::string> stop);

  // Adds one token's bytes. Returns the text that is now decided and not part of a stop string.
  // After a stop string completes, stopped() is true, the text before it is returned, and
  // everything after it is dropped (further calls return "").
  std::string Add(std::string_view bytes);
  bool stopped() const { return stopped_; }
  // The text still held back (a possible stop-string start, an unfinished character as U+FFFD),
  // for a generation that ends for another reason.
  std::string Flush();

 private:
  std::vector<std::string> stop_;
  std::string partial_;  // bytes of an unfinished UTF-8 character
  std::string held_;     // whole characters that may begin a stop string
  bool stopped_ = false;
};

}  // namespace breakfix::engine

#endif  // BREAKFIX_ENGINE_BATCHING_ENGINE_H_
