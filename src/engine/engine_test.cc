// The Engine: scheduling, streaming and stopping on scripted and random models; LoadEngine on
// models written here (Hugging Face layout) and on the GGUF files of ../shared/data.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "breakfix/engine.h"
#include "engine/batching_engine.h"
#include "engine/reference_llama.h"
#include "engine/test_models.h"
#include "engine/tokenizer_loader.h"

namespace breakfix::engine {
namespace {

using testing::ByteTokenizer;
using testing::MemoryWeights;
using testing::ScriptedTransformer;
using testing::TempDir;
using testing::TinyConfig;
using testing::WriteChatmlTokenizer;

// Collects one generation's events. Wait() blocks until the final event (the bound only guards
// against a hang; no result depends on time).
class Collector {
 public:
  GenerationCallback Callback() {
    return [this](const GenerationEvent& e) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(e);
      if (e.done) {
        ++finals_;
        cv_.notify_all();
      }
    };
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    ASSERT_TRUE(cv_.wait_for(lock, std::chrono::minutes(2), [&] { return finals_ > 0; }))
        << "no final event";
  }
  std::vector<GenerationEvent> events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  GenerationEvent Final() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_.empty() ? GenerationEvent{} : events_.back();
  }
  std::string Text() const {
    std::string out;
    for (const auto& e : events()) out += e.text;
    return out;
  }
  std::vector<int32_t> Tokens() const {
    std::vector<int32_t> out;
    for (const auto& e : events()) out.insert(out.end(), e.tokens.begin(), e.tokens.end());
    return out;
  }
  std::vector<float> Logprobs() const {
    std::vector<float> out;
    for (const auto& e : events()) out.insert(out.end(), e.logprobs.begin(), e.logprobs.end());
    return out;
  }
  int finals() const {
    std::lock_guard<std::mutex> lock(mu_);
    return finals_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<GenerationEvent> events_;
  int finals_ = 0;
};

bool IsValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<uint8_t>(s[i]);
    int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (int k = 1; k < len; ++k) {
      if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

std::vector<int32_t> Script(char key) { return {ByteTokenizer::kBos, static_cast<uint8_t>(key)}; }

GenerationParams Greedy(int max_tokens) {
  GenerationParams p;
  p.max_tokens = max_tokens;
  return p;
}

std::unique_ptr<Engine> ScriptedEngine(std::map<int32_t, std::string> scripts, int slots = 4,
                                       int context = 256, ScriptedTransformer** raw = nullptr) {
  auto t = std::make_unique<ScriptedTransformer>(std::move(scripts), slots, context);
  if (raw != nullptr) *raw = t.get();
  EngineParts parts;
  parts.transformer = std::move(t);
  parts.tokenizer = std::make_unique<ByteTokenizer>();
  parts.info.model_id = "scripted";
  return NewBatchingEngine(std::move(parts));
}

// Delegates to a real transformer and records the largest decode batch it was given.
class CountingTransformer : public Transformer {
 public:
  explicit CountingTransformer(std::unique_ptr<Transformer> inner) : inner_(std::move(inner)) {}
  const ModelConfig& config() const override { return inner_->config(); }
  int max_slots() const override { return inner_->max_slots(); }
  int context_length() const override { return inner_->context_length(); }
  int64_t parameter_count() const override { return inner_->parameter_count(); }
  Status Forward(const std::vector<SequenceChunk>& chunks,
                 std::vector<std::vector<float>>* logits) override {
    int decode = 0;
    for (const auto& c : chunks) decode += c.tokens.size() == 1 ? 1 : 0;
    max_decode_batch_ = std::max(max_decode_batch_.load(), decode);
    return inner_->Forward(chunks, logits);
  }
  Result<std::vector<float>> ForwardFull(const std::vector<int32_t>& tokens) override {
    return inner_->ForwardFull(tokens);
  }
  int max_decode_batch() const { return max_decode_batch_; }

 private:
  std::unique_ptr<Transformer> inner_;
  std::atomic<int> max_decode_batch_{0};
};

std::unique_ptr<Engine> RandomEngine(const WeightSource& weights, int slots,
                                     CountingTransformer** counter = nullptr) {
  TransformerOptions options;
  options.max_slots = slots;
  options.context_length = 128;
  auto t = Transformer::Create(weights, options);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  if (!t.ok()) return nullptr;
  auto counting = std::make_unique<CountingTransformer>(std::move(t).value());
  if (counter != nullptr) *counter = counting.get();
  EngineParts parts;
  parts.transformer = std::move(counting);
  parts.tokenizer = std::make_unique<ByteTokenizer>();
  parts.info.model_id = "random";
  return NewBatchingEngine(std::move(parts));
}

std::vector<int32_t> RandomBytes(int n, uint64_t seed) {
  Random rng(seed);
  std::vector<int32_t> out(n);
  for (int32_t& t : out) t = static_cast<int32_t>(rng.Below(256));
  return out;
}

struct Outcome {
  std::vector<int32_t> tokens;
  std::string text;
  std::string finish_reason;
  int completion_tokens = 0;
  std::vector<float> logprobs;
};

Outcome Generate(Engine& engine, std::vector<int32_t> prompt, GenerationParams params) {
  Collector c;
  engine.Submit(std::move(prompt), std::move(params), c.Callback());
  c.Wait();
  return {c.Tokens(), c.Text(), c.Final().finish_reason, c.Final().completion_tokens, c.Logprobs()};
}

// --- text streaming and stopping (scripted model) -------------------------------------------

TEST(EngineTest, StreamsTheScriptAndStopsAtEos) {
  auto engine = ScriptedEngine({{'a', "Hello, world"}});
  Collector c;
  engine->Submit(Script('a'), Greedy(100), c.Callback());
  c.Wait();
  EXPECT_EQ(c.Text(), "Hello, world");
  const GenerationEvent last = c.Final();
  EXPECT_TRUE(last.done);
  EXPECT_EQ(last.finish_reason, "stop");
  EXPECT_EQ(last.prompt_tokens, 2);
  EXPECT_EQ(last.completion_tokens, 13);  // 12 bytes and </s>
  EXPECT_EQ(c.Tokens().size(), 12u);      // </s> carries no text
  EXPECT_EQ(c.finals(), 1);
  for (const auto& e : c.events()) EXPECT_TRUE(e.logprobs.empty());
}

TEST(EngineTest, TextDeltasEndOnCharacterBoundaries) {
  const std::string script = "h\xC3\xA9llo \xF0\x9F\x98\x80 w\xC3\xB6rld \xE2\x82\xAC";
  auto engine =
      ScriptedEngine({{'u', script}, {'x', "ok \xFF\xC3(end"}, {'y', "ab\xF0\x9F\x98\x80"}});
  Collector c;
  engine->Submit(Script('u'), Greedy(100), c.Callback());
  c.Wait();
  EXPECT_EQ(c.Text(), script);
  for (const auto& e : c.events()) EXPECT_TRUE(IsValidUtf8(e.text)) << e.text;
  // The 4-byte emoji arrives in one event, with the four tokens behind it.
  bool emoji_whole = false;
  for (const auto& e : c.events()) {
    if (e.text.find("\xF0\x9F\x98\x80") != std::string::npos) emoji_whole = e.tokens.size() >= 4;
  }
  EXPECT_TRUE(emoji_whole);

  // Bytes that are not UTF-8 become U+FFFD, never raw bytes.
  Collector bad;
  engine->Submit(Script('x'), Greedy(100), bad.Callback());
  bad.Wait();
  EXPECT_EQ(bad.Text(), "ok \xEF\xBF\xBD\xEF\xBF\xBD(end");
  // Cut inside a character by max_tokens: the unfinished character becomes U+FFFD.
  Collector cut;
  engine->Submit(Script('y'), Greedy(4), cut.Callback());
  cut.Wait();
  EXPECT_EQ(cut.Text(), "ab\xEF\xBF\xBD");
  EXPECT_EQ(cut.Final().finish_reason, "length");
}

TEST(EngineTest, StopStringsCutTheOutputAndAreNeverStreamed) {
  auto engine = ScriptedEngine({{'a', "The answer is 42.\nUser: and now?"},
                                {'b', "a ST b STO c STOP d"},
                                {'c', "abcdef"},
                                {'d', "no stop here"}});
  GenerationParams p = Greedy(100);
  p.stop = {"\nUser:"};
  Collector c;
  engine->Submit(Script('a'), p, c.Callback());
  c.Wait();
  EXPECT_EQ(c.Text(), "The answer is 42.");
  EXPECT_EQ(c.Final().finish_reason, "stop");
  for (const auto& e : c.events()) EXPECT_EQ(e.text.find('\n'), std::string::npos);
  // Every token sampled is reported, including those behind the cut text.
  EXPECT_EQ(c.Tokens().size(), std::string("The answer is 42.\nUser:").size());

  p.stop = {"STOP"};
  Outcome partial = Generate(*engine, Script('b'), p);
  EXPECT_EQ(partial.text, "a ST b STO c ");
  EXPECT_EQ(partial.finish_reason, "stop");

  p.stop = {"ef", "cd", "bcx"};  // the earliest match wins
  EXPECT_EQ(Generate(*engine, Script('c'), p).text, "ab");

  p.stop = {"zzz"};
  Outcome none = Generate(*engine, Script('d'), p);
  EXPECT_EQ(none.text, "no stop here");
  EXPECT_EQ(none.finish_reason, "stop");  // by </s>
}

TEST(TextAssemblerTest, HoldsBackOnlyWhatMayStartAStopString) {
  TextAssembler t({"<end>"});
  EXPECT_EQ(t.Add("hello <"), "hello ");
  EXPECT_EQ(t.Add("e"), "");
  EXPECT_EQ(t.Add("x"), "<ex");
  EXPECT_EQ(t.Add(" <en"), " ");
  EXPECT_EQ(t.Add("d> after"), "");
  EXPECT_TRUE(t.stopped());
  EXPECT_EQ(t.Add("more"), "");
  TextAssembler u({"<end>"});
  EXPECT_EQ(u.Add("tail <en"), "tail ");
  EXPECT_EQ(u.Flush(), "<en");
  TextAssembler v({});
  EXPECT_EQ(v.Add("\xE2\x82"), "");
  EXPECT_EQ(v.Add("\xAC!"), "\xE2\x82\xAC!");
  EXPECT_EQ(v.Add("\xE2"), "");
  EXPECT_EQ(v.Flush(), "\xEF\xBF\xBD");
  TextAssembler w({});
  EXPECT_EQ(w.Add("\xC0\x80"
                  "a\xED\xA0\x80"),
            "\xEF\xBF\xBD\xEF\xBF\xBD"
            "a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(EngineTest, MaxTokensAndContextEndFinishWithLength) {
  auto engine = ScriptedEngine({{'a', std::string(100, 'x')}}, 2, 10);
  Outcome five = Generate(*engine, Script('a'), Greedy(5));
  EXPECT_EQ(five.text, "xxxxx");
  EXPECT_EQ(five.finish_reason, "length");
  EXPECT_EQ(five.completion_tokens, 5);
  // Context 10 with a prompt of 2: eight tokens fit.
  Outcome ctx = Generate(*engine, Script('a'), Greedy(100));
  EXPECT_EQ(ctx.text, std::string(8, 'x'));
  EXPECT_EQ(ctx.finish_reason, "length");
  EXPECT_EQ(ctx.completion_tokens, 8);
}

TEST(EngineTest, BadSubmissionsGetAnImmediateErrorEvent) {
  auto engine = ScriptedEngine({{'a', "abc"}, {'z', std::string(20, 'z')}}, 2, 10);
  struct Case {
    std::vector<int32_t> prompt;
    GenerationParams params;
    std::string message;
  };
  GenerationParams bad_top_p = Greedy(5);
  bad_top_p.top_p = 0;
  const std::vector<Case> cases = {
      {std::vector<int32_t>(10, 'a'), Greedy(5), "does not fit the context of 10 tokens"},
      {{}, Greedy(5), "the prompt is empty"},
      {{ByteTokenizer::kBos, 300}, Greedy(5), "token 300 at index 1 is outside the vocabulary"},
      {Script('a'), bad_top_p, "top_p"},
      {Script('a'), Greedy(0), "max_tokens"},
  };
  for (const Case& c : cases) {
    bool called = false;
    GenerationEvent got;
    engine->Submit(c.prompt, c.params, [&](const GenerationEvent& e) {
      called = true;
      got = e;
    });
    // Delivered before Submit returned, on the caller's thread.
    ASSERT_TRUE(called) << c.message;
    EXPECT_TRUE(got.done);
    EXPECT_EQ(got.finish_reason, "error");
    EXPECT_NE(got.error.find(c.message), std::string::npos) << got.error;
  }
  // A prompt of exactly context - 1 tokens is accepted and yields one token.
  std::vector<int32_t> fits = Script('z');
  fits.resize(9, 'q');
  Outcome one = Generate(*engine, fits, Greedy(5));
  EXPECT_EQ(one.finish_reason, "length");
  EXPECT_EQ(one.completion_tokens, 1);
}

TEST(EngineTest, ForwardFailureEndsTheSequencesWithAnErrorAndTheEngineRecovers) {
  ScriptedTransformer* t = nullptr;
  auto engine = ScriptedEngine({{'a', "abc"}}, 2, 64, &t);
  t->set_fail(true);
  Outcome failed = Generate(*engine, Script('a'), Greedy(5));
  EXPECT_EQ(failed.finish_reason, "error");
  t->set_fail(false);
  EXPECT_EQ(Generate(*engine, Script('a'), Greedy(5)).text, "abc");
}

TEST(EngineTest, CancelEndsARunningGenerationAndAQueuedOne) {
  auto engine = ScriptedEngine({{'a', std::string(200, 'a')}, {'b', "bbb"}}, 1, 256);
  std::promise<uint64_t> id_promise;
  std::shared_future<uint64_t> id_future = id_promise.get_future().share();
  std::promise<void> ready_promise;
  std::shared_future<void> ready = ready_promise.get_future().share();
  Collector running;
  std::atomic<bool> cancelled_once{false};
  auto inner = running.Callback();
  const uint64_t id = engine->Submit(Script('a'), Greedy(200), [&](const GenerationEvent& e) {
    inner(e);
    if (!e.done && !cancelled_once.exchange(true)) {
      // On the scheduler thread, which holds the only slot: once the second request is queued
      // and cancelled, cancel this one too (callbacks may call back into the engine).
      ready.wait();
      engine->Cancel(id_future.get());
    }
  });
  id_promise.set_value(id);
  Collector queued;
  const uint64_t queued_id = engine->Submit(Script('b'), Greedy(10), queued.Callback());
  engine->Cancel(queued_id);
  engine->Cancel(987654);  // unknown ids are ignored
  ready_promise.set_value();
  running.Wait();
  queued.Wait();
  EXPECT_EQ(queued.Final().finish_reason, "cancelled");
  EXPECT_EQ(queued.Final().completion_tokens, 0);
  EXPECT_EQ(running.Final().finish_reason, "cancelled");
  EXPECT_LT(running.Final().completion_tokens, 200);
  // The engine goes on serving.
  EXPECT_EQ(Generate(*engine, Script('b'), Greedy(10)).text, "bbb");
}

TEST(EngineTest, ShutdownFinishesInFlightWorkOrCancelsIt) {
  {
    auto engine = ScriptedEngine({{'a', "first"}, {'b', "second"}, {'c', "third"}}, 2, 64);
    Collector a, b, c;
    engine->Submit(Script('a'), Greedy(20), a.Callback());
    engine->Submit(Script('b'), Greedy(20), b.Callback());
    engine->Submit(Script('c'), Greedy(20), c.Callback());  // waits for a slot
    engine->Shutdown(/*finish_in_flight=*/true);
    EXPECT_EQ(a.Text(), "first");
    EXPECT_EQ(b.Text(), "second");
    EXPECT_EQ(c.Text(), "third");
    for (Collector* x : {&a, &b, &c}) EXPECT_EQ(x->Final().finish_reason, "stop");
    Collector late;
    engine->Submit(Script('a'), Greedy(20), late.Callback());
    EXPECT_EQ(late.Final().finish_reason, "error");
    EXPECT_NE(late.Final().error.find("shutting down"), std::string::npos);
    engine->Shutdown(false);  // a second call is harmless
  }
  {
    auto engine =
        ScriptedEngine({{'a', std::string(200, 'a')}, {'b', std::string(200, 'b')}}, 1, 256);
    Collector a, b;
    std::atomic<bool> once{false};
    auto inner = a.Callback();
    engine->Submit(Script('a'), Greedy(200), [&](const GenerationEvent& e) {
      inner(e);
      // From a callback, Shutdown(false) cannot wait for the thread it runs on; it takes
      // effect after this step.
      if (!e.done && !once.exchange(true)) engine->Shutdown(/*finish_in_flight=*/false);
    });
    engine->Submit(Script('b'), Greedy(200), b.Callback());
    a.Wait();
    b.Wait();
    EXPECT_EQ(a.Final().finish_reason, "cancelled");
    EXPECT_EQ(b.Final().finish_reason, "cancelled");
    EXPECT_EQ(b.Final().completion_tokens, 0);
  }
}

TEST(EngineTest, DestroyingTheEngineEndsEveryGenerationExactlyOnce) {
  std::vector<std::unique_ptr<Collector>> collectors;
  {
    auto engine = ScriptedEngine({{'a', std::string(250, 'a')}}, 2, 256);
    for (int i = 0; i < 5; ++i) {
      collectors.push_back(std::make_unique<Collector>());
      engine->Submit(Script('a'), Greedy(250), collectors.back()->Callback());
    }
  }
  for (const auto& c : collectors) {
    EXPECT_EQ(c->finals(), 1);
    const std::string reason = c->Final().finish_reason;
    EXPECT_TRUE(reason == "cancelled" || reason == "length") << reason;
  }
}

TEST(EngineTest, CallbacksMaySubmitMoreWork) {
  auto engine = ScriptedEngine({{'a', "one"}, {'b', "two"}}, 1, 64);
  Collector second;
  Collector first;
  auto inner = first.Callback();
  engine->Submit(Script('a'), Greedy(10), [&](const GenerationEvent& e) {
    inner(e);
    if (e.done) engine->Submit(Script('b'), Greedy(10), second.Callback());
  });
  first.Wait();
  second.Wait();
  EXPECT_EQ(second.Text(), "two");
}

// --- sampling and batching on random models ----------------------------------------------

TEST(EngineTest, GreedyGenerationEqualsAGreedyLoopOverFullRecomputation) {
  MemoryWeights weights(TinyConfig(), 31);
  auto engine = RandomEngine(weights, 4);
  ASSERT_NE(engine, nullptr);
  auto reference = Transformer::Create(weights, TransformerOptions{});
  ASSERT_TRUE(reference.ok());
  const std::set<int32_t> stops = {ByteTokenizer::kEos, ByteTokenizer::kEnd};
  for (uint64_t seed : {1, 2, 3}) {
    std::vector<int32_t> seq = RandomBytes(7, seed);
    const size_t prompt_len = seq.size();
    Outcome out = Generate(*engine, seq, Greedy(30));
    std::vector<int32_t> expected;
    std::string reason = "length";
    for (int i = 0; i < 30; ++i) {
      auto logits = (*reference)->ForwardFull(seq);
      ASSERT_TRUE(logits.ok());
      const float* last = logits->data() + (seq.size() - 1) * 260;
      const int32_t next = static_cast<int32_t>(std::max_element(last, last + 260) - last);
      seq.push_back(next);
      if (stops.count(next)) {
        reason = "stop";
        break;
      }
      expected.push_back(next);
    }
    EXPECT_EQ(out.tokens, expected) << "prompt seed " << seed;
    EXPECT_EQ(out.finish_reason, reason);
    EXPECT_EQ(out.completion_tokens, static_cast<int>(seq.size() - prompt_len));
    EXPECT_TRUE(IsValidUtf8(out.text));
  }
}

TEST(EngineTest, SeedsMakeSamplingRepeatableAndTopKOneIsGreedy) {
  MemoryWeights weights(TinyConfig(), 32);
  auto engine = RandomEngine(weights, 4);
  ASSERT_NE(engine, nullptr);
  const std::vector<int32_t> prompt = RandomBytes(5, 9);
  GenerationParams p = Greedy(40);
  p.temperature = 1.0;
  p.seed = 5;
  const Outcome a = Generate(*engine, prompt, p);
  const Outcome b = Generate(*engine, prompt, p);
  p.seed = 6;
  const Outcome c = Generate(*engine, prompt, p);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.text, b.text);
  EXPECT_NE(a.tokens, c.tokens);

  GenerationParams k1 = Greedy(40);
  k1.temperature = 1.3;
  k1.top_k = 1;
  k1.seed = 77;
  EXPECT_EQ(Generate(*engine, prompt, k1).tokens, Generate(*engine, prompt, Greedy(40)).tokens);
}

TEST(EngineTest, LogprobsArePresentPerTokenAndNotPositive) {
  MemoryWeights weights(TinyConfig(), 33);
  auto engine = RandomEngine(weights, 2);
  ASSERT_NE(engine, nullptr);
  GenerationParams p = Greedy(25);
  p.temperature = 0.8;
  p.seed = 1;
  p.logprobs = true;
  Collector c;
  engine->Submit(RandomBytes(6, 4), p, c.Callback());
  c.Wait();
  ASSERT_FALSE(c.Tokens().empty());
  for (const auto& e : c.events()) {
    EXPECT_EQ(e.logprobs.size(), e.tokens.size());
    for (float lp : e.logprobs) {
      EXPECT_LE(lp, 0.0f);
      EXPECT_TRUE(std::isfinite(lp));
    }
  }
  // Greedy picks the most likely token, so its log-probability is the row's largest.
  GenerationParams g = Greedy(10);
  g.logprobs = true;
  Outcome greedy = Generate(*engine, RandomBytes(6, 4), g);
  EXPECT_EQ(greedy.logprobs.size(), greedy.tokens.size());
  for (float lp : greedy.logprobs) EXPECT_GT(lp, std::log(1.0f / 260));
}

// 16 requests from 4 threads into an engine of 4 slots: they queue, join the running batch as
// slots free up, and each must equal the same request run alone.
TEST(EngineTest, SixteenConcurrentRequestsEachEqualTheirSoloRun) {
  MemoryWeights weights(TinyConfig(), 34);
  CountingTransformer* counter = nullptr;
  auto batched = RandomEngine(weights, 4, &counter);
  auto solo = RandomEngine(weights, 1);
  ASSERT_NE(batched, nullptr);
  ASSERT_NE(solo, nullptr);
  struct Request {
    std::vector<int32_t> prompt;
    GenerationParams params;
  };
  std::vector<Request> requests;
  for (int i = 0; i < 16; ++i) {
    Request r;
    r.prompt = RandomBytes(1 + 3 * i, 100 + i);
    r.params = Greedy(6 + i);
    if (i % 2 == 1) {
      r.params.temperature = 0.9;
      r.params.top_p = 0.95;
      r.params.seed = 500 + i;
    }
    if (i % 4 == 3) r.params.stop = {"\x20"};
    requests.push_back(r);
  }
  std::vector<Collector> collectors(16);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < 16; i += 4) {
        batched->Submit(requests[i].prompt, requests[i].params, collectors[i].Callback());
      }
    });
  }
  for (auto& th : threads) th.join();
  for (auto& c : collectors) c.Wait();
  for (int i = 0; i < 16; ++i) {
    const Outcome alone = Generate(*solo, requests[i].prompt, requests[i].params);
    EXPECT_EQ(collectors[i].Tokens(), alone.tokens) << "request " << i;
    EXPECT_EQ(collectors[i].Text(), alone.text) << "request " << i;
    EXPECT_EQ(collectors[i].Final().finish_reason, alone.finish_reason) << "request " << i;
    EXPECT_EQ(collectors[i].Final().completion_tokens, alone.completion_tokens);
  }
  EXPECT_GT(counter->max_decode_batch(), 1) << "requests were never decoded together";
}

// --- LoadEngine: models written here ----------------------------------------------------

// The weights under Hugging Face names; phi3 style fuses q/k/v and gate/up.
std::vector<std::pair<std::string, FloatTensor>> HfTensors(MemoryWeights& w, bool fused) {
  const ModelConfig& c = w.config();
  auto& t = w.tensors();
  std::vector<std::pair<std::string, FloatTensor>> out;
  auto cat = [](std::vector<const FloatTensor*> parts) {
    FloatTensor f;
    f.shape = parts[0]->shape;
    f.shape[0] = 0;
    for (const FloatTensor* p : parts) {
      f.shape[0] += p->shape[0];
      f.data.insert(f.data.end(), p->data.begin(), p->data.end());
    }
    return f;
  };
  out.push_back({"model.embed_tokens.weight", t["tok_embeddings"]});
  out.push_back({"model.norm.weight", t["norm"]});
  if (!c.tied_embeddings) out.push_back({"lm_head.weight", t["output"]});
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    const std::string h = "model.layers." + std::to_string(i) + ".";
    out.push_back({h + "input_layernorm.weight", t[p + "attention_norm"]});
    out.push_back({h + "post_attention_layernorm.weight", t[p + "ffn_norm"]});
    out.push_back({h + "self_attn.o_proj.weight", t[p + "wo"]});
    out.push_back({h + "mlp.down_proj.weight", t[p + "w2"]});
    if (fused) {
      out.push_back(
          {h + "self_attn.qkv_proj.weight", cat({&t[p + "wq"], &t[p + "wk"], &t[p + "wv"]})});
      out.push_back({h + "mlp.gate_up_proj.weight", cat({&t[p + "w1"], &t[p + "w3"]})});
    } else {
      out.push_back({h + "self_attn.q_proj.weight", t[p + "wq"]});
      out.push_back({h + "self_attn.k_proj.weight", t[p + "wk"]});
      out.push_back({h + "self_attn.v_proj.weight", t[p + "wv"]});
      out.push_back({h + "mlp.gate_proj.weight", t[p + "w1"]});
      out.push_back({h + "mlp.up_proj.weight", t[p + "w3"]});
    }
    if (c.qkv_bias) {
      out.push_back({h + "self_attn.q_proj.bias", t[p + "bq"]});
      out.push_back({h + "self_attn.k_proj.bias", t[p + "bk"]});
      out.push_back({h + "self_attn.v_proj.bias", t[p + "bv"]});
    }
  }
  return out;
}

struct SavedModelCase {
  std::string name;
  ModelConfig config;
  bool fused;
};

void PrintTo(const SavedModelCase& c, std::ostream* os) { *os << c.name; }

class SavedModelTest : public ::testing::TestWithParam<SavedModelCase> {};

// A random model written to disk in Hugging Face layout loads back through LoadEngine with the
// same logits as the in-memory model (and as the reference), and generates the same tokens.
TEST_P(SavedModelTest, LoadsBackWithIdenticalLogitsAndGenerations) {
  const SavedModelCase& param = GetParam();
  MemoryWeights weights(param.config, 41);
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  ASSERT_TRUE(WriteSafetensors(dir.path() + "/model.safetensors", HfTensors(weights, param.fused),
                               {{"format", "pt"}})
                  .ok());
  ASSERT_TRUE(WriteHfConfig(dir.path(), param.config).ok());
  WriteChatmlTokenizer(dir.path());

  auto opened = OpenWeights(dir.path());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  const ModelConfig& loaded = (*opened)->config();
  EXPECT_EQ(loaded.architecture, param.config.architecture);
  EXPECT_EQ(loaded.rope_style, RopeStyle::kHalfSplit);
  EXPECT_EQ(loaded.n_kv_heads, param.config.n_kv_heads);
  EXPECT_EQ(loaded.qkv_bias, param.config.qkv_bias);
  EXPECT_EQ(loaded.tied_embeddings, param.config.tied_embeddings);

  const std::vector<int32_t> tokens = RandomBytes(30, 5);
  auto from_disk = Transformer::Create(**opened, TransformerOptions{});
  auto in_memory = Transformer::Create(weights, TransformerOptions{});
  ASSERT_TRUE(from_disk.ok()) << from_disk.status().ToString();
  ASSERT_TRUE(in_memory.ok());
  auto a = (*from_disk)->ForwardFull(tokens);
  auto b = (*in_memory)->ForwardFull(tokens);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b) << "logits differ after a save/load round trip";
  auto reference = ReferenceLlama::Create(**opened, 64);
  ASSERT_TRUE(reference.ok()) << reference.status().ToString();
  auto expected = (*reference)->Run(tokens);
  ASSERT_TRUE(expected.ok());
  float worst = 0;
  for (size_t i = 0; i < expected->size(); ++i)
    worst = std::max(worst, std::abs((*a)[i] - (*expected)[i]));
  EXPECT_LT(worst, 1e-4f);

  EngineOptions options;
  options.max_batch = 2;
  options.context_length = 64;
  auto engine = LoadEngine(dir.path(), options);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  const EngineInfo& info = (*engine)->info();
  EXPECT_EQ(info.architecture, param.config.architecture);
  EXPECT_EQ(info.source_format, "hf");
  EXPECT_EQ(info.model_id, std::filesystem::path(dir.path()).filename().string());
  EXPECT_EQ(info.context_length, 64);
  EXPECT_EQ(info.chat_template, ChatTemplateKind::kChatML);  // detected from the template
  EXPECT_FALSE(info.content_hash.empty());
  EXPECT_EQ(info.parameters, (*in_memory)->parameter_count());

  // The same generation from the loaded engine and from one built on the in-memory weights.
  auto tok = TokenizerFromHfDir(dir.path());
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  TransformerOptions topts;
  topts.max_slots = 2;
  topts.context_length = 64;
  auto memory_transformer = Transformer::Create(weights, topts);
  ASSERT_TRUE(memory_transformer.ok());
  EngineParts parts;
  parts.transformer = std::move(memory_transformer).value();
  parts.tokenizer = std::move(tok->tokenizer);
  auto memory_engine = NewBatchingEngine(std::move(parts));
  const std::vector<int32_t> prompt = (*engine)->EncodeChat({{Role::kUser, "Say something."}});
  ASSERT_FALSE(prompt.empty());
  GenerationParams p = Greedy(12);
  p.logprobs = true;
  const Outcome x = Generate(**engine, prompt, p);
  const Outcome y = Generate(*memory_engine, prompt, p);
  EXPECT_EQ(x.tokens, y.tokens);
  EXPECT_EQ(x.logprobs, y.logprobs);
  EXPECT_EQ(x.text, y.text);
}

ModelConfig Qwen2Config() {
  ModelConfig c = TinyConfig();
  c.architecture = "qwen2";
  c.rope_style = RopeStyle::kHalfSplit;
  c.qkv_bias = true;
  c.tied_embeddings = true;
  c.rope_theta = 1000000.0;
  c.rms_eps = 1e-6;
  return c;
}

ModelConfig Phi3Config() {
  ModelConfig c = TinyConfig();
  c.architecture = "phi3";
  c.rope_style = RopeStyle::kHalfSplit;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  return c;
}

INSTANTIATE_TEST_SUITE_P(Architectures, SavedModelTest,
                         ::testing::Values(SavedModelCase{"qwen2_biases_tied", Qwen2Config(),
                                                          false},
                                           SavedModelCase{"phi3_fused", Phi3Config(), true}),
                         [](const auto& info) { return info.param.name; });

TEST(LoadEngineTest, ErrorsNameWhatIsWrong) {
  EngineOptions bad_batch;
  bad_batch.max_batch = 0;
  auto r = LoadEngine("/nonexistent/model.gguf", bad_batch);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("max_batch"), std::string::npos);
  EngineOptions bad_threads;
  bad_threads.threads = 0;
  EXPECT_NE(LoadEngine("x", bad_threads).status().message().find("threads"), std::string::npos);
  EngineOptions bad_template;
  bad_template.chat_template = "nonsense";
  r = LoadEngine("x", bad_template);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("chat_template"), std::string::npos) << r.status().message();
  r = LoadEngine("/nonexistent/model.gguf", EngineOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("/nonexistent/model.gguf"), std::string::npos);

  // A tokenizer larger than the model's embedding.
  ModelConfig c = Qwen2Config();
  c.vocab_size = 200;
  MemoryWeights weights(c, 1);
  TempDir dir;
  ASSERT_TRUE(
      WriteSafetensors(dir.path() + "/model.safetensors", HfTensors(weights, false), {}).ok());
  ASSERT_TRUE(WriteHfConfig(dir.path(), c).ok());
  WriteChatmlTokenizer(dir.path());
  r = LoadEngine(dir.path(), EngineOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("259 tokens"), std::string::npos) << r.status().message();
}

// --- LoadEngine: ../shared/data ---------------------------------------------------------

std::string ReadTestdata(const std::string& name) {
  std::ifstream in(std::string(BREAKFIX_SOURCE_DIR) + "/src/engine/testdata/" + name,
                   std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing src/engine/testdata/" << name;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(EngineSharedDataTest, Stories260KGreedyFromBosMatchesLlama2c) {
  BF_SHARED_DATA_FILE(path, "tinyllamas-stories260K/stories260K.gguf");
  const std::string expected = ReadTestdata("stories260K_greedy.txt");
  ASSERT_FALSE(expected.empty());
  EngineOptions options;
  options.max_batch = 4;
  auto engine = LoadEngine(path, options);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  const EngineInfo& info = (*engine)->info();
  EXPECT_EQ(info.model_id, "stories260K.gguf");
  EXPECT_EQ(info.architecture, "llama");
  EXPECT_EQ(info.source_format, "gguf");
  EXPECT_EQ(info.vocab_size, 512);
  EXPECT_EQ(info.context_length, 2048);
  EXPECT_FALSE(info.content_hash.empty());
  EXPECT_FALSE(info.description.empty());

  const int32_t bos = (*engine)->tokenizer().bos_id();
  ASSERT_EQ(bos, 1);
  // llama2.c's `run -t 0.0 -n 200` makes 200 forward steps from BOS, printing each token it
  // samples: 200 tokens.
  Outcome out = Generate(**engine, {bos}, Greedy(200));
  EXPECT_EQ(out.text, expected);
  EXPECT_EQ(out.finish_reason, "length");
  EXPECT_EQ(out.completion_tokens, 200);
  EXPECT_EQ((*engine)->tokenizer().Decode(out.tokens, false), expected);

  // Continuous batching on the real model: eight story starts at once equal their solo runs.
  std::vector<std::string> starts = {"Once upon a time", "The cat",     "Lily and Ben",
                                     "One day",          "The sun was", "Tom had a",
                                     "She saw a big",    "He was sad"};
  std::vector<Collector> together(starts.size());
  std::vector<std::vector<int32_t>> prompts;
  for (size_t i = 0; i < starts.size(); ++i) {
    prompts.push_back((*engine)->tokenizer().Encode(starts[i], true, false));
    GenerationParams p = Greedy(40);
    if (i % 2) {
      p.temperature = 0.8;
      p.seed = i;
    }
    (*engine)->Submit(prompts[i], p, together[i].Callback());
  }
  for (auto& c : together) c.Wait();
  for (size_t i = 0; i < starts.size(); ++i) {
    GenerationParams p = Greedy(40);
    if (i % 2) {
      p.temperature = 0.8;
      p.seed = i;
    }
    Outcome alone = Generate(**engine, prompts[i], p);
    EXPECT_EQ(together[i].Tokens(), alone.tokens) << starts[i];
    EXPECT_EQ(together[i].Text(), alone.text) << starts[i];
  }
}

TEST(EngineSharedDataTest, TinyRandomLlama2ChatsAndBatches) {
  BF_SHARED_DATA_FILE(path, "llama-2-tiny-random-gguf/llama-2-tiny-random.gguf");
  EngineOptions options;
  options.max_batch = 4;
  options.context_length = 256;
  auto engine = LoadEngine(path, options);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  EXPECT_EQ((*engine)->info().vocab_size, 32000);
  const std::vector<int32_t> prompt =
      (*engine)->EncodeChat({{Role::kSystem, "Be brief."}, {Role::kUser, "Hello there"}});
  ASSERT_GT(prompt.size(), 3u);
  std::vector<Collector> together(6);
  for (int i = 0; i < 6; ++i) {
    GenerationParams p = Greedy(10 + i);
    p.temperature = i % 2 ? 1.0 : 0.0;
    p.seed = i;
    (*engine)->Submit(prompt, p, together[i].Callback());
  }
  for (auto& c : together) c.Wait();
  for (int i = 0; i < 6; ++i) {
    GenerationParams p = Greedy(10 + i);
    p.temperature = i % 2 ? 1.0 : 0.0;
    p.seed = i;
    Outcome alone = Generate(**engine, prompt, p);
    EXPECT_EQ(together[i].Tokens(), alone.tokens) << i;
    EXPECT_TRUE(IsValidUtf8(together[i].Text()));
  }
}

}  // namespace
}  // namespace breakfix::engine
