// Test support: an Engine without a model. Its tokenizer maps each byte to a token (ids 0..255,
// EOS = 256); a generation answers with a scripted text, one byte-token per step, at a chosen
// pace, on its own thread. Used by the server tests so they need neither libtorch nor weights.
#ifndef BREAKFIX_SERVE_FAKE_ENGINE_H_
#define BREAKFIX_SERVE_FAKE_ENGINE_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "breakfix/engine.h"

namespace breakfix::serve {

class ByteTokenizer final : public Tokenizer {
 public:
  int32_t vocab_size() const override { return 257; }
  std::vector<int32_t> Encode(std::string_view text, bool, bool) const override {
    std::vector<int32_t> ids;
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  }
  std::string Decode(std::span<const int32_t> ids, bool) const override {
    std::string s;
    for (int32_t id : ids) {
      if (id < 256) s += static_cast<char>(id);
    }
    return s;
  }
  std::string TokenBytes(int32_t id, bool) const override {
    return id < 256 ? std::string(1, static_cast<char>(id)) : std::string();
  }
  std::string Piece(int32_t id) const override { return TokenBytes(id, false); }
  int32_t bos_id() const override { return -1; }
  int32_t eos_id() const override { return 256; }
  const std::vector<int32_t>& stop_ids() const override { return stop_; }
  bool IsSpecial(int32_t id) const override { return id == 256; }
  bool add_bos_default() const override { return false; }
  const std::string& kind() const override { return kind_; }

 private:
  std::vector<int32_t> stop_{256};
  std::string kind_ = "bytes";
};

class FakeEngine final : public Engine {
 public:
  // Every generation answers `reply` (cut at max_tokens), one byte per `step` of delay.
  explicit FakeEngine(std::string reply,
                      std::chrono::milliseconds step = std::chrono::milliseconds(0),
                      int context_length = 256)
      : reply_(std::move(reply)), step_(step) {
    info_.model_id = "fake-model";
    info_.architecture = "llama";
    info_.source_format = "gguf";
    info_.context_length = context_length;
    info_.vocab_size = 257;
    info_.content_hash = "0123456789abcdef";
  }
  ~FakeEngine() override { Shutdown(false); }

  const EngineInfo& info() const override { return info_; }
  const Tokenizer& tokenizer() const override { return tokenizer_; }
  std::vector<int32_t> EncodeChat(const std::vector<Message>& messages) const override {
    std::string text;
    for (const Message& m : messages)
      text += std::string(RoleName(m.role)) + ":" + m.content + "\n";
    return tokenizer_.Encode(text, false, false);
  }

  uint64_t Submit(std::vector<int32_t> prompt, GenerationParams params,
                  GenerationCallback on_event) override {
    const uint64_t id = next_id_.fetch_add(1);
    submitted_.fetch_add(1);
    std::lock_guard<std::mutex> lock(mu_);
    last_params_ = params;
    threads_.emplace_back([this, id, prompt = std::move(prompt), params, on_event] {
      int produced = 0;
      std::string finish = "stop";
      for (unsigned char c : reply_) {
        if (Cancelled(id)) {
          finish = "cancelled";
          break;
        }
        if (produced >= params.max_tokens) {
          finish = "length";
          break;
        }
        if (step_.count() > 0) std::this_thread::sleep_for(step_);
        GenerationEvent e;
        e.text = std::string(1, static_cast<char>(c));
        e.tokens = {c};
        if (params.logprobs) e.logprobs = {-0.5f};
        on_event(e);
        ++produced;
      }
      GenerationEvent last;
      last.done = true;
      last.finish_reason = finish;
      last.prompt_tokens = static_cast<int>(prompt.size());
      last.completion_tokens = produced;
      on_event(last);
    });
    return id;
  }

  void Cancel(uint64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_.insert(id);
  }

  void Shutdown(bool) override {
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancel_all_ = true;
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
  }

  int64_t submitted() const { return submitted_.load(); }
  GenerationParams last_params() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_params_;
  }

 private:
  bool Cancelled(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    return cancel_all_ || cancelled_.count(id) > 0;
  }

  std::string reply_;
  std::chrono::milliseconds step_;
  EngineInfo info_;
  ByteTokenizer tokenizer_;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<int64_t> submitted_{0};
  GenerationParams last_params_;
  std::mutex mu_;
  std::set<uint64_t> cancelled_;
  bool cancel_all_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace breakfix::serve

#endif  // BREAKFIX_SERVE_FAKE_ENGINE_H_
