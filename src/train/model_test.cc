// The trainable model against the engine: same logits, correct gradients, LoRA merge, losses.
#include "train/model.h"

#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "engine/transformer.h"
#include "train/train_test_support.h"

namespace breakfix::train {
namespace {

using engine::ModelConfig;
using engine::RopeStyle;
using testing::MemoryWeights;
using testing::TempDir;
using testing::TinyConfig;

std::vector<int32_t> Tokens(int n, int seed) {
  std::vector<int32_t> out;
  Random rng(seed);
  for (int i = 0; i < n; ++i) out.push_back(static_cast<int32_t>(rng.Below(260)));
  return out;
}

at::Tensor Ids(const std::vector<std::vector<int32_t>>& rows) {
  size_t T = 0;
  for (const auto& r : rows) T = std::max(T, r.size());
  at::Tensor ids =
      at::zeros({static_cast<int64_t>(rows.size()), static_cast<int64_t>(T)}, at::kLong);
  for (size_t b = 0; b < rows.size(); ++b) {
    for (size_t t = 0; t < rows[b].size(); ++t) ids[b][t] = rows[b][t];
  }
  return ids;
}

struct ForwardCase {
  std::string name;
  ModelConfig config;
};

void PrintTo(const ForwardCase& c, std::ostream* os) { *os << c.name; }

std::vector<ForwardCase> ForwardCases() {
  std::vector<ForwardCase> cases;
  cases.push_back({"llama_interleaved", TinyConfig()});
  ModelConfig qwen = TinyConfig();
  qwen.architecture = "qwen2";
  qwen.rope_style = RopeStyle::kHalfSplit;
  qwen.qkv_bias = true;
  qwen.rope_theta = 1e6;
  cases.push_back({"qwen2_half_split_bias", qwen});
  ModelConfig tied = TinyConfig();
  tied.tied_embeddings = true;
  tied.rope_style = RopeStyle::kHalfSplit;
  tied.n_kv_heads = 4;
  cases.push_back({"tied_embeddings_mha", tied});
  ModelConfig scaled = TinyConfig();
  scaled.rope_scaling.type = "llama3";
  scaled.rope_scaling.factor = 8;
  scaled.rope_scaling.original_context_length = 16;
  scaled.rope_dim = 4;  // partial rotary
  scaled.sliding_window = 7;
  cases.push_back({"llama3_scaling_partial_rope_window", scaled});
  return cases;
}

class ForwardTest : public ::testing::TestWithParam<ForwardCase> {};

// The training forward pass computes the engine's function: same logits for a full sequence,
// and padding after a shorter sequence in the same batch changes none of its logits.
TEST_P(ForwardTest, LogitsMatchTheEngine) {
  const ModelConfig& config = GetParam().config;
  MemoryWeights weights(config, 7);
  auto engine = engine::Transformer::Create(weights, engine::TransformerOptions{});
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto model = TrainModel::Load(weights, ModelSetup{});
  ASSERT_TRUE(model.ok()) << model.status().ToString();

  const std::vector<int32_t> a = Tokens(40, 1), b = Tokens(23, 2);
  at::NoGradGuard no_grad;
  at::Tensor logits = (*model)->Logits(Ids({a, b}), false, 0);
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2, 40, 260}));
  for (int row = 0; row < 2; ++row) {
    const std::vector<int32_t>& tokens = row == 0 ? a : b;
    auto expected = (*engine)->ForwardFull(tokens);
    ASSERT_TRUE(expected.ok()) << expected.status().ToString();
    at::Tensor got = logits[row].narrow(0, 0, tokens.size()).contiguous();
    const float* g = got.data_ptr<float>();
    float worst = 0;
    for (size_t i = 0; i < expected->size(); ++i)
      worst = std::max(worst, std::abs(g[i] - (*expected)[i]));
    EXPECT_LT(worst, 1e-4f) << "row " << row;
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, ForwardTest, ::testing::ValuesIn(ForwardCases()),
                         [](const auto& info) { return info.param.name; });

// Long sequences: attention runs in batch chunks (4 heads x 1100^2 floats is 19 MiB a
// sequence, so each goes alone), and TargetLogProbs projects only the targeted positions. Both
// must give what one sequence alone and a full log-softmax give.
TEST(ForwardTest, ChunkedAttentionAndTargetOnlyProjectionAgree) {
  ModelConfig config = TinyConfig();
  config.context_length = 1200;
  MemoryWeights weights(config, 11);
  auto model = TrainModel::Load(weights, ModelSetup{});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const TokenSequence a = [] {
    TokenSequence s;
    s.tokens = Tokens(1100, 3);
    s.target.assign(s.tokens.size(), 0);
    for (size_t t = 900; t < s.tokens.size(); ++t) s.target[t] = 1;
    return s;
  }();
  TokenSequence b;
  b.tokens = Tokens(700, 4);
  b.target.assign(b.tokens.size(), 0);
  for (size_t t = 10; t < 700; t += 3) b.target[t] = 1;
  at::NoGradGuard no_grad;
  const Batch batch = MakeBatch({&a, &b}, at::kCPU, at::kFloat);
  at::Tensor logits = (*model)->Logits(batch.ids, false, 0);
  for (int row = 0; row < 2; ++row) {
    const TokenSequence& s = row == 0 ? a : b;
    at::Tensor alone = (*model)->Logits(Ids({s.tokens}), false, 0)[0];
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    EXPECT_LT((logits[row].narrow(0, 0, n) - alone).abs().max().item<float>(), 1e-4f) << row;
  }
  // log p of every next token from the full logits, masked by the targets.
  const int64_t T = batch.ids.size(1);
  at::Tensor full = at::log_softmax(logits.narrow(1, 0, T - 1), -1)
                        .gather(-1, batch.ids.narrow(1, 1, T - 1).unsqueeze(-1))
                        .squeeze(-1) *
                    batch.targets;
  at::Tensor picked = (*model)->TargetLogProbs(batch, false, 0);
  ASSERT_EQ(picked.sizes(), full.sizes());
  EXPECT_LT((picked - full).abs().max().item<float>(), 1e-4f);
  EXPECT_EQ((picked != 0).sum().item<int64_t>(), 200 + 230);
}

// A model whose weights are float64, for finite differences.
ModelConfig GradConfig() {
  ModelConfig c = TinyConfig();
  c.hidden_size = 16;
  c.head_dim = 4;
  c.rope_dim = 4;
  c.ffn_size = 24;
  c.qkv_bias = true;
  c.rope_style = RopeStyle::kHalfSplit;
  return c;
}

TokenSequence Sequence(const std::vector<int32_t>& tokens, int first_target) {
  TokenSequence s;
  s.tokens = tokens;
  s.target.assign(tokens.size(), 0);
  for (size_t t = first_target; t < tokens.size(); ++t) s.target[t] = 1;
  return s;
}

// Central differences of a scalar loss against autograd, entry by entry.
void CheckGradients(TrainModel& model, const std::function<at::Tensor()>& loss,
                    const std::vector<std::pair<std::string, int64_t>>& entries) {
  for (const Parameter& p : model.trainable()) {
    if (p.value.grad().defined()) p.value.mutable_grad().zero_();
  }
  loss().backward();
  std::map<std::string, at::Tensor> by_name;
  for (const Parameter& p : model.trainable()) by_name[p.name] = p.value;
  for (const auto& [name, index] : entries) {
    ASSERT_TRUE(by_name.count(name)) << name;
    at::Tensor value = by_name[name];
    const double analytic = value.grad().reshape({-1})[index].item<double>();
    double* x = value.data_ptr<double>() + index;
    // eps balances truncation (eps^2) against rounding (1e-16 |loss| / eps) in float64.
    const double eps = 1e-5, saved = *x;
    at::NoGradGuard no_grad;
    *x = saved + eps;
    const double up = loss().item<double>();
    *x = saved - eps;
    const double down = loss().item<double>();
    *x = saved;
    const double numeric = (up - down) / (2 * eps);
    EXPECT_NEAR(analytic, numeric, 1e-6 * std::max(1.0, std::abs(numeric)))
        << name << "[" << index << "]";
  }
}

TEST(GradientTest, SftAndDpoGradientsMatchFiniteDifferences) {
  MemoryWeights weights(GradConfig(), 11);
  ModelSetup setup;
  setup.dtype = at::kDouble;
  auto model = TrainModel::Load(weights, setup);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const TokenSequence s1 = Sequence(Tokens(12, 3), 5), s2 = Sequence(Tokens(9, 4), 3);
  const Batch batch = MakeBatch({&s1, &s2}, at::kCPU, at::kDouble);
  auto sft_loss = [&] { return -(*model)->TargetLogProbs(batch, false, 0).sum() / 13.0; };
  const std::vector<std::pair<std::string, int64_t>> entries = {
      {"tok_embeddings", s1.tokens[2] * 16 + 3},
      {"layers.0.wq", 17},
      {"layers.0.bk", 2},
      {"layers.1.wv", 30},
      {"layers.1.wo", 41},
      {"layers.0.w1", 100},
      {"layers.1.w2", 7},
      {"layers.1.ffn_norm", 9},
      {"norm", 4},
      {"output", 260 * 16 - 5}};
  {
    SCOPED_TRACE("sft");
    CheckGradients(**model, sft_loss, entries);
  }

  const at::Tensor ref_c = at::tensor({-30.0}, at::kDouble),
                   ref_r = at::tensor({-31.0}, at::kDouble);
  for (TrainMethod method : {TrainMethod::kDpo, TrainMethod::kIpo}) {
    SCOPED_TRACE(TrainMethodName(method));
    auto pair_loss = [&] {
      at::Tensor sums = (*model)->TargetLogProbs(batch, false, 0).sum(1);
      return PreferenceLosses(method, 0.5, sums.narrow(0, 0, 1), sums.narrow(0, 1, 1), ref_c, ref_r)
          .sum();
    };
    CheckGradients(**model, pair_loss, entries);
  }
}

TEST(GradientTest, LoraGradientsMatchFiniteDifferences) {
  MemoryWeights weights(GradConfig(), 12);
  ModelSetup setup;
  setup.dtype = at::kDouble;
  setup.lora.rank = 2;
  setup.lora.targets = {"wq", "w2"};
  auto model = TrainModel::Load(weights, setup);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  // B starts at zero; move it off zero so A's gradient is not zero too.
  {
    at::NoGradGuard no_grad;
    for (const Parameter& p : (*model)->trainable()) {
      if (p.name.find("lora_b") != std::string::npos) p.value.normal_(0, 0.1);
    }
  }
  const TokenSequence s = Sequence(Tokens(10, 5), 4);
  const Batch batch = MakeBatch({&s}, at::kCPU, at::kDouble);
  auto loss = [&] { return -(*model)->TargetLogProbs(batch, false, 0).sum(); };
  CheckGradients(**model, loss,
                 {{"layers.0.wq.lora_a", 3},
                  {"layers.0.wq.lora_b", 5},
                  {"layers.1.w2.lora_a", 20},
                  {"layers.1.w2.lora_b", 11}});
  // Only adapters train.
  for (const Parameter& p : (*model)->trainable()) {
    EXPECT_NE(p.name.find(".lora_"), std::string::npos) << p.name;
  }
  EXPECT_FALSE((*model)->Weight("layers.0.wq").requires_grad());
}

// The DPO and IPO losses against the formulas evaluated by hand.
TEST(PreferenceLossTest, MatchesHandComputedValues) {
  const double pc = -10, pr = -12, rc = -11, rr = -11.5, beta = 0.1;
  // m = (pc - rc) - (pr - rr) = 1 - (-0.5) = 1.5
  const double dpo = std::log1p(std::exp(-beta * 1.5));                // -log sigmoid(0.15)
  const double ipo = (1.5 - 1 / (2 * beta)) * (1.5 - 1 / (2 * beta));  // (1.5 - 5)^2 = 12.25
  auto t = [](double v) { return at::tensor({v}, at::kDouble); };
  EXPECT_NEAR(PreferenceLosses(TrainMethod::kDpo, beta, t(pc), t(pr), t(rc), t(rr)).item<double>(),
              dpo, 1e-12);
  EXPECT_NEAR(PreferenceLosses(TrainMethod::kIpo, beta, t(pc), t(pr), t(rc), t(rr)).item<double>(),
              ipo, 1e-12);
  EXPECT_NEAR(ipo, 12.25, 1e-12);
  EXPECT_NEAR(dpo, 0.6209570, 1e-6);
  // A policy equal to its reference: DPO gives log 2.
  EXPECT_NEAR(PreferenceLosses(TrainMethod::kDpo, beta, t(-3), t(-4), t(-3), t(-4)).item<double>(),
              std::log(2.0), 1e-12);
}

// bf16 matrix products stay close to float32.
TEST(Bf16Test, LogitsStayCloseToFloat32) {
  ModelConfig c = TinyConfig();
  MemoryWeights weights(c, 21);
  ModelSetup bf16;
  bf16.bf16 = true;
  auto exact = TrainModel::Load(weights, ModelSetup{});
  auto rounded = TrainModel::Load(weights, bf16);
  ASSERT_TRUE(exact.ok() && rounded.ok());
  at::NoGradGuard no_grad;
  const at::Tensor ids = Ids({Tokens(20, 9)});
  at::Tensor a = (*exact)->Logits(ids, false, 0), b = (*rounded)->Logits(ids, false, 0);
  EXPECT_EQ(b.scalar_type(), at::kFloat);
  const double scale = a.abs().max().item<double>();
  const double diff = (a - b).abs().max().item<double>();
  EXPECT_GT(diff, 0) << "bf16 rounding should be visible";
  EXPECT_LT(diff, 0.05 * scale);
}

// After LoRA training, the merged checkpoint the engine loads gives the adapter model's logits.
TEST(LoraMergeTest, MergedCheckpointMatchesAdapterModel) {
  TempDir dir;
  const std::string base = testing::SaveRandomModel(dir.path(), testing::TrainConfig(), 5);
  TrainOptions o;
  o.method = TrainMethod::kSft;
  o.base_model = base;
  o.output_dir = dir.path() + "/run";
  o.learning_rate = 5e-2;
  o.max_steps = 4;
  o.batch_size = 2;
  o.checkpoint_every = 2;
  o.lora.rank = 4;
  o.lora.targets = {"wq", "wv", "w2"};
  TrainData data;
  data.examples = {{"a", {testing::User("hi"), testing::Assistant("hello")}},
                   {"b", {testing::User("bye"), testing::Assistant("see you")}}};
  auto result = Train(o, data, nullptr, nullptr);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  const std::string checkpoint = o.output_dir + "/checkpoint-2";

  auto base_weights = engine::OpenWeights(base);
  ASSERT_TRUE(base_weights.ok());
  ModelSetup setup;
  setup.lora = o.lora;
  auto adapted = TrainModel::Load(**base_weights, setup);
  ASSERT_TRUE(adapted.ok());
  auto state = engine::SafetensorsFile::Open(checkpoint + "/training_state.safetensors");
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  std::map<std::string, engine::FloatTensor> adapters;
  for (const auto& t : (*state)->tensors()) {
    if (t.name.rfind("adapter.", 0) != 0) continue;
    auto values = (*state)->ReadF32(t);
    ASSERT_TRUE(values.ok());
    adapters[t.name.substr(8)] = engine::FloatTensor{t.shape, *values};
  }
  EXPECT_EQ(adapters.size(), 2u * 3 * 2);  // a and b, three targets, two layers
  ASSERT_TRUE((*adapted)->SetAdapterWeights(adapters).ok());

  auto merged = engine::OpenWeights(checkpoint);
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  auto engine = engine::Transformer::Create(**merged, engine::TransformerOptions{});
  ASSERT_TRUE(engine.ok());
  const std::vector<int32_t> tokens = Tokens(30, 8);
  auto expected = (*engine)->ForwardFull(tokens);
  ASSERT_TRUE(expected.ok());
  at::NoGradGuard no_grad;
  at::Tensor got = (*adapted)->Logits(Ids({tokens}), false, 0)[0].contiguous();
  const at::Tensor base_logits = [&] {
    auto plain = TrainModel::Load(**base_weights, ModelSetup{});
    return (*plain)->Logits(Ids({tokens}), false, 0)[0].contiguous();
  }();
  float worst = 0;
  for (size_t i = 0; i < expected->size(); ++i) {
    worst = std::max(worst, std::abs(got.data_ptr<float>()[i] - (*expected)[i]));
  }
  EXPECT_LT(worst, 1e-4f);
  EXPECT_GT((got - base_logits).abs().max().item<double>(), 1e-3) << "the adapters did nothing";
}

TEST(DeviceTest, NamesAreChecked) {
  EXPECT_TRUE(ParseDevice("cpu").ok());
  auto tpu = ParseDevice("tpu");
  ASSERT_FALSE(tpu.ok());
  EXPECT_NE(tpu.status().message().find("not one of cpu, cuda"), std::string::npos);
  auto cuda = ParseDevice("cuda");
  if (!at::hasCUDA()) {
    ASSERT_FALSE(cuda.ok());
    EXPECT_NE(cuda.status().message().find("CUDA is not available"), std::string::npos);
  } else {
    EXPECT_TRUE(cuda.ok()) << cuda.status().ToString();
  }
}

}  // namespace
}  // namespace breakfix::train
