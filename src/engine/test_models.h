// Test support for the generation tests: in-memory models with random weights, a byte-level
// tokenizer, a transformer that plays a script, and access to ../shared/data. Used only by tests.
#ifndef BREAKFIX_ENGINE_TEST_MODELS_H_
#define BREAKFIX_ENGINE_TEST_MODELS_H_

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "breakfix/engine.h"
#include "breakfix/env.h"
#include "engine/memory_weights.h"
#include "engine/model_weights.h"
#include "engine/transformer.h"
#include "testing/scratch_dir.h"

namespace breakfix::engine::testing {

// A small llama-style config; tests change fields from here.
inline ModelConfig TinyConfig() {
  ModelConfig c;
  c.architecture = "llama";
  c.vocab_size = 260;
  c.hidden_size = 32;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 8;
  c.ffn_size = 48;
  c.context_length = 256;
  c.rms_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.rope_dim = 8;
  c.rope_style = RopeStyle::kInterleaved;
  return c;
}

using engine::MemoryWeights;

// Bytes 0..255 are tokens 0..255; then <s> (256), </s> (257), <|user|> (258), <|end|> (259).
class ByteTokenizer : public Tokenizer {
 public:
  static constexpr int32_t kBos = 256, kEos = 257, kUser = 258, kEnd = 259;

  int32_t vocab_size() const override { return 260; }
  std::vector<int32_t> Encode(std::string_view text, bool add_bos,
                              bool parse_special) const override {
    std::vector<int32_t> ids;
    if (add_bos) ids.push_back(kBos);
    size_t i = 0;
    while (i < text.size()) {
      bool matched = false;
      if (parse_special) {
        for (int32_t id = kBos; id <= kEnd; ++id) {
          const std::string s = Piece(id);
          if (text.substr(i, s.size()) == s) {
            ids.push_back(id);
            i += s.size();
            matched = true;
            break;
          }
        }
      }
      if (!matched) ids.push_back(static_cast<uint8_t>(text[i++]));
    }
    return ids;
  }
  std::string Decode(std::span<const int32_t> ids, bool skip_special) const override {
    std::string out;
    for (int32_t id : ids) {
      if (id >= 256 && (skip_special || id == kBos || id == kEos)) continue;
      out += TokenBytes(id, false);
    }
    return out;
  }
  std::string TokenBytes(int32_t id, bool first) const override { return Piece(id); }
  std::string Piece(int32_t id) const override {
    if (id >= 0 && id < 256) return std::string(1, static_cast<char>(id));
    switch (id) {
      case kBos:
        return "<s>";
      case kEos:
        return "</s>";
      case kUser:
        return "<|user|>";
      case kEnd:
        return "<|end|>";
      default:
        return "";
    }
  }
  int32_t bos_id() const override { return kBos; }
  int32_t eos_id() const override { return kEos; }
  const std::vector<int32_t>& stop_ids() const override { return stop_ids_; }
  bool IsSpecial(int32_t id) const override { return id >= 256; }
  bool add_bos_default() const override { return true; }
  const std::string& kind() const override { return kind_; }

 private:
  std::vector<int32_t> stop_ids_{kEos, kEnd};
  std::string kind_ = "bytes";
};

// A transformer that "generates" a script: after a prompt whose second token is k it puts the
// logit mass on the bytes of scripts[k], one per position, then on </s>. The prompt is the first
// chunk written to a slot. Logits are 0 except +10 on the scripted token, so greedy and seeded
// sampling both follow the script at temperature <= 1.
class ScriptedTransformer : public Transformer {
 public:
  ScriptedTransformer(std::map<int32_t, std::string> scripts, int slots, int context)
      : scripts_(std::move(scripts)), slots_(slots), history_(slots), prompt_length_(slots) {
    config_ = TinyConfig();
    config_.context_length = context;
  }
  const ModelConfig& config() const override { return config_; }
  int max_slots() const override { return slots_; }
  int context_length() const override { return config_.context_length; }
  int64_t parameter_count() const override { return 0; }

  Status Forward(const std::vector<SequenceChunk>& chunks,
                 std::vector<std::vector<float>>* logits) override {
    ++steps_;
    if (fail_) return Status::Internal("scripted failure");
    logits->assign(chunks.size(), {});
    for (size_t i = 0; i < chunks.size(); ++i) {
      const SequenceChunk& c = chunks[i];
      if (c.slot < 0 || c.slot >= slots_) return Status::InvalidArgument("bad slot");
      std::vector<int32_t>& h = history_[c.slot];
      if (c.start_pos > static_cast<int>(h.size())) return Status::InvalidArgument("gap");
      h.resize(c.start_pos);
      h.insert(h.end(), c.tokens.begin(), c.tokens.end());
      if (c.start_pos == 0) prompt_length_[c.slot] = c.tokens.size();
      max_batch_seen_ = std::max(max_batch_seen_, static_cast<int>(chunks.size()));
      (*logits)[i] = Next(h, prompt_length_[c.slot]);
    }
    return Status::OK();
  }
  Result<std::vector<float>> ForwardFull(const std::vector<int32_t>& tokens) override {
    return Status::FailedPrecondition("not scripted");
  }

  int steps() const { return steps_; }
  int max_batch_seen() const { return max_batch_seen_; }
  void set_fail(bool fail) { fail_ = fail; }

 private:
  std::vector<float> Next(const std::vector<int32_t>& h, size_t prompt_length) const {
    std::vector<float> out(config_.vocab_size, 0.0f);
    int32_t next = ByteTokenizer::kEos;
    auto it = h.size() >= 2 ? scripts_.find(h[1]) : scripts_.end();
    const size_t index = h.size() - prompt_length;  // tokens generated so far
    if (it != scripts_.end() && index < it->second.size()) {
      next = static_cast<uint8_t>(it->second[index]);
    }
    out[next] = 10.0f;
    return out;
  }

  ModelConfig config_;
  std::map<int32_t, std::string> scripts_;
  int slots_;
  std::vector<std::vector<int32_t>> history_;
  std::vector<size_t> prompt_length_;
  int steps_ = 0;
  int max_batch_seen_ = 0;
  bool fail_ = false;
};

// The character GPT-2's byte-level BPE uses for byte `b`: printable Latin-1 bytes stand for
// themselves, the others take the code points from 256 up, in byte order.
inline std::string ByteCharacter(int b) {
  auto printable = [](int v) {
    return (v >= '!' && v <= '~') || (v >= 0xA1 && v <= 0xAC) || (v >= 0xAE && v <= 0xFF);
  };
  int code = b;
  if (!printable(b)) {
    int n = 0;
    for (int v = 0; v < b; ++v) n += printable(v) ? 0 : 1;
    code = 256 + n;
  }
  std::string out;
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
  return out;
}

// A byte-level tokenizer (one token per byte, no merges) with ChatML's special tokens at 256
// (<|endoftext|>), 257 (<|im_start|>) and 258 (<|im_end|>, EOS), and a ChatML chat template.
inline void WriteChatmlTokenizer(const std::string& dir) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteCharacter(b)] = b;
  nlohmann::json added = nlohmann::json::array();
  const char* specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  for (int i = 0; i < 3; ++i) {
    added.push_back({{"id", 256 + i},
                     {"content", specials[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  nlohmann::json tokenizer = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "ByteLevel"},
        {"add_prefix_space", false},
        {"trim_offsets", true},
        {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}},
  };
  nlohmann::json config = {
      {"bos_token", nullptr},
      {"eos_token", "<|im_end|>"},
      {"add_bos_token", false},
      {"chat_template",
       "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
       "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"},
  };
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/tokenizer.json") << tokenizer.dump();
  std::ofstream(dir + "/tokenizer_config.json") << config.dump();
}

using TempDir = test_support::ScratchDir;

// ../shared/data through BREAKFIX_TEST_DATA. Skips the test when the variable is unset; fails
// it, naming the file, when the variable is set and the file is missing. Declares `var`:
//   BF_SHARED_DATA_FILE(path, "tinyllamas-stories260K/stories260K.gguf");
#define BF_SHARED_DATA_FILE(var, relative)                                                \
  std::string var;                                                                        \
  {                                                                                       \
    auto bf_dir = ::breakfix::Env::Default()->GetVar("BREAKFIX_TEST_DATA");               \
    if (!bf_dir) GTEST_SKIP() << "BREAKFIX_TEST_DATA is unset; set it to ../shared/data"; \
    var = *bf_dir + "/" + (relative);                                                     \
    if (!std::filesystem::exists(var)) {                                                  \
      FAIL() << "BREAKFIX_TEST_DATA is set but the data file is missing: " << var;        \
    }                                                                                     \
  }

}  // namespace breakfix::engine::testing

#endif  // BREAKFIX_ENGINE_TEST_MODELS_H_
