// The in-process model engine: load a GGUF file or a Hugging Face directory, tokenize, render
// chat templates, and generate with continuous batching, all inside the breakfix process.
//
// Start here for local models. `LoadEngine("path/to/model.gguf")` gives an Engine; wrap it in a
// ChatModel with NewLocalChatModel() and every role (target, simulator, judge) runs offline
// (`--target local:PATH` on the command line). `breakfix serve` puts an Engine behind an
// OpenAI-compatible HTTP server.
//
// No libtorch type appears in this header; only src/engine/ and src/train/ include torch.
#ifndef BREAKFIX_ENGINE_H_
#define BREAKFIX_ENGINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "breakfix/chat_model.h"
#include "breakfix/status.h"

namespace breakfix {

// ---------------------------------------------------------------------------------------------
// Tokenizers

// Thread-safe after construction (all methods const).
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  virtual int32_t vocab_size() const = 0;
  // Token ids of `text`. `add_bos` prepends BOS when the vocabulary has one and the model wants
  // it. `parse_special` turns the textual form of special/control tokens ("<|user|>", "<s>")
  // into their ids instead of tokenizing their characters (needed for rendered chat prompts).
  virtual std::vector<int32_t> Encode(std::string_view text, bool add_bos,
                                      bool parse_special) const = 0;
  // Text of a whole sequence (the leading space SentencePiece adds is removed; special tokens
  // other than BOS/EOS are rendered as their text unless `skip_special`).
  virtual std::string Decode(std::span<const int32_t> ids, bool skip_special) const = 0;
  // The bytes one token contributes when appended to a sequence (byte-fallback tokens give their
  // raw byte, so a UTF-8 character may span several tokens). `first` = it is the sequence's first
  // token (SentencePiece drops that token's leading space).
  virtual std::string TokenBytes(int32_t id, bool first) const = 0;
  // The vocabulary entry as stored ("▁the", "<0x0A>", "Ġthe"); empty for an invalid id.
  virtual std::string Piece(int32_t id) const = 0;

  virtual int32_t bos_id() const = 0;  // -1 when none
  virtual int32_t eos_id() const = 0;  // -1 when none
  // Tokens that end a generation: EOS plus end-of-turn tokens such as <|end|>, <|eot_id|>,
  // <|im_end|>.
  virtual const std::vector<int32_t>& stop_ids() const = 0;
  virtual bool IsSpecial(int32_t id) const = 0;
  // Whether the model's configuration asks for BOS at the start of a prompt.
  virtual bool add_bos_default() const = 0;
  // "spm" (SentencePiece-style, from GGUF scores), "sentencepiece" (a tokenizer.model read by
  // breakfix's own ModelProto reader: Debian's libsentencepiece bundles a protobuf that cannot
  // share a process with libtorch's), "bpe" (byte-level BPE from tokenizer.json or GGUF "gpt2").
  virtual const std::string& kind() const = 0;
};

// ---------------------------------------------------------------------------------------------
// Chat templates: built-in renderers, chosen by recognising the model's own template string.

enum class ChatTemplateKind { kPhi3, kLlama2, kLlama3, kChatML, kMistral, kZephyr };

const char* ChatTemplateName(ChatTemplateKind kind);  // "phi3", "llama2", "llama3", "chatml", ...
// By name; the error lists the choices.
Result<ChatTemplateKind> ParseChatTemplateName(const std::string& name);
// Recognises a Jinja chat template string (GGUF tokenizer.chat_template or
// tokenizer_config.json's chat_template). An unknown template is an error that lists the
// built-in choices and says how to override (--chat-template NAME).
Result<ChatTemplateKind> DetectChatTemplate(const std::string& template_text);

// Renders messages as the model expects, ending with the assistant prefix when
// `add_generation_prompt`. `bos`/`eos` are the tokenizer's BOS/EOS texts (templates that spell
// them out include them; the caller encodes with parse_special = true and add_bos = false).
std::string RenderChat(ChatTemplateKind kind, const std::vector<Message>& messages,
                       const std::string& bos, const std::string& eos, bool add_generation_prompt);

// ---------------------------------------------------------------------------------------------
// Generation

struct GenerationParams {
  int max_tokens = 256;             // completion tokens at most
  double temperature = 0.0;         // 0 = greedy
  int top_k = 0;                    // 0 = off
  double top_p = 1.0;               // 1 = off
  double min_p = 0.0;               // 0 = off; keep tokens with p >= min_p * p_max
  double repetition_penalty = 1.0;  // 1 = off; >1 discourages tokens already in the sequence
  std::optional<uint64_t> seed;     // same seed, same output; unset = from the request counter
  std::vector<std::string> stop;    // stop strings (not included in the output)
  bool logprobs = false;            // report the log-probability of each chosen token
};

// What a generation reports as it goes. Delivered in order, on the engine's thread; the last
// event has done = true.
struct GenerationEvent {
  std::string text;             // new text since the previous event (complete UTF-8 only)
  std::vector<int32_t> tokens;  // tokens behind `text`
  std::vector<float> logprobs;  // per token in `tokens`, when requested
  bool done = false;
  std::string finish_reason;  // with done: "stop" (EOS/stop string), "length", "cancelled",
                              // or "error"
  std::string error;          // with finish_reason "error"
  int prompt_tokens = 0;      // with done
  int completion_tokens = 0;  // with done
};
using GenerationCallback = std::function<void(const GenerationEvent&)>;

struct EngineOptions {
  std::string chat_template;   // "" = detect from the model; otherwise a built-in name
  int max_batch = 32;          // sequences decoded together in one forward pass
  int context_length = 0;      // 0 = the model's own, capped at 4096
  int threads = 1;             // intra-op threads for the tensor library
  std::string device = "cpu";  // "cpu", or "cuda" / "cuda:N" with a CUDA-enabled libtorch
};

struct EngineInfo {
  std::string model_id;       // file or directory name
  std::string architecture;   // "llama", "mistral", "qwen2", "phi3"
  std::string source_format;  // "gguf" or "hf"
  int64_t parameters = 0;
  int context_length = 0;
  int vocab_size = 0;
  ChatTemplateKind chat_template = ChatTemplateKind::kChatML;
  std::string content_hash;  // SHA-256 of the weight files (first 16 hex)
  std::string description;   // one line for logs and /v1/models
};

// A loaded model with its scheduler. Thread-safe: Submit/Cancel may be called from any thread.
// A background thread runs continuous batching: new requests join the running batch at the next
// step. Destroying the engine cancels what is still running (their callbacks get a final event
// with finish_reason "cancelled") and joins the thread.
class Engine {
 public:
  virtual ~Engine() = default;
  virtual const EngineInfo& info() const = 0;
  virtual const Tokenizer& tokenizer() const = 0;

  // Renders `messages` with the model's chat template and encodes them.
  virtual std::vector<int32_t> EncodeChat(const std::vector<Message>& messages) const = 0;

  // Starts generating after `prompt`. Returns an id for Cancel(). A prompt longer than the
  // context (prompt + 1 > context_length) is rejected at once with a final error event.
  virtual uint64_t Submit(std::vector<int32_t> prompt, GenerationParams params,
                          GenerationCallback on_event) = 0;
  virtual void Cancel(uint64_t id) = 0;

  // Stops accepting work; lets running generations finish when `finish_in_flight`, otherwise
  // cancels them; returns when all callbacks are done.
  virtual void Shutdown(bool finish_in_flight) = 0;
};

// Loads a GGUF file or a Hugging Face model directory. Errors say what is wrong and where
// (file, tensor name, offset, type).
Result<std::unique_ptr<Engine>> LoadEngine(const std::string& path, const EngineOptions& options);

// A ChatModel on an engine (shared: several models/roles may use one engine). Identity() names
// the model file and its content hash, so stored units stay keyed to the weights.
std::unique_ptr<ChatModel> NewLocalChatModel(std::shared_ptr<Engine> engine, std::string name);

}  // namespace breakfix

#endif  // BREAKFIX_ENGINE_H_
