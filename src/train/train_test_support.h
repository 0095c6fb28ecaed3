// Test support for the trainer: tiny random models saved as Hugging Face directories with a
// byte-level ChatML tokenizer, and small data sets. Used only by tests.
#ifndef BREAKFIX_TRAIN_TRAIN_TEST_SUPPORT_H_
#define BREAKFIX_TRAIN_TRAIN_TEST_SUPPORT_H_

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "breakfix/engine.h"
#include "breakfix/preference.h"
#include "breakfix/train.h"
#include "engine/model_weights.h"
#include "engine/test_models.h"
#include "train/model_files.h"

namespace breakfix::train::testing {

using engine::testing::MemoryWeights;
using engine::testing::TempDir;
using engine::testing::TinyConfig;
using engine::testing::WriteChatmlTokenizer;

// The small model of the trainer tests: llama layout, half-split RoPE (as a Hugging Face
// directory holds it), 260 tokens, hidden 32, 2 layers, GQA 4/2.
inline engine::ModelConfig TrainConfig() {
  engine::ModelConfig c = TinyConfig();
  c.rope_style = engine::RopeStyle::kHalfSplit;
  c.context_length = 128;
  return c;
}

inline NamedTensors TensorsOf(const engine::WeightSource& w) {
  NamedTensors out;
  for (const std::string& name : CanonicalTensorNames(w.config())) {
    auto t = w.Get(name);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    if (t.ok()) out.push_back({name, *t});
  }
  return out;
}

// Saves a random model of `config` with the ChatML tokenizer in `root`/model (returned).
inline std::string SaveRandomModel(const std::string& root, const engine::ModelConfig& config,
                                   uint64_t seed, const std::string& name = "model") {
  const std::string tok = root + "/tokenizer-" + name;
  WriteChatmlTokenizer(tok);
  MemoryWeights w(config, seed);
  const std::string dir = root + "/" + name;
  std::filesystem::create_directories(dir);
  Status s = WriteModelLike(dir, tok, "hf", config, TensorsOf(w));
  EXPECT_TRUE(s.ok()) << s.ToString();
  return dir;
}

inline Message User(std::string text) { return Message{Role::kUser, std::move(text)}; }
inline Message Assistant(std::string text) { return Message{Role::kAssistant, std::move(text)}; }
inline Message System(std::string text) { return Message{Role::kSystem, std::move(text)}; }

inline PreferencePair Pair(std::string id, std::string prompt, std::string chosen,
                           std::string rejected) {
  PreferencePair p;
  p.id = std::move(id);
  p.prompt = {User(std::move(prompt))};
  p.chosen = std::move(chosen);
  p.rejected = std::move(rejected);
  return p;
}

// Greedy generation through the engine, for checking what a trained model says.
inline std::string Generate(Engine& engine, const std::vector<Message>& prompt, int max_tokens) {
  GenerationParams params;
  params.max_tokens = max_tokens;
  params.temperature = 0;
  std::promise<std::string> done;
  std::string text;
  engine.Submit(engine.EncodeChat(prompt), params, [&](const GenerationEvent& e) {
    text += e.text;
    if (e.done) done.set_value(e.finish_reason == "error" ? "ERROR: " + e.error : text);
  });
  return done.get_future().get();
}

// Reads a whole file as bytes.
inline std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace breakfix::train::testing

#endif  // BREAKFIX_TRAIN_TRAIN_TEST_SUPPORT_H_
