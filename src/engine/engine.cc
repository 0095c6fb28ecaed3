// The continuous-batching Engine.
//
// One scheduler thread owns every running sequence. Each step it (1) drops cancelled requests,
// (2) moves queued requests into free cache slots, (3) builds one Forward call: a piece of the
// prompt for each sequence still reading its prompt (at most kPrefillBudget prompt tokens per
// step, so long prompts do not stall everyone else) and the last sampled token of every
// sequence that is generating, (4) samples from the logits and streams events. Submit and Cancel
// only touch the queue under the mutex; callbacks run on the scheduler thread without any lock
// held, so they may call Submit or Cancel.
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "engine/batching_engine.h"
#include "engine/sampler.h"

namespace breakfix::engine {
namespace {

constexpr int kPrefillBudget = 512;                    // prompt tokens per step, over all sequences
constexpr const char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

// Length of the UTF-8 sequence that `lead` starts, or 0 when it cannot start one.
int SequenceLength(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// Whether `c` may follow `lead` as the second byte (excludes overlongs, surrogates, > U+10FFFF).
bool ValidSecond(uint8_t lead, uint8_t c) {
  if (c < 0x80 || c > 0xBF) return false;
  if (lead == 0xE0) return c >= 0xA0;
  if (lead == 0xED) return c <= 0x9F;
  if (lead == 0xF0) return c >= 0x90;
  if (lead == 0xF4) return c <= 0x8F;
  return true;
}

// Appends the whole characters at the front of *bytes to *out, each invalid stretch as one
// U+FFFD, and leaves in *bytes only the beginning of an unfinished character.
void TakeWholeCharacters(std::string* bytes, std::string* out) {
  const size_t n = bytes->size();
  size_t i = 0;
  while (i < n) {
    const auto lead = static_cast<uint8_t>((*bytes)[i]);
    const int len = SequenceLength(lead);
    if (len == 0) {
      out->append(kReplacement);
      ++i;
      continue;
    }
    size_t j = 1;
    bool bad = false;
    for (; j < static_cast<size_t>(len) && i + j < n; ++j) {
      const auto c = static_cast<uint8_t>((*bytes)[i + j]);
      if (j == 1 ? !ValidSecond(lead, c) : (c < 0x80 || c > 0xBF)) {
        bad = true;
        break;
      }
    }
    if (bad) {
      out->append(kReplacement);  // the byte that broke the sequence is examined again
      i += j;
      continue;
    }
    if (j < static_cast<size_t>(len)) break;  // unfinished: wait for its remaining bytes
    out->append(*bytes, i, len);
    i += len;
  }
  bytes->erase(0, i);
}

}  // namespace

TextAssembler::TextAssembler(std::vector<std::string> stop) : stop_(std::move(stop)) {
  std::erase_if(stop_, [](const std::string& s) { return s.empty(); });
}

std::string TextAssembler::Add(std::string_view bytes) {
  if (stopped_) return "";
  partial_.append(bytes);
  TakeWholeCharacters(&partial_, &held_);
  if (stop_.empty()) return std::exchange(held_, std::string());

  // Text already released never ends with the start of a stop string (that part stays held), so
  // a stop string can only begin inside held_.
  size_t first = std::string::npos;
  for (const std::string& s : stop_) first = std::min(first, held_.find(s));
  if (first != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, first);
    held_.clear();
    partial_.clear();
    return out;
  }
  // Keep the longest tail of held_ that a stop string starts with.
  size_t keep = 0;
  for (const std::string& s : stop_) {
    for (size_t k = std::min(s.size() - 1, held_.size()); k > keep; --k) {
      if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
        keep = k;
        break;
      }
    }
  }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string TextAssembler::Flush() {
  std::string out = std::exchange(held_, std::string());
  if (!partial_.empty()) out += kReplacement;
  partial_.clear();
  return out;
}

namespace {

struct Sequence {
  uint64_t id = 0;
  std::vector<int32_t> prompt;
  GenerationParams params;
  GenerationCallback on_event;
  Sampler sampler;
  TextAssembler text;

  int slot = -1;
  int cached = 0;                       // tokens in the KV cache
  int completion_tokens = 0;            // sampled so far, stop token included
  int32_t last_token = -1;              // sampled, not yet in the cache
  bool first_text = true;               // the next token starts the sequence's text
  std::vector<int32_t> pending_tokens;  // behind text not yet sent
  std::vector<float> pending_logprobs;

  Sequence(uint64_t id_in, std::vector<int32_t> prompt_in, GenerationParams params_in,
           GenerationCallback cb, uint64_t seed)
      : id(id_in),
        prompt(std::move(prompt_in)),
        params(std::move(params_in)),
        on_event(std::move(cb)),
        sampler(params, seed),
        text(params.stop) {}
};

class BatchingEngine final : public Engine {
 public:
  explicit BatchingEngine(EngineParts parts);
  ~BatchingEngine() override;

  const EngineInfo& info() const override { return info_; }
  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  std::vector<int32_t> EncodeChat(const std::vector<Message>& messages) const override;
  uint64_t Submit(std::vector<int32_t> prompt, GenerationParams params,
                  GenerationCallback on_event) override;
  void Cancel(uint64_t id) override;
  void Shutdown(bool finish_in_flight) override;

 private:
  void Loop();
  // One scheduling step over the running sequences (the scheduler thread only).
  void Step();
  // Handles one sampled token; returns whether the sequence has finished.
  bool Accept(Sequence& seq, const SampledToken& token);
  // Sends the final event with `text` (the generation's last words) and the tokens not yet
  // reported.
  void Finish(Sequence& seq, const std::string& reason, std::string text,
              const std::string& error = "");
  void Deliver(Sequence& seq, GenerationEvent event);
  static void Reject(const GenerationCallback& cb, int prompt_tokens, const std::string& error);

  std::unique_ptr<Transformer> transformer_;
  std::unique_ptr<Tokenizer> tokenizer_;
  ChatTemplateKind chat_template_;
  std::string bos_text_, eos_text_;
  EngineInfo info_;
  std::vector<char> stop_token_;  // per token id: ends a generation

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Sequence>> queue_;  // guarded by mu_
  std::set<uint64_t> cancels_;                   // guarded by mu_
  uint64_t next_id_ = 1;                         // guarded by mu_
  bool accepting_ = true;                        // guarded by mu_
  bool abort_ = false;                           // guarded by mu_: cancel everything and stop

  // Scheduler thread only.
  std::vector<std::unique_ptr<Sequence>> slots_;

  std::mutex join_mu_;
  std::thread thread_;
  std::thread::id scheduler_id_;  // set once at construction; read without the lock
};

BatchingEngine::BatchingEngine(EngineParts parts)
    : transformer_(std::move(parts.transformer)),
      tokenizer_(std::move(parts.tokenizer)),
      chat_template_(parts.chat_template),
      bos_text_(std::move(parts.bos_text)),
      eos_text_(std::move(parts.eos_text)),
      info_(std::move(parts.info)) {
  info_.context_length = transformer_->context_length();
  info_.vocab_size = transformer_->config().vocab_size;
  if (info_.parameters == 0) info_.parameters = transformer_->parameter_count();
  info_.chat_template = chat_template_;
  stop_token_.assign(info_.vocab_size, 0);
  for (int32_t id : tokenizer_->stop_ids()) {
    if (id >= 0 && id < info_.vocab_size) stop_token_[id] = 1;
  }
  if (tokenizer_->eos_id() >= 0 && tokenizer_->eos_id() < info_.vocab_size) {
    stop_token_[tokenizer_->eos_id()] = 1;
  }
  slots_.resize(transformer_->max_slots());
  thread_ = std::thread([this] { Loop(); });
  scheduler_id_ = thread_.get_id();
}

BatchingEngine::~BatchingEngine() { Shutdown(/*finish_in_flight=*/false); }

std::vector<int32_t> BatchingEngine::EncodeChat(const std::vector<Message>& messages) const {
  const std::string text = RenderChat(chat_template_, messages, bos_text_, eos_text_,
                                      /*add_generation_prompt=*/true);
  return tokenizer_->Encode(text, /*add_bos=*/false, /*parse_special=*/true);
}

void BatchingEngine::Reject(const GenerationCallback& cb, int prompt_tokens,
                            const std::string& error) {
  GenerationEvent event;
  event.done = true;
  event.finish_reason = "error";
  event.error = error;
  event.prompt_tokens = prompt_tokens;
  try {
    if (cb) cb(event);
  } catch (...) {
    // A callback must not throw; the engine stays usable if one does.
  }
}

uint64_t BatchingEngine::Submit(std::vector<int32_t> prompt, GenerationParams params,
                                GenerationCallback on_event) {
  const int n = static_cast<int>(prompt.size());
  const int context = info_.context_length;
  std::string error;
  if (Status s = ValidateGenerationParams(params); !s.ok()) {
    error = s.message();
  } else if (prompt.empty()) {
    error = "the prompt is empty: at least one token is needed";
  } else if (n + 1 > context) {
    error = "the prompt has " + std::to_string(n) + " tokens; with room for one new token it " +
            "does not fit the context of " + std::to_string(context) + " tokens";
  } else {
    for (int i = 0; i < n; ++i) {
      if (prompt[i] < 0 || prompt[i] >= info_.vocab_size) {
        error = "prompt token " + std::to_string(prompt[i]) + " at index " + std::to_string(i) +
                " is outside the vocabulary [0, " + std::to_string(info_.vocab_size) + ")";
        break;
      }
    }
  }
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_id_++;
    if (error.empty() && !accepting_) error = "the engine is shutting down";
    if (error.empty()) {
      const uint64_t seed = params.seed.value_or(id);
      auto seq = std::make_unique<Sequence>(id, std::move(prompt), std::move(params),
                                            std::move(on_event), seed);
      seq->sampler.Observe(seq->prompt);
      for (int32_t t : seq->prompt) {
        // The first token with text drops SentencePiece's leading space; BOS and other special
        // tokens before it carry no text.
        if (t != tokenizer_->bos_id() && !tokenizer_->IsSpecial(t)) seq->first_text = false;
      }
      queue_.push_back(std::move(seq));
    }
  }
  if (!error.empty()) {
    Reject(on_event, n, error);
    return id;
  }
  cv_.notify_all();
  return id;
}

void BatchingEngine::Cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_.insert(id);
  }
  cv_.notify_all();
}

void BatchingEngine::Shutdown(bool finish_in_flight) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    accepting_ = false;
    if (!finish_in_flight) abort_ = true;
  }
  cv_.notify_all();
  // From a callback (the scheduler thread itself) the loop exits after the current step; it
  // cannot wait for itself.
  if (std::this_thread::get_id() == scheduler_id_) return;
  std::lock_guard<std::mutex> lock(join_mu_);
  if (thread_.joinable()) thread_.join();
}

void BatchingEngine::Deliver(Sequence& seq, GenerationEvent event) {
  try {
    if (seq.on_event) seq.on_event(event);
  } catch (...) {
    // A callback must not throw; the engine stays usable if one does.
  }
}

void BatchingEngine::Finish(Sequence& seq, const std::string& reason, std::string text,
                            const std::string& error) {
  GenerationEvent event;
  event.text = std::move(text);
  event.tokens = std::move(seq.pending_tokens);
  event.logprobs = std::move(seq.pending_logprobs);
  event.done = true;
  event.finish_reason = reason;
  event.error = error;
  event.prompt_tokens = static_cast<int>(seq.prompt.size());
  event.completion_tokens = seq.completion_tokens;
  Deliver(seq, std::move(event));
}

bool BatchingEngine::Accept(Sequence& seq, const SampledToken& token) {
  ++seq.completion_tokens;
  seq.last_token = token.id;
  if (token.id >= 0 && token.id < info_.vocab_size && stop_token_[token.id]) {
    Finish(seq, "stop", seq.text.Flush());  // what was held back was no stop string after all
    return true;
  }
  seq.pending_tokens.push_back(token.id);
  if (seq.params.logprobs) seq.pending_logprobs.push_back(token.logprob);
  const std::string text = seq.text.Add(tokenizer_->TokenBytes(token.id, seq.first_text));
  seq.first_text = false;
  if (seq.text.stopped()) {
    Finish(seq, "stop", text);
    return true;
  }
  // Out of budget, or no room in the context to feed this token back.
  const bool length =
      seq.completion_tokens >= seq.params.max_tokens ||
      static_cast<int>(seq.prompt.size()) + seq.completion_tokens >= info_.context_length;
  if (length) {
    Finish(seq, "length", text + seq.text.Flush());
    return true;
  }
  if (!text.empty()) {
    GenerationEvent event;
    event.text = text;
    event.tokens = std::move(seq.pending_tokens);
    event.logprobs = std::move(seq.pending_logprobs);
    seq.pending_tokens.clear();
    seq.pending_logprobs.clear();
    Deliver(seq, std::move(event));
  }
  return false;
}

void BatchingEngine::Loop() {
  while (true) {
    std::vector<std::unique_ptr<Sequence>> cancelled;
    bool exit = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      const auto running = [this] {
        return std::any_of(slots_.begin(), slots_.end(), [](const auto& s) { return !!s; });
      };
      cv_.wait(lock, [&] {
        return abort_ || !accepting_ || !queue_.empty() || !cancels_.empty() || running();
      });
      if (abort_) {
        for (auto& seq : queue_) cancelled.push_back(std::move(seq));
        queue_.clear();
        for (auto& seq : slots_) {
          if (seq) cancelled.push_back(std::move(seq));
        }
        exit = true;
      } else {
        if (!cancels_.empty()) {
          for (auto it = queue_.begin(); it != queue_.end();) {
            if (cancels_.count((*it)->id)) {
              cancelled.push_back(std::move(*it));
              it = queue_.erase(it);
            } else {
              ++it;
            }
          }
          for (auto& seq : slots_) {
            if (seq && cancels_.count(seq->id)) cancelled.push_back(std::move(seq));
          }
          cancels_.clear();
        }
        // Admit queued requests into free slots, lowest slot first.
        for (size_t s = 0; s < slots_.size() && !queue_.empty(); ++s) {
          if (slots_[s]) continue;
          slots_[s] = std::move(queue_.front());
          queue_.pop_front();
          slots_[s]->slot = static_cast<int>(s);
        }
        exit = !accepting_ && queue_.empty() && !running();
      }
    }
    for (auto& seq : cancelled) Finish(*seq, "cancelled", seq->text.Flush());
    if (exit) return;
    Step();
  }
}

void BatchingEngine::Step() {
  std::vector<SequenceChunk> chunks;
  std::vector<Sequence*> owners;  // per chunk
  std::vector<bool> sample;       // per chunk: its logits pick the next token
  int budget = kPrefillBudget;
  for (auto& seq : slots_) {
    if (!seq) continue;
    const int prompt_len = static_cast<int>(seq->prompt.size());
    SequenceChunk chunk;
    chunk.slot = seq->slot;
    chunk.start_pos = seq->cached;
    if (seq->cached < prompt_len) {
      if (budget <= 0) continue;
      const int n = std::min(budget, prompt_len - seq->cached);
      budget -= n;
      chunk.tokens.assign(seq->prompt.begin() + seq->cached, seq->prompt.begin() + seq->cached + n);
      sample.push_back(seq->cached + n == prompt_len);
    } else {
      chunk.tokens = {seq->last_token};
      sample.push_back(true);
    }
    chunks.push_back(std::move(chunk));
    owners.push_back(seq.get());
  }
  if (chunks.empty()) return;

  std::vector<std::vector<float>> logits;
  const Status status = transformer_->Forward(chunks, &logits);
  for (size_t i = 0; i < chunks.size(); ++i) {
    Sequence& seq = *owners[i];
    bool finished = false;
    if (!status.ok()) {
      Finish(seq, "error", "", status.message());
      finished = true;
    } else {
      seq.cached += static_cast<int>(chunks[i].tokens.size());
      if (sample[i]) finished = Accept(seq, seq.sampler.Sample(logits[i]));
    }
    if (finished) slots_[seq.slot].reset();
  }
}

}  // namespace

std::unique_ptr<Engine> NewBatchingEngine(EngineParts parts) {
  return std::make_unique<BatchingEngine>(std::move(parts));
}

}  // namespace breakfix::engine
