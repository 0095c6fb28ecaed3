// Train() end to end on tiny models: data encoding and masks, SFT memorisation checked through
// the engine, DPO generalising to held-out pairs, kill-and-resume, LoRA, InitModel, scoring, and
// the errors bad input gets.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "breakfix/engine.h"
#include "breakfix/train.h"
#include "engine/model_weights.h"
#include "engine/transformer.h"
#include "train/train_data.h"
#include "train/train_test_support.h"

namespace breakfix::train {
namespace {

using testing::Assistant;
using testing::Pair;
using testing::System;
using testing::TempDir;
using testing::User;

// --- data encoding ---------------------------------------------------------------------------

class TrainDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = testing::SaveRandomModel(dir_.path(), testing::TrainConfig(), 1);
    auto codec = LoadChatCodec(model_, "", "llama", 260);
    ASSERT_TRUE(codec.ok()) << codec.status().ToString();
    codec_ = std::move(codec).value();
  }
  // The targeted tokens, one string per contiguous run.
  std::vector<std::string> Spans(const TokenSequence& s) const {
    std::vector<std::string> out;
    for (size_t t = 0; t < s.tokens.size(); ++t) {
      if (!s.target[t]) continue;
      if (t == 0 || !s.target[t - 1]) out.emplace_back();
      // Special tokens as their text (Decode would drop EOS).
      const int32_t id = s.tokens[t];
      out.back() += codec_.tokenizer->IsSpecial(id) ? codec_.tokenizer->Piece(id)
                                                    : codec_.tokenizer->TokenBytes(id, t == 0);
    }
    return out;
  }
  TempDir dir_;
  std::string model_;
  ChatCodec codec_;
};

TEST_F(TrainDataTest, TargetsAreAssistantTurnsWithTheirEndOfTurnToken) {
  const std::vector<Message> chat = {System("be brief"), User("hi"), Assistant("hello"),
                                     User("and?"), Assistant("bye now")};
  auto all = EncodeConversation(codec_, chat, TargetTurns::kAll, 512, "test");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(Spans(*all), (std::vector<std::string>{"hello<|im_end|>", "bye now<|im_end|>"}));
  std::string text;
  for (int32_t id : all->tokens) {
    text += codec_.tokenizer->IsSpecial(id) ? codec_.tokenizer->Piece(id)
                                            : codec_.tokenizer->TokenBytes(id, false);
  }
  EXPECT_EQ(text,
            "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
            "<|im_start|>assistant\nhello<|im_end|>\n<|im_start|>user\nand?<|im_end|>\n"
            "<|im_start|>assistant\nbye now<|im_end|>\n");
  auto last = EncodeConversation(codec_, chat, TargetTurns::kLast, 512, "test");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(Spans(*last), (std::vector<std::string>{"bye now<|im_end|>"}));
  EXPECT_EQ(last->tokens, all->tokens);
  EXPECT_EQ(all->dropped, 0);
}

// Llama 2's template has no generation prompt and ends a reply with " EOS": the reply's span
// starts at its leading space and ends at EOS.
TEST_F(TrainDataTest, TemplatesWithoutAGenerationPromptMarkTheSameWay) {
  auto llama2 = LoadChatCodec(model_, "llama2", "llama", 260);
  ASSERT_TRUE(llama2.ok()) << llama2.status().ToString();
  ChatCodec saved = std::move(codec_);
  codec_ = std::move(llama2).value();
  auto s =
      EncodeConversation(codec_, {User("hi"), Assistant("hello"), User("more"), Assistant("fine")},
                         TargetTurns::kAll, 512, "test");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(Spans(*s), (std::vector<std::string>{" hello <|im_end|>", " fine <|im_end|>"}));
  codec_ = std::move(saved);
}

TEST_F(TrainDataTest, TruncatesThePromptFromTheLeftNeverTheReply) {
  const std::string long_prompt(100, 'x');
  auto s = EncodeReply(codec_, {User(long_prompt)}, "ok", 40, "pair 1");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->tokens.size(), 40u);
  EXPECT_GT(s->dropped, 80);
  EXPECT_EQ(Spans(*s), (std::vector<std::string>{"ok<|im_end|>"}));

  auto too_long = EncodeReply(codec_, {User("q")}, std::string(30, 'r'), 20, "pair 7");
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(too_long.status().message().find("pair 7"), std::string::npos);
  EXPECT_NE(too_long.status().message().find("never truncated"), std::string::npos);
}

TEST(EpochOrderTest, IsASeededPermutationPerEpoch) {
  const std::vector<int64_t> a = EpochOrder(50, 3, 0), b = EpochOrder(50, 3, 1);
  EXPECT_EQ(std::set<int64_t>(a.begin(), a.end()).size(), 50u);
  EXPECT_EQ(*std::max_element(a.begin(), a.end()), 49);
  EXPECT_NE(a, b);
  EXPECT_EQ(a, EpochOrder(50, 3, 0));
  EXPECT_NE(a, EpochOrder(50, 4, 0));
}

TEST(EpochOrderTest, GroupedOrderBatchesSimilarLengthsAndStaysSeeded) {
  // 1000 sequences with lengths 1..1000 in a scrambled layout, batches of 8.
  std::vector<int64_t> lengths(1000);
  for (int64_t i = 0; i < 1000; ++i) lengths[i] = 1 + (i * 379) % 1000;
  const std::vector<int64_t> a = GroupedEpochOrder(lengths, 8, 3, 0);
  ASSERT_EQ(a.size(), 1000u);
  EXPECT_EQ(std::set<int64_t>(a.begin(), a.end()).size(), 1000u);
  EXPECT_EQ(a, GroupedEpochOrder(lengths, 8, 3, 0));
  EXPECT_NE(a, GroupedEpochOrder(lengths, 8, 3, 1));
  EXPECT_NE(a, GroupedEpochOrder(lengths, 8, 4, 0));
  // Padding: the sum over batches of (batch size x longest) against the real tokens. A random
  // order pads about half of every batch; windows of 512 sorted by length pad a few percent.
  auto padded = [&](const std::vector<int64_t>& order) {
    int64_t total = 0;
    for (size_t b = 0; b < order.size(); b += 8) {
      int64_t longest = 0;
      for (size_t i = b; i < std::min(order.size(), b + 8); ++i) {
        longest = std::max(longest, lengths[order[i]]);
      }
      total += longest * static_cast<int64_t>(std::min<size_t>(8, order.size() - b));
    }
    return total;
  };
  const int64_t real = 1000 * 1001 / 2;
  EXPECT_LT(padded(a), real * 105 / 100);
  EXPECT_GT(padded(EpochOrder(1000, 3, 0)), real * 150 / 100);
  // Batches are not simply longest-first across the epoch.
  EXPECT_FALSE(std::is_sorted(a.begin(), a.end(),
                              [&](int64_t x, int64_t y) { return lengths[x] > lengths[y]; }));
  // A partial last batch (1003 = 125 x 8 + 3) stays at the end, whole.
  lengths.push_back(5);
  lengths.push_back(6);
  lengths.push_back(7);
  const std::vector<int64_t> c = GroupedEpochOrder(lengths, 8, 3, 0);
  ASSERT_EQ(c.size(), 1003u);
  EXPECT_EQ(std::set<int64_t>(c.begin(), c.end()).size(), 1003u);
}

// --- training --------------------------------------------------------------------------------

TrainOptions BaseOptions(const std::string& model, const std::string& out) {
  TrainOptions o;
  o.base_model = model;
  o.output_dir = out;
  o.checkpoint_every = 0;
  return o;
}

std::vector<nlohmann::json> LogLines(const std::string& dir) {
  std::ifstream in(dir + "/train_log.jsonl");
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(SftTest, MemorisesRepliesThatTheEngineThenGenerates) {
  TempDir dir;
  const std::string base = testing::SaveRandomModel(dir.path(), testing::TrainConfig(), 2);
  TrainOptions o = BaseOptions(base, dir.path() + "/run");
  o.learning_rate = 1e-2;
  o.warmup_steps = 5;
  o.max_steps = 100;
  o.batch_size = 3;
  TrainData data;
  data.examples = {{"a", {User("hi"), Assistant("hello friend")}},
                   {"b", {User("bye"), Assistant("see you soon")}},
                   {"c", {System("terse"), User("name?"), Assistant("tiny")}}};
  std::vector<double> losses;
  auto result = Train(
      o, data,
      [&](const TrainProgress& p) {
        if (p.is_step) losses.push_back(p.step.loss);
      },
      nullptr);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(losses.size(), 100u);
  EXPECT_GT(losses.front(), 3.0);  // about log(260) at random init
  EXPECT_LT(losses.back(), 0.05);
  EXPECT_EQ(result->final_model, o.output_dir + "/final");
  EXPECT_EQ(LogLines(o.output_dir).size(), 100u);

  EngineOptions eo;
  eo.max_batch = 2;
  auto engine = LoadEngine(result->final_model, eo);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  for (const ChatExample& e : data.examples) {
    std::vector<Message> prompt(e.messages.begin(), e.messages.end() - 1);
    EXPECT_EQ(testing::Generate(**engine, prompt, 30), e.messages.back().content) << e.id;
  }
}

// Pairs "say W": chosen "yes W", rejected "no W". DPO learns the pattern, so pairs with words it
// never saw get a positive margin too.
std::vector<PreferencePair> YesNoPairs(const std::vector<std::string>& words) {
  std::vector<PreferencePair> pairs;
  for (const std::string& w : words) pairs.push_back(Pair(w, "say " + w, "yes " + w, "no " + w));
  return pairs;
}

TEST(DpoTest, RaisesTheMarginOnHeldOutPairs) {
  TempDir dir;
  const std::string base = testing::SaveRandomModel(dir.path(), testing::TrainConfig(), 3);
  const std::vector<PreferencePair> held_out = YesNoPairs({"lamp", "river", "cloud", "stone"});
  for (TrainMethod method : {TrainMethod::kDpo, TrainMethod::kIpo}) {
    TrainOptions o = BaseOptions(base, dir.path() + "/" + TrainMethodName(method));
    o.method = method;
    o.learning_rate = 3e-3;
    o.max_steps = 25;
    o.batch_size = 4;
    o.beta = 0.1;

    TrainOptions eval = o;
    eval.reference_model = base;
    auto before = EvaluatePreferenceLoss(eval, held_out);
    ASSERT_TRUE(before.ok()) << before.status().ToString();
    EXPECT_EQ(before->reward_margin, 0);  // the policy is its own reference
    if (method == TrainMethod::kDpo) {
      EXPECT_NEAR(before->loss, std::log(2.0), 1e-12);
    }

    TrainData data;
    data.pairs = YesNoPairs({"apple", "table", "green", "house", "music", "paper", "chair", "water",
                             "light", "bread", "smile", "train"});
    auto result = Train(o, data, nullptr, nullptr);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_GT(result->last.accuracy, 0.5);
    EXPECT_TRUE(std::filesystem::exists(o.output_dir + "/reference_logps.safetensors"));

    eval.base_model = result->final_model;
    auto after = EvaluatePreferenceLoss(eval, held_out);
    ASSERT_TRUE(after.ok()) << after.status().ToString();
    EXPECT_GT(after->reward_margin, 0.1) << TrainMethodName(method);
    EXPECT_EQ(after->accuracy, 1.0) << TrainMethodName(method);
    EXPECT_LT(after->loss, before->loss) << TrainMethodName(method);
    // The report's per-pair values agree with its own summary.
    double margin = 0;
    for (size_t i = 0; i < held_out.size(); ++i) {
      margin += 0.1 * ((after->policy_chosen[i] - after->reference_chosen[i]) -
                       (after->policy_rejected[i] - after->reference_rejected[i]));
    }
    EXPECT_NEAR(margin / held_out.size(), after->reward_margin, 1e-9);
  }
}

// Everything but tokens/s, which depends on the machine's speed.
std::vector<nlohmann::json> Deterministic(std::vector<nlohmann::json> lines) {
  for (auto& l : lines) l.erase("tokens_per_s");
  return lines;
}

TEST(ResumeTest, KilledRunResumesToBitIdenticalWeights) {
  TempDir dir;
  const std::string base = testing::SaveRandomModel(dir.path(), testing::TrainConfig(), 4);
  TrainData data;
  data.pairs = YesNoPairs({"a1", "b2", "c3", "d4", "e5", "f6"});
  TrainOptions o = BaseOptions(base, dir.path() + "/straight");
  o.method = TrainMethod::kDpo;
  o.learning_rate = 2e-3;
  o.epochs = 2;  // 3 steps per epoch
  o.batch_size = 2;
  o.warmup_steps = 2;
  o.weight_decay = 0.1;
  o.checkpoint_every = 2;
  auto straight = Train(o, data, nullptr, nullptr);
  ASSERT_TRUE(straight.ok()) << straight.status().ToString();
  EXPECT_EQ(straight->steps, 6);

  TrainOptions killed = o;
  killed.output_dir = dir.path() + "/killed";
  killed.halt_after_step = 3;  // dies after step 3; checkpoint-2 is the newest
  auto first = Train(killed, data, nullptr, nullptr);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->interrupted);
  EXPECT_EQ(LogLines(killed.output_dir).size(), 3u);
  EXPECT_FALSE(std::filesystem::exists(killed.output_dir + "/checkpoint-3"));

  killed.halt_after_step = 0;
  std::vector<std::string> notes;
  auto second = Train(
      killed, data,
      [&](const TrainProgress& p) {
        if (!p.is_step) notes.push_back(p.note);
      },
      nullptr);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  // The reference log-probs come from the cache, not from a model that has moved on.
  EXPECT_TRUE(std::any_of(notes.begin(), notes.end(), [](const std::string& n) {
    return n.find("reference log-probs: reusing") != std::string::npos;
  }));
  EXPECT_EQ(second->resumed_from, 2);
  EXPECT_EQ(second->steps, 6);
  EXPECT_EQ(testing::FileBytes(killed.output_dir + "/final/model.safetensors"),
            testing::FileBytes(o.output_dir + "/final/model.safetensors"));
  EXPECT_EQ(Deterministic(LogLines(killed.output_dir)), Deterministic(LogLines(o.output_dir)));

  // Done: running it again does nothing; other options are refused.
  auto again = Train(killed, data, nullptr, nullptr);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->already_complete);
  TrainOptions other = killed;
  other.learning_rate = 1e-3;
  auto refused = Train(other, data, nullptr, nullptr);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("learning_rate"), std::string::npos);
}

TEST(ResumeTest, StopFlagCheckpointsAndLoraDropoutRunResumesIdentically) {
  TempDir dir;
  const std::string base = testing::SaveRandomModel(dir.path(), testing::TrainConfig(), 5);
  TrainData data;
  data.examples = {{"a", {User("one"), Assistant("uno")}},
                   {"b", {User("two"), Assistant("dos")}},
                   {"c", {User("three"), Assistant("tres")}}};
  TrainOptions o = BaseOptions(base, dir.path() + "/straight");
  o.learning_rate = 1e-2;
  o.max_steps = 5;
  o.batch_size = 1;
  o.grad_accum = 2;
  o.lora.rank = 4;
  o.lora.dropout = 0.2;
  o.lora.targets = {"wq", "wv", "w1", "w2"};
  auto straight = Train(o, data, nullptr, nullptr);
  ASSERT_TRUE(straight.ok()) << straight.status().ToString();

  TrainOptions stopped = o;
  stopped.output_dir = dir.path() + "/stopped";
  std::atomic<bool> stop{false};
  auto first = Train(
      stopped, data,
      [&](const TrainProgress& p) {
        if (p.is_step && p.step.step == 3) stop = true;
      },
      &stop);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->interrupted);
  EXPECT_EQ(first->last_checkpoint, stopped.output_dir + "/checkpoint-3");
  auto second = Train(stopped, data, nullptr, nullptr);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->resumed_from, 3);
  EXPECT_EQ(testing::FileBytes(stopped.output_dir + "/final/model.safetensors"),
            testing::FileBytes(o.output_dir + "/final/model.safetensors"));
}

// With LoRA only the adapted projections change, and only through the adapters.
TEST(LoraTest, OnlyTargetProjectionsChange) {
  TempDir dir;
  const std::string base = testing::SaveRandomModel(dir.path(), testing::TrainConfig(), 6);
  TrainOptions o = BaseOptions(base, dir.path() + "/run");
  o.learning_rate = 2e-2;
  o.max_steps = 3;
  o.lora.rank = 2;
  o.lora.targets = {"wk", "w3"};
  TrainData data;
  data.examples = {{"a", {User("x"), Assistant("y")}}};
  auto result = Train(o, data, nullptr, nullptr);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->trainable_parameters, 2 * (2 * (32 + 16) + 2 * (32 + 48)));

  auto before = engine::OpenWeights(base);
  auto after = engine::OpenWeights(result->final_model);
  ASSERT_TRUE(before.ok() && after.ok());
  int changed = 0;
  for (const std::string& name : CanonicalTensorNames((*before)->config())) {
    auto a = (*before)->Get(name);
    auto b = (*after)->Get(name);
    ASSERT_TRUE(a.ok() && b.ok()) << name;
    const std::string role = name.substr(name.rfind('.') + 1);
    if (role == "wk" || role == "w3") {
      EXPECT_NE(a->data, b->data) << name;
      ++changed;
    } else {
      EXPECT_EQ(a->data, b->data) << name;
    }
  }
  EXPECT_EQ(changed, 4);
}

// --- bad input -------------------------------------------------------------------------------

class TrainErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = testing::SaveRandomModel(dir_.path(), testing::TrainConfig(), 7);
  }
  Status Run(TrainOptions o, const TrainData& data) {
    if (o.base_model.empty()) o.base_model = base_;
    if (o.output_dir.empty()) o.output_dir = dir_.path() + "/run";
    return Train(o, data, nullptr, nullptr).status();
  }
  static void ExpectError(const Status& s, const std::string& text) {
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
    EXPECT_NE(s.message().find(text), std::string::npos) << s.ToString();
  }
  TempDir dir_;
  std::string base_;
};

TEST_F(TrainErrorsTest, EmptyData) {
  ExpectError(Run(TrainOptions{}, TrainData{}), "training data is empty");
  TrainOptions dpo;
  dpo.method = TrainMethod::kDpo;
  ExpectError(Run(dpo, TrainData{}), "at least one preference pair");
}

TEST_F(TrainErrorsTest, ExampleWithoutAReply) {
  TrainData data;
  data.examples = {{"good", {User("a"), Assistant("b")}}, {"bad", {System("s"), User("a")}}};
  ExpectError(Run(TrainOptions{}, data), "example 2 (id \"bad\"): no assistant message");
  TrainOptions dpo;
  dpo.method = TrainMethod::kDpo;
  TrainData pairs;
  pairs.pairs = {Pair("p1", "q", "yes", "")};
  ExpectError(Run(dpo, pairs), "pair 1 (id \"p1\"): the rejected reply is empty");
  pairs.pairs = {Pair("p1", "q", "yes", "no")};
  pairs.pairs[0].prompt.push_back(Assistant("earlier"));
  ExpectError(Run(dpo, pairs), "ends with a assistant message");
}

TEST_F(TrainErrorsTest, BadOptions) {
  TrainData data;
  data.examples = {{"a", {User("a"), Assistant("b")}}};
  TrainOptions lora;
  lora.lora.rank = 4;
  lora.lora.targets = {"wq", "wz"};
  ExpectError(Run(lora, data), "lora target \"wz\"");
  TrainOptions batch;
  batch.batch_size = 0;
  ExpectError(Run(batch, data), "batch_size");
  TrainOptions device;
  device.device = "tpu";
  ExpectError(Run(device, data), "not one of cpu, cuda");
  TrainOptions tmpl;
  tmpl.chat_template = "jinja2";
  ExpectError(Run(tmpl, data), "unknown chat template");
  TrainData both = data;
  both.pairs = {Pair("p", "q", "a", "b")};
  ExpectError(Run(TrainOptions{}, both), "preference pairs were given");
  TrainOptions missing;
  missing.base_model = dir_.path() + "/nowhere";
  EXPECT_EQ(Run(missing, data).code(), StatusCode::kNotFound);
}

TEST_F(TrainErrorsTest, MismatchedTokenizer) {
  engine::ModelConfig small = testing::TrainConfig();
  small.vocab_size = 200;  // the tokenizer has 259 tokens
  const std::string model = testing::SaveRandomModel(dir_.path(), small, 8, "small");
  TrainOptions o;
  o.base_model = model;
  TrainData data;
  data.examples = {{"a", {User("a"), Assistant("b")}}};
  ExpectError(Run(o, data), "mismatched tokenizer");
}

// --- init, scoring, GGUF ---------------------------------------------------------------------

TEST(InitModelTest, WritesAModelTheEngineAndTrainerLoad) {
  TempDir dir;
  const std::string tok = dir.path() + "/tok";
  testing::WriteChatmlTokenizer(tok);
  InitModelOptions o;
  o.shape.hidden_size = 64;
  o.shape.n_layers = 2;
  o.shape.n_heads = 4;
  o.shape.n_kv_heads = 2;
  o.shape.context_length = 128;
  o.tokenizer_dir = tok;
  o.output_dir = dir.path() + "/new";
  o.seed = 9;
  ASSERT_TRUE(InitModel(o).ok());
  auto weights = engine::OpenWeights(o.output_dir);
  ASSERT_TRUE(weights.ok()) << weights.status().ToString();
  const engine::ModelConfig& c = (*weights)->config();
  EXPECT_EQ(c.vocab_size, 259);  // the tokenizer's
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.ffn_size, 192);  // 8/3 * 64 = 170.7, rounded up to 192
  auto stddev = [&](const std::string& name) {
    auto t = (*weights)->Get(name);
    double s = 0;
    for (float v : t->data) s += static_cast<double>(v) * v;
    return std::sqrt(s / t->data.size());
  };
  EXPECT_NEAR(stddev("layers.0.wq"), 0.02, 0.002);
  EXPECT_NEAR(stddev("layers.1.w2"), 0.02 / 2, 0.001);  // / sqrt(2 * 2 layers)
  EXPECT_EQ((*weights)->Get("norm")->data, std::vector<float>(64, 1.0f));
  EXPECT_TRUE(LoadEngine(o.output_dir, EngineOptions{}).ok());

  auto again = InitModel(o);
  EXPECT_EQ(again.code(), StatusCode::kInvalidArgument);
  InitModelOptions small = o;
  small.output_dir = dir.path() + "/small";
  small.shape.vocab_size = 100;
  EXPECT_NE(InitModel(small).message().find("smaller than the tokenizer"), std::string::npos);
}

// ScoreReplies sums log-softmax of the engine's own logits over the reply's tokens.
TEST(ScoreTest, MatchesTheEnginesLogits) {
  TempDir dir;
  const std::string model = testing::SaveRandomModel(dir.path(), testing::TrainConfig(), 10);
  const std::vector<Message> prompt = {User("what is up")};
  auto scores = ScoreReplies(model, {{prompt, "all good"}, {prompt, "no"}}, ScoreOptions{});
  ASSERT_TRUE(scores.ok()) << scores.status().ToString();
  ASSERT_EQ(scores->size(), 2u);

  auto codec = LoadChatCodec(model, "", "llama", 260);
  ASSERT_TRUE(codec.ok());
  auto weights = engine::OpenWeights(model);
  auto net = engine::Transformer::Create(**weights, engine::TransformerOptions{});
  ASSERT_TRUE(net.ok());
  for (int k = 0; k < 2; ++k) {
    auto seq = EncodeReply(*codec, prompt, k == 0 ? "all good" : "no", 128, "x");
    ASSERT_TRUE(seq.ok());
    auto logits = (*net)->ForwardFull(seq->tokens);
    ASSERT_TRUE(logits.ok());
    double expected = 0;
    for (size_t t = 1; t < seq->tokens.size(); ++t) {
      if (!seq->target[t]) continue;
      const float* row = logits->data() + (t - 1) * 260;
      double z = 0;
      for (int v = 0; v < 260; ++v) z += std::exp(static_cast<double>(row[v]));
      expected += row[seq->tokens[t]] - std::log(z);
    }
    EXPECT_NEAR((*scores)[k].logprob, expected, 1e-3);
    EXPECT_EQ((*scores)[k].tokens, seq->target_count());
  }
  EXPECT_EQ((*scores)[1].tokens, 3);  // "no" + <|im_end|>
}

// A GGUF base trains into GGUF checkpoints that carry its tokenizer and load in the engine.
TEST(GgufBaseTest, CheckpointsAreGgufFilesTheEngineLoads) {
  BF_SHARED_DATA_FILE(gguf, "tinyllamas-stories260K/stories260K.gguf");
  TempDir dir;
  TrainOptions o = BaseOptions(gguf, dir.path() + "/run");
  o.learning_rate = 1e-3;
  o.max_steps = 2;
  o.checkpoint_every = 1;
  o.max_seq_len = 64;
  TrainData data;
  data.examples = {{"a", {User("Once upon a time"), Assistant("there was a cat.")}}};
  auto result = Train(o, data, nullptr, nullptr);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->final_model, o.output_dir + "/final/model.gguf");
  EXPECT_TRUE(std::filesystem::exists(o.output_dir + "/checkpoint-1/model.gguf"));
  auto engine = LoadEngine(result->final_model, EngineOptions{});
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  EXPECT_EQ((*engine)->tokenizer().vocab_size(), 512);

  auto before = engine::OpenWeights(gguf);
  auto after = engine::OpenWeights(result->final_model);
  ASSERT_TRUE(before.ok() && after.ok()) << after.status().ToString();
  EXPECT_EQ((*after)->config().rope_style, engine::RopeStyle::kInterleaved);
  EXPECT_NE((*before)->Get("layers.0.wq")->data, (*after)->Get("layers.0.wq")->data);
}

}  // namespace
}  // namespace breakfix::train
