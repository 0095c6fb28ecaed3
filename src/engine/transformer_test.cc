// The ATen transformer against the plain C++ reference, against itself (cached decoding vs full
// recomputation, batched vs one sequence at a time), on random models of every supported shape
// and on the two real GGUF files in ../shared/data.
#include "engine/transformer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "breakfix/env.h"
#include "engine/reference_llama.h"
#include "engine/test_models.h"

namespace breakfix::engine {
namespace {

using testing::MemoryWeights;
using testing::TinyConfig;

constexpr float kTolerance = 1e-4f;

// Largest |a - b| over two equally long arrays (infinity when the lengths differ).
float MaxDiff(const std::vector<float>& a, const float* b, size_t n) {
  if (a.size() != n) return INFINITY;
  float worst = 0;
  for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}
float MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  return MaxDiff(a, b.data(), b.size());
}

// Row `row` of a row-major [n, vocab] array.
std::vector<float> Row(const std::vector<float>& all, int vocab, int row) {
  return std::vector<float>(all.begin() + static_cast<size_t>(row) * vocab,
                            all.begin() + static_cast<size_t>(row + 1) * vocab);
}

int32_t Argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

std::vector<int32_t> RandomTokens(int n, int vocab, uint64_t seed) {
  Random rng(seed);
  std::vector<int32_t> out(n);
  for (int32_t& t : out) t = static_cast<int32_t>(rng.Below(vocab));
  return out;
}

std::unique_ptr<Transformer> Make(const WeightSource& weights, int slots, int context,
                                  bool portable = false) {
  TransformerOptions options;
  options.max_slots = slots;
  options.context_length = context;
  options.portable_kernels = portable;
  auto t = Transformer::Create(weights, options);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(t).value() : nullptr;
}

// One step: returns the logits of every chunk (failing the test on an error).
std::vector<std::vector<float>> Step(Transformer& t, const std::vector<SequenceChunk>& chunks) {
  std::vector<std::vector<float>> logits;
  Status s = t.Forward(chunks, &logits);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return logits;
}

SequenceChunk Chunk(int slot, int start, std::vector<int32_t> tokens, bool all = false) {
  SequenceChunk c;
  c.slot = slot;
  c.start_pos = start;
  c.tokens = std::move(tokens);
  c.all_logits = all;
  return c;
}

// Cached decoding equals a full recomputation, and sequences decoded together (some joining
// mid-way, in consecutive and scattered slots) equal the same sequences run one by one: logits
// within kTolerance and the same greedy tokens.
void CheckCacheAndBatching(const WeightSource& weights, uint64_t seed, bool portable = false) {
  SCOPED_TRACE(portable ? "portable kernels" : "CPU kernels");
  const int vocab = weights.config().vocab_size;
  auto t = Make(weights, 4, 128, portable);
  ASSERT_NE(t, nullptr);

  // Solo: prefill, then greedy decoding one token at a time, each step checked against a full
  // recomputation of the whole sequence so far.
  const std::vector<int> prompt_lengths = {5, 17, 1};
  const int kSteps = 10;
  std::vector<std::vector<int32_t>> prompts, solo_tokens;
  std::vector<std::vector<std::vector<float>>> solo_logits;
  for (size_t s = 0; s < prompt_lengths.size(); ++s) {
    prompts.push_back(RandomTokens(prompt_lengths[s], vocab, seed + s));
    std::vector<int32_t> seq = prompts.back();
    std::vector<std::vector<float>> rows;
    auto logits = Step(*t, {Chunk(0, 0, seq)});
    ASSERT_EQ(logits.size(), 1u);
    for (int k = 0; k < kSteps; ++k) {
      auto full = t->ForwardFull(seq);
      ASSERT_TRUE(full.ok()) << full.status().ToString();
      const std::vector<float> last = Row(*full, vocab, static_cast<int>(seq.size()) - 1);
      ASSERT_LT(MaxDiff(logits[0], last), kTolerance) << "sequence " << s << " step " << k;
      rows.push_back(logits[0]);
      const int32_t next = Argmax(logits[0]);
      seq.push_back(next);
      logits = Step(*t, {Chunk(0, static_cast<int>(seq.size()) - 1, {next})});
    }
    solo_tokens.push_back(std::vector<int32_t>(seq.begin() + prompts.back().size(), seq.end()));
    solo_logits.push_back(rows);
  }

  // Batched, in scattered slots {3, 0, 2}; the third sequence joins after two steps.
  for (const std::vector<int>& slots : {std::vector<int>{3, 0, 2}, std::vector<int>{1, 2, 3}}) {
    const int n = static_cast<int>(prompts.size());
    std::vector<std::vector<int32_t>> seqs = prompts;
    std::vector<int> produced(n, 0);
    std::vector<bool> started(n, false);
    for (int round = 0; round < kSteps + 2; ++round) {
      std::vector<SequenceChunk> chunks;
      std::vector<int> owner;
      for (int s = 0; s < n; ++s) {
        if (s == 2 && round < 2) continue;  // joins late
        if (produced[s] >= kSteps) continue;
        if (!started[s]) {
          chunks.push_back(Chunk(slots[s], 0, seqs[s]));
          started[s] = true;
        } else {
          chunks.push_back(Chunk(slots[s], static_cast<int>(seqs[s].size()) - 1, {seqs[s].back()}));
        }
        owner.push_back(s);
      }
      if (chunks.empty()) break;
      auto logits = Step(*t, chunks);
      ASSERT_EQ(logits.size(), chunks.size());
      for (size_t i = 0; i < chunks.size(); ++i) {
        const int s = owner[i];
        ASSERT_LT(MaxDiff(logits[i], solo_logits[s][produced[s]]), kTolerance)
            << "sequence " << s << " step " << produced[s] << " in slot " << slots[s];
        const int32_t next = Argmax(logits[i]);
        EXPECT_EQ(next, solo_tokens[s][produced[s]]) << "sequence " << s;
        seqs[s].push_back(next);
        ++produced[s];
      }
    }
    for (int s = 0; s < n; ++s) EXPECT_EQ(produced[s], kSteps);
  }
}

// A random model per supported architecture feature, checked against ReferenceLlama.
struct Variant {
  std::string name;
  std::function<void(ModelConfig&)> edit;
};

void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

class ReferenceMatchTest : public ::testing::TestWithParam<Variant> {};

TEST_P(ReferenceMatchTest, PrefillDecodeAndFullMatchTheReference) {
  ModelConfig config = TinyConfig();
  GetParam().edit(config);
  MemoryWeights weights(config, 7);
  auto reference = ReferenceLlama::Create(weights, 128);
  ASSERT_TRUE(reference.ok()) << reference.status().ToString();
  const std::vector<int32_t> tokens = RandomTokens(40, config.vocab_size, 11);
  auto expected = (*reference)->Run(tokens);
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  const int V = config.vocab_size;

  for (bool portable : {false, true}) {
    SCOPED_TRACE(portable ? "portable kernels" : "CPU kernels");
    auto t = Make(weights, 3, 128, portable);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->portable(), portable);
    auto full = t->ForwardFull(tokens);
    ASSERT_TRUE(full.ok()) << full.status().ToString();
    EXPECT_LT(MaxDiff(*full, *expected), kTolerance) << "full recomputation";

    auto prefill = Step(*t, {Chunk(1, 0, tokens, /*all=*/true)});
    ASSERT_EQ(prefill.size(), 1u);
    EXPECT_LT(MaxDiff(prefill[0], *expected), kTolerance) << "prefill, all logits";

    // 25 tokens of prompt, then one token at a time, in another slot.
    auto last = Step(*t, {Chunk(2, 0, std::vector<int32_t>(tokens.begin(), tokens.begin() + 25))});
    EXPECT_LT(MaxDiff(last[0], Row(*expected, V, 24)), kTolerance) << "prefill, last logits";
    for (int pos = 25; pos < static_cast<int>(tokens.size()); ++pos) {
      auto step = Step(*t, {Chunk(2, pos, {tokens[pos]})});
      ASSERT_LT(MaxDiff(step[0], Row(*expected, V, pos)), kTolerance) << "decode at " << pos;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Architectures, ReferenceMatchTest,
    ::testing::Values(Variant{"llama_interleaved_gqa", [](ModelConfig&) {}},
                      Variant{"half_split_gqa",
                              [](ModelConfig& c) { c.rope_style = RopeStyle::kHalfSplit; }},
                      Variant{"qwen2_biases_tied_one_kv_head",
                              [](ModelConfig& c) {
                                c.architecture = "qwen2";
                                c.rope_style = RopeStyle::kHalfSplit;
                                c.qkv_bias = true;
                                c.tied_embeddings = true;
                                c.n_kv_heads = 1;
                                c.rope_theta = 1000000.0;
                              }},
                      Variant{"phi3_half_split_partial_rope",
                              [](ModelConfig& c) {
                                c.architecture = "phi3";
                                c.rope_style = RopeStyle::kHalfSplit;
                                c.n_kv_heads = 4;
                                c.rope_dim = 4;
                              }},
                      Variant{"interleaved_partial_rope", [](ModelConfig& c) { c.rope_dim = 6; }},
                      Variant{"mistral_sliding_window",
                              [](ModelConfig& c) {
                                c.architecture = "mistral";
                                c.sliding_window = 7;
                              }},
                      Variant{"llama3_rope_scaling",
                              [](ModelConfig& c) {
                                c.rope_style = RopeStyle::kHalfSplit;
                                c.rope_theta = 500000.0;
                                c.rope_scaling.type = "llama3";
                                c.rope_scaling.factor = 8;
                                c.rope_scaling.low_freq_factor = 1;
                                c.rope_scaling.high_freq_factor = 4;
                                c.rope_scaling.original_context_length = 64;
                              }},
                      Variant{"linear_rope_scaling",
                              [](ModelConfig& c) {
                                c.rope_scaling.type = "linear";
                                c.rope_scaling.factor = 4;
                              }}),
    [](const ::testing::TestParamInfo<Variant>& info) { return info.param.name; });

TEST(TransformerTest, RopeStylesAreNotInterchangeable) {
  // The two conventions give different logits on the same weights (so the tests above would
  // notice a swapped implementation).
  ModelConfig a = TinyConfig();
  ModelConfig b = a;
  b.rope_style = RopeStyle::kHalfSplit;
  MemoryWeights wa(a, 3), wb(b, 3);
  const std::vector<int32_t> tokens = RandomTokens(12, a.vocab_size, 5);
  auto ta = Make(wa, 1, 64), tb = Make(wb, 1, 64);
  ASSERT_NE(ta, nullptr);
  ASSERT_NE(tb, nullptr);
  auto la = ta->ForwardFull(tokens), lb = tb->ForwardFull(tokens);
  ASSERT_TRUE(la.ok() && lb.ok());
  EXPECT_GT(MaxDiff(*la, *lb), 1e-3f);
}

TEST(TransformerTest, CachedDecodingAndBatchingOnRandomModels) {
  ModelConfig config = TinyConfig();
  {
    MemoryWeights weights(config, 21);
    CheckCacheAndBatching(weights, 100);
    CheckCacheAndBatching(weights, 100, /*portable=*/true);
  }
  config.rope_style = RopeStyle::kHalfSplit;
  config.qkv_bias = true;
  config.sliding_window = 9;
  MemoryWeights weights(config, 22);
  CheckCacheAndBatching(weights, 200);
  CheckCacheAndBatching(weights, 200, /*portable=*/true);
}

TEST(TransformerTest, LongPromptRunsInPiecesAndMatchesFullRecomputation) {
  ModelConfig config = TinyConfig();
  MemoryWeights weights(config, 5);
  auto t = Make(weights, 2, 1024);
  ASSERT_NE(t, nullptr);
  const std::vector<int32_t> tokens = RandomTokens(600, config.vocab_size, 9);
  auto full = t->ForwardFull(tokens);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  auto all = Step(*t, {Chunk(0, 0, tokens, /*all=*/true)});
  EXPECT_LT(MaxDiff(all[0], *full), kTolerance);
  auto last = Step(*t, {Chunk(1, 0, tokens)});
  EXPECT_LT(MaxDiff(last[0], Row(*full, config.vocab_size, 599)), kTolerance);
  // Appending to a cached prefix (start_pos > 0) continues the same sequence.
  const std::vector<int32_t> more = RandomTokens(30, config.vocab_size, 10);
  auto appended = Step(*t, {Chunk(1, 600, more, /*all=*/true)});
  std::vector<int32_t> joined = tokens;
  joined.insert(joined.end(), more.begin(), more.end());
  auto full2 = t->ForwardFull(joined);
  ASSERT_TRUE(full2.ok());
  EXPECT_LT(MaxDiff(appended[0], full2->data() + 600 * config.vocab_size,
                    30 * static_cast<size_t>(config.vocab_size)),
            kTolerance);
}

TEST(TransformerTest, RestartingASlotForgetsTheOldSequence) {
  ModelConfig config = TinyConfig();
  MemoryWeights weights(config, 8);
  auto t = Make(weights, 1, 64);
  ASSERT_NE(t, nullptr);
  const std::vector<int32_t> a = RandomTokens(20, config.vocab_size, 1);
  const std::vector<int32_t> b = RandomTokens(6, config.vocab_size, 2);
  Step(*t, {Chunk(0, 0, a)});
  auto logits = Step(*t, {Chunk(0, 0, b)});
  auto full = t->ForwardFull(b);
  ASSERT_TRUE(full.ok());
  EXPECT_LT(MaxDiff(logits[0], Row(*full, config.vocab_size, 5)), kTolerance);
}

TEST(TransformerTest, BadChunksAreRejectedAndLeaveTheCacheIntact) {
  ModelConfig config = TinyConfig();
  MemoryWeights weights(config, 4);
  auto t = Make(weights, 2, 32);
  ASSERT_NE(t, nullptr);
  const std::vector<int32_t> tokens = RandomTokens(8, config.vocab_size, 3);
  Step(*t, {Chunk(0, 0, tokens)});

  struct Case {
    std::vector<SequenceChunk> chunks;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{Chunk(2, 0, {1})}, "slot is outside [0, 2)"},
      {{Chunk(-1, 0, {1})}, "slot is outside"},
      {{Chunk(1, 0, {})}, "no tokens"},
      {{Chunk(1, 0, {1, 260})}, "token 260 at index 1 is outside the vocabulary [0, 260)"},
      {{Chunk(1, 0, {-5})}, "token -5"},
      {{Chunk(0, 9, {1})}, "start_pos 9 is outside [0, 8]"},
      {{Chunk(1, 0, std::vector<int32_t>(33, 1))}, "exceed the context length 32"},
      {{Chunk(0, 8, {1}), Chunk(0, 9, {2})}, "slot appears twice"},
      {{Chunk(1, 0, {1, 2}), Chunk(0, 8, {1, 2, 3}), Chunk(1, 2, {4})}, "slot appears twice"},
  };
  for (const Case& c : cases) {
    std::vector<std::vector<float>> logits;
    Status s = t->Forward(c.chunks, &logits);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.message;
    EXPECT_NE(s.message().find(c.message), std::string::npos) << s.message();
  }
  // Slot 0 still holds its 8 tokens: decoding position 8 matches a full recomputation.
  auto logits = Step(*t, {Chunk(0, 8, {42})});
  std::vector<int32_t> joined = tokens;
  joined.push_back(42);
  auto full = t->ForwardFull(joined);
  ASSERT_TRUE(full.ok());
  EXPECT_LT(MaxDiff(logits[0], Row(*full, config.vocab_size, 8)), kTolerance);

  EXPECT_EQ(t->ForwardFull({}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t->ForwardFull(std::vector<int32_t>(33, 1)).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(TransformerTest, BadWeightsAndConfigsAreErrorsNamingTheProblem) {
  {
    MemoryWeights weights(TinyConfig(), 1);
    weights.tensors()["layers.1.wk"].shape = {8, 32};
    auto t = Transformer::Create(weights, TransformerOptions{});
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.status().message().find("layers.1.wk"), std::string::npos) << t.status().message();
    EXPECT_NE(t.status().message().find("[16, 32]"), std::string::npos) << t.status().message();
  }
  {
    MemoryWeights weights(TinyConfig(), 1);
    weights.tensors().erase("norm");
    auto t = Transformer::Create(weights, TransformerOptions{});
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.status().message().find("norm"), std::string::npos);
  }
  {
    ModelConfig c = TinyConfig();
    c.qkv_bias = true;  // the config asks for biases the weights do not have
    MemoryWeights weights(TinyConfig(), 1);
    weights.mutable_config() = c;
    auto t = Transformer::Create(weights, TransformerOptions{});
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.status().message().find("layers.0.bq"), std::string::npos);
  }
  const std::vector<std::pair<std::function<void(ModelConfig&)>, std::string>> configs = {
      {[](ModelConfig& c) { c.n_kv_heads = 3; }, "not a multiple of n_kv_heads 3"},
      {[](ModelConfig& c) { c.rope_dim = 5; }, "rope_dim 5"},
      {[](ModelConfig& c) { c.rope_dim = 10; }, "at most head_dim 8"},
      {[](ModelConfig& c) { c.hidden_size = 0; }, "hidden_size must be positive"},
      {[](ModelConfig& c) { c.rope_scaling.type = "yarn"; }, "\"yarn\" is not supported"},
      {[](ModelConfig& c) { c.rms_eps = 0; }, "rms_eps"},
  };
  for (const auto& [edit, message] : configs) {
    MemoryWeights weights(TinyConfig(), 1);
    edit(weights.mutable_config());
    auto t = Transformer::Create(weights, TransformerOptions{});
    ASSERT_FALSE(t.ok()) << message;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(t.status().message().find(message), std::string::npos) << t.status().message();
  }
  MemoryWeights weights(TinyConfig(), 1);
  TransformerOptions huge;
  huge.max_slots = 1 << 20;
  huge.context_length = 1 << 20;
  auto t = Transformer::Create(weights, huge);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(t.status().message().find("lower max_batch or context_length"), std::string::npos);
  TransformerOptions no_slots;
  no_slots.max_slots = 0;
  EXPECT_EQ(Transformer::Create(weights, no_slots).status().code(), StatusCode::kInvalidArgument);
}

TEST(TransformerTest, TwoThreadsComputeTheSameLogits) {
  ModelConfig config = TinyConfig();
  config.hidden_size = 128;
  config.ffn_size = 256;
  config.n_heads = 8;
  config.n_kv_heads = 4;
  config.head_dim = 16;
  config.rope_dim = 16;
  MemoryWeights weights(config, 12);
  TransformerOptions one, two;
  one.max_slots = two.max_slots = 2;
  one.context_length = two.context_length = 128;
  two.threads = 2;
  auto a = Transformer::Create(weights, one);
  auto b = Transformer::Create(weights, two);
  ASSERT_TRUE(a.ok() && b.ok());
  const std::vector<int32_t> tokens = RandomTokens(70, config.vocab_size, 13);
  auto la = Step(**a, {Chunk(0, 0, tokens, /*all=*/true), Chunk(1, 0, {5})});
  auto lb = Step(**b, {Chunk(0, 0, tokens, /*all=*/true), Chunk(1, 0, {5})});
  ASSERT_EQ(la.size(), 2u);
  ASSERT_EQ(lb.size(), 2u);
  EXPECT_LT(MaxDiff(la[0], lb[0]), 1e-5f);
  EXPECT_LT(MaxDiff(la[1], lb[1]), 1e-5f);
  TransformerOptions bad;
  bad.threads = 0;
  EXPECT_EQ(Transformer::Create(weights, bad).status().code(), StatusCode::kInvalidArgument);
}

TEST(TransformerTest, UnknownOrUnusableDevicesAreClearErrors) {
  MemoryWeights weights(TinyConfig(), 1);
  TransformerOptions options;
  options.device = "abacus";
  auto t = Transformer::Create(weights, options);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), ::testing::HasSubstr("unknown device \"abacus\""));
  options.device = "cuda:7";
  t = Transformer::Create(weights, options);
  if (t.ok()) {
    GTEST_SKIP() << "this libtorch has CUDA device 7; nothing to check";
  }
  EXPECT_EQ(t.status().code(), StatusCode::kFailedPrecondition) << t.status().ToString();
  EXPECT_THAT(t.status().message(), ::testing::HasSubstr("device cuda:7 is not usable"));
  options.device = "cpu";
  t = Transformer::Create(weights, options);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((*t)->device(), "cpu");
}

TEST(TransformerTest, ContextDefaultsToTheModelsCappedAt4096) {
  ModelConfig config = TinyConfig();
  config.context_length = 100;
  MemoryWeights small(config, 1);
  auto t = Make(small, 1, 0);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->context_length(), 100);
  config.context_length = 32768;
  MemoryWeights big(config, 1);
  t = Make(big, 1, 0);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->context_length(), 4096);
  // Embedding + output + final norm + per layer (2 norms, q/k/v/o, 3 MLP matrices).
  const int64_t H = 32, V = 260, F = 48, q = 32, kv = 16;
  EXPECT_EQ(t->parameter_count(),
            2 * V * H + H + 2 * (2 * H + (q + 2 * kv) * H + H * q + 3 * F * H));
}

// --- ../shared/data -----------------------------------------------------------------------

TEST(TransformerSharedDataTest, Stories260KMatchesTheReferenceAndItsGreedyTokens) {
  BF_SHARED_DATA_FILE(path, "tinyllamas-stories260K/stories260K.gguf");
  auto weights = OpenWeights(path);
  ASSERT_TRUE(weights.ok()) << weights.status().ToString();
  const ModelConfig& config = (*weights)->config();
  EXPECT_EQ(config.rope_style, RopeStyle::kInterleaved);
  EXPECT_EQ(config.n_kv_heads, 4);
  auto reference = ReferenceLlama::Create(**weights, 256);
  ASSERT_TRUE(reference.ok()) << reference.status().ToString();
  auto t = Make(**weights, 2, 256);
  ASSERT_NE(t, nullptr);
  const int V = config.vocab_size;

  // Greedy from BOS (id 1) for 200 tokens (llama2.c's -n 200: 200 forward steps, each sampling
  // one token): the reference and the transformer's cached decoding must choose the same token
  // at every step, with logits within kTolerance for the first 64 positions.
  std::vector<int32_t> ref_tokens = {1}, tokens = {1};
  auto logits = Step(*t, {Chunk(0, 0, {1})});
  for (int pos = 0; pos < 200; ++pos) {
    auto expected = (*reference)->Step(ref_tokens.back());
    ASSERT_TRUE(expected.ok()) << expected.status().ToString();
    if (pos < 64) {
      ASSERT_LT(MaxDiff(logits[0], *expected), kTolerance) << "position " << pos;
    }
    ref_tokens.push_back(Argmax(*expected));
    tokens.push_back(Argmax(logits[0]));
    ASSERT_EQ(tokens.back(), ref_tokens.back()) << "step " << pos;
    if (pos + 1 < 200) logits = Step(*t, {Chunk(0, pos + 1, {tokens.back()})});
  }
  // The prefill path over the same 64 positions.
  auto prefill = Step(*t, {Chunk(1, 0, std::vector<int32_t>(tokens.begin(), tokens.begin() + 64),
                                 /*all=*/true)});
  auto expected = (*reference)->Run(std::vector<int32_t>(tokens.begin(), tokens.begin() + 64));
  ASSERT_TRUE(expected.ok());
  EXPECT_LT(MaxDiff(prefill[0], *expected), kTolerance);
  EXPECT_EQ(static_cast<int>(prefill[0].size()), 64 * V);

  CheckCacheAndBatching(**weights, 300);
}

TEST(TransformerSharedDataTest, TinyRandomLlama2CachingAndBatching) {
  BF_SHARED_DATA_FILE(path, "llama-2-tiny-random-gguf/llama-2-tiny-random.gguf");
  auto weights = OpenWeights(path);
  ASSERT_TRUE(weights.ok()) << weights.status().ToString();
  EXPECT_EQ((*weights)->config().vocab_size, 32000);
  auto reference = ReferenceLlama::Create(**weights, 128);
  ASSERT_TRUE(reference.ok()) << reference.status().ToString();
  const std::vector<int32_t> tokens = RandomTokens(24, 32000, 77);
  auto expected = (*reference)->Run(tokens);
  ASSERT_TRUE(expected.ok());
  auto t = Make(**weights, 1, 128);
  ASSERT_NE(t, nullptr);
  auto full = t->ForwardFull(tokens);
  ASSERT_TRUE(full.ok());
  EXPECT_LT(MaxDiff(*full, *expected), kTolerance);
  CheckCacheAndBatching(**weights, 400);
}

}  // namespace
}  // namespace breakfix::engine
