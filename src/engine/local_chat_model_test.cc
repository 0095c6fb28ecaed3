// NewLocalChatModel: the ChatModel contract (one callback per call, usage, identity, errors as
// Status codes) over an in-process engine.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "breakfix/chat_model.h"
#include "breakfix/engine.h"
#include "engine/batching_engine.h"
#include "engine/test_models.h"

namespace breakfix::engine {
namespace {

using testing::ByteTokenizer;
using testing::MemoryWeights;
using testing::ScriptedTransformer;
using testing::TinyConfig;

// The phi3 template renders "<|user|>\n...": the scripted model keys on the prompt's second
// token, the newline.
std::shared_ptr<Engine> ScriptedEngine(const std::string& reply, int slots = 2, int context = 256,
                                       ScriptedTransformer** raw = nullptr) {
  auto t = std::make_unique<ScriptedTransformer>(std::map<int32_t, std::string>{{'\n', reply}},
                                                 slots, context);
  if (raw != nullptr) *raw = t.get();
  EngineParts parts;
  parts.transformer = std::move(t);
  parts.tokenizer = std::make_unique<ByteTokenizer>();
  parts.chat_template = ChatTemplateKind::kPhi3;
  parts.eos_text = "</s>";
  parts.info.model_id = "scripted.gguf";
  parts.info.content_hash = "0123456789abcdef";
  return NewBatchingEngine(std::move(parts));
}

ChatRequest Ask(const std::string& text, int max_tokens = 64) {
  ChatRequest r;
  r.messages = {{Role::kUser, text}};
  r.sampling.max_tokens = max_tokens;
  return r;
}

TEST(LocalChatModelTest, AnswersWithUsageModelAndIdentity) {
  auto engine = ScriptedEngine("Hi there!");
  auto model = NewLocalChatModel(engine, "phi3-local");
  EXPECT_EQ(model->name(), "phi3-local");
  EXPECT_EQ(model->Identity(),
            "local/scripted.gguf/0123456789abcdef?chat_template=phi3&context_length=256");
  const ChatRequest request = Ask("Hello?");
  auto r = model->ChatSync(request);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->message.role, Role::kAssistant);
  EXPECT_EQ(r->message.content, "Hi there!");
  EXPECT_EQ(r->finish_reason, "stop");
  EXPECT_EQ(r->usage.prompt_tokens,
            static_cast<int64_t>(engine->EncodeChat(request.messages).size()));
  EXPECT_EQ(r->usage.completion_tokens, 10);  // nine bytes and </s>
  EXPECT_EQ(r->model, "scripted.gguf");
  EXPECT_EQ(r->attempts, 1);
  EXPECT_GE(r->latency_ms, 0);
  EXPECT_FALSE(r->system_fingerprint.empty());

  // Without a name the model id stands in; the identity does not depend on the name.
  auto unnamed = NewLocalChatModel(engine, "");
  EXPECT_EQ(unnamed->name(), "scripted.gguf");
  EXPECT_EQ(unnamed->Identity(), model->Identity());
}

TEST(LocalChatModelTest, SamplingOptionsReachTheEngine) {
  auto engine = ScriptedEngine("First line.\nSecond line.");
  auto model = NewLocalChatModel(engine, "m");
  auto cut = model->ChatSync(Ask("go", 5));
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(cut->message.content, "First");
  EXPECT_EQ(cut->finish_reason, "length");
  EXPECT_EQ(cut->usage.completion_tokens, 5);
  ChatRequest stop = Ask("go");
  stop.sampling.stop = {"\n"};
  auto stopped = model->ChatSync(stop);
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(stopped->message.content, "First line.");
  EXPECT_EQ(stopped->finish_reason, "stop");
}

TEST(LocalChatModelTest, ErrorsBecomeStatusCodes) {
  ScriptedTransformer* raw = nullptr;
  auto engine = ScriptedEngine("abc", 1, 32, &raw);
  auto model = NewLocalChatModel(engine, "m");
  // Longer than the context: rejected before it reaches the engine.
  auto too_long = model->ChatSync(Ask(std::string(100, 'x')));
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(too_long.status().message().find("context of 32 tokens"), std::string::npos)
      << too_long.status().message();
  // A failing forward pass.
  raw->set_fail(true);
  auto failed = model->ChatSync(Ask("hi"));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kInternal);
  EXPECT_NE(failed.status().message().find("scripted failure"), std::string::npos);
  raw->set_fail(false);
  // Bad sampling settings.
  ChatRequest bad = Ask("hi");
  bad.sampling.top_p = 0;
  auto rejected = model->ChatSync(bad);
  ASSERT_FALSE(rejected.ok());
  EXPECT_NE(rejected.status().message().find("top_p"), std::string::npos);
  EXPECT_TRUE(model->ChatSync(Ask("hi")).ok());
}

TEST(LocalChatModelTest, ACallCancelledByShutdownReportsCancelled) {
  auto engine = ScriptedEngine(std::string(200, 'a'), 1, 256);
  auto model = NewLocalChatModel(engine, "m");
  // A direct generation holds the only slot; the chat call waits in the queue behind it. The
  // first event of the direct generation shuts the engine down, cancelling both.
  std::promise<Result<ChatResponse>> chat_result;
  std::atomic<bool> once{false};
  std::promise<void> direct_done;
  std::vector<int32_t> prompt = engine->EncodeChat({{Role::kUser, "x"}});
  std::promise<void> queued;
  std::shared_future<void> chat_queued = queued.get_future().share();
  engine->Submit(prompt, GenerationParams{}, [&](const GenerationEvent& e) {
    if (!e.done && !once.exchange(true)) {
      chat_queued.wait();
      engine->Shutdown(/*finish_in_flight=*/false);
    }
    if (e.done) direct_done.set_value();
  });
  model->Chat(Ask("y"), [&](Result<ChatResponse> r) { chat_result.set_value(std::move(r)); });
  queued.set_value();
  direct_done.get_future().wait();
  auto r = chat_result.get_future().get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
}

TEST(LocalChatModelTest, ConcurrentCallsFromManyThreadsEachEqualTheirSoloAnswer) {
  MemoryWeights weights(TinyConfig(), 61);
  auto make = [&](int slots) {
    TransformerOptions options;
    options.max_slots = slots;
    options.context_length = 128;
    auto t = Transformer::Create(weights, options);
    EXPECT_TRUE(t.ok());
    EngineParts parts;
    parts.transformer = std::move(t).value();
    parts.tokenizer = std::make_unique<ByteTokenizer>();
    parts.chat_template = ChatTemplateKind::kPhi3;
    parts.info.model_id = "random";
    return std::shared_ptr<Engine>(NewBatchingEngine(std::move(parts)));
  };
  auto shared = make(4);
  // Two roles on one engine.
  auto target = NewLocalChatModel(shared, "target");
  auto judge = NewLocalChatModel(shared, "judge");
  auto solo = NewLocalChatModel(make(1), "solo");
  std::vector<ChatRequest> requests;
  for (int i = 0; i < 16; ++i) {
    ChatRequest r = Ask("question " + std::to_string(i), 8 + i);
    if (i % 2) {
      r.sampling.temperature = 0.7;
      r.sampling.seed = 1000 + i;
    }
    requests.push_back(r);
  }
  std::vector<Result<ChatResponse>> answers(16, Status::Internal("not run"));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < 16; i += 4) answers[i] = (i % 3 ? *target : *judge).ChatSync(requests[i]);
    });
  }
  for (auto& th : threads) th.join();
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(answers[i].ok()) << answers[i].status().ToString();
    auto alone = solo->ChatSync(requests[i]);
    ASSERT_TRUE(alone.ok());
    EXPECT_EQ(answers[i]->message.content, alone->message.content) << i;
    EXPECT_EQ(answers[i]->usage.completion_tokens, alone->usage.completion_tokens) << i;
    EXPECT_EQ(answers[i]->finish_reason, alone->finish_reason) << i;
  }
}

TEST(LocalChatModelSharedDataTest, Stories260KAnswersThroughTheChatInterface) {
  BF_SHARED_DATA_FILE(path, "tinyllamas-stories260K/stories260K.gguf");
  EngineOptions options;
  options.max_batch = 2;
  options.context_length = 512;
  auto engine = LoadEngine(path, options);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  std::shared_ptr<Engine> shared = std::move(engine).value();
  auto model = NewLocalChatModel(shared, "stories");
  EXPECT_EQ(model->Identity().rfind("local/stories260K.gguf/" + shared->info().content_hash, 0), 0u)
      << model->Identity();
  auto r = model->ChatSync(Ask("Tell me a story about a cat.", 40));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->message.content.empty());
  EXPECT_GT(r->usage.prompt_tokens, 5);
  EXPECT_GT(r->usage.completion_tokens, 0);
  EXPECT_LE(r->usage.completion_tokens, 40);
}

}  // namespace
}  // namespace breakfix::engine
