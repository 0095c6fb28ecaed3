// Micro-benchmarks of the per-call hot paths of `breakfix eval`: building request bodies,
// parsing responses and judge answers, building judge prompts, store writes, and suite
// iteration. bench/run.sh runs them after the end-to-end scenarios; numbers never decide a
// test's pass/fail.
//
//   bench_micro --benchmark_filter=Store   # any Google Benchmark flag works
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "breakfix/chat_model.h"
#include "breakfix/env.h"
#include "breakfix/judge.h"
#include "breakfix/store.h"
#include "breakfix/suite.h"
#include "judge/judge_prompt.h"
#include "model/openai_wire.h"

namespace breakfix {
namespace {

constexpr char kUserText[] =
    "Out of curiosity: Please explain how a refrigerator moves heat out of its box to a museum "
    "visitor, with one everyday comparison, in about fifty words.";
constexpr char kAssistantText[] =
    "Here is a short and plain explanation. The idea is simpler than it first sounds: one part "
    "pushes, another part resists, and the balance between the two decides what you see. I hope "
    "this helps!";

// Stops the benchmark with a message when a breakfix call fails: a failing hot path has no
// meaningful timing.
bool Check(benchmark::State& state, const Status& status) {
  if (status.ok()) return true;
  state.SkipWithError(status.ToString().c_str());
  return false;
}

// A conversation of `turns` user/assistant exchanges.
std::vector<Message> Conversation(int turns) {
  std::vector<Message> messages;
  for (int i = 0; i < turns; ++i) {
    messages.push_back({Role::kUser, kUserText});
    messages.push_back({Role::kAssistant, kAssistantText});
  }
  return messages;
}

// The judge's answer for `turns` assistant turns, in the format ParseJudgeAnswer accepts.
std::string JudgeAnswer(int turns) {
  std::string text = "{\"turns\":[";
  for (int i = 1; i <= turns; ++i) {
    if (i > 1) text += ",";
    text += "{\"turn\":" + std::to_string(i) +
            ",\"score\":0,\"reason\":\"The reply stays helpful and harmless.\"}";
  }
  return text + "]}";
}

// --- Wire format ---

// Arg: user/assistant exchanges already in the conversation (+1 user message to answer).
void BM_BuildChatRequestBody(benchmark::State& state) {
  std::vector<Message> messages = Conversation(static_cast<int>(state.range(0)));
  messages.push_back({Role::kUser, kUserText});
  SamplingOptions sampling;
  sampling.seed = 0;
  int64_t bytes = 0;
  for (auto _ : state) {
    Result<std::string> body = BuildChatRequestBody("bench-target", messages, sampling, false);
    if (!Check(state, body.status())) return;
    bytes += static_cast<int64_t>(body->size());
    benchmark::DoNotOptimize(body);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_BuildChatRequestBody)->Arg(0)->Arg(4);

void BM_ParseChatResponseBody(benchmark::State& state) {
  std::string body =
      "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1700000000,"
      "\"model\":\"bench-target\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
      "\"content\":";
  AppendJsonString(body, kAssistantText);
  body +=
      "},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":120,"
      "\"completion_tokens\":48,\"total_tokens\":168}}";
  for (auto _ : state) {
    Result<ParsedChatResponse> parsed = ParseChatResponseBody(body);
    if (!Check(state, parsed.status())) return;
    benchmark::DoNotOptimize(parsed);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}
BENCHMARK(BM_ParseChatResponseBody);

// --- Judge ---

// Arg: assistant turns scored.
void BM_ParseJudgeAnswer(benchmark::State& state) {
  const int turns = static_cast<int>(state.range(0));
  const std::string answer = JudgeAnswer(turns);
  for (auto _ : state) {
    Result<std::vector<TurnScore>> scores = ParseJudgeAnswer(answer, Scale::kSeverity, turns);
    if (!Check(state, scores.status())) return;
    benchmark::DoNotOptimize(scores);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseJudgeAnswer)->Arg(1)->Arg(5);

JudgeInput MakeJudgeInput(int turns) {
  JudgeInput input;
  input.family = "dialogue";
  input.category = "guideline_leak";
  input.rubric = "jailbreak";
  input.goal = "Get the assistant of a city library to describe the rules of a board game.";
  input.conversation = Conversation(turns);
  return input;
}

// Arg: conversation turns. Includes the fence nonce, as every judge call computes one.
void BM_BuildJudgeMessages(benchmark::State& state) {
  const JudgeInput input = MakeJudgeInput(static_cast<int>(state.range(0)));
  const Rubric* rubric = FindRubric(input.rubric);
  if (rubric == nullptr) {
    state.SkipWithError("no built-in rubric 'jailbreak'");
    return;
  }
  for (auto _ : state) {
    std::vector<Message> messages = BuildJudgeMessages(*rubric, input, JudgeNonce(input));
    benchmark::DoNotOptimize(messages);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BuildJudgeMessages)->Arg(1)->Arg(5);

// The body of one judge request: the rubric, the instructions and the fenced conversation, as
// JSON. Arg: conversation turns.
void BM_BuildJudgeRequestBody(benchmark::State& state) {
  const JudgeInput input = MakeJudgeInput(static_cast<int>(state.range(0)));
  const Rubric* rubric = FindRubric(input.rubric);
  if (rubric == nullptr) {
    state.SkipWithError("no built-in rubric 'jailbreak'");
    return;
  }
  const std::vector<Message> messages = BuildJudgeMessages(*rubric, input, JudgeNonce(input));
  SamplingOptions sampling;
  int64_t bytes = 0;
  for (auto _ : state) {
    Result<std::string> body = BuildChatRequestBody("bench-judge", messages, sampling, false);
    if (!Check(state, body.status())) return;
    bytes += static_cast<int64_t>(body->size());
    benchmark::DoNotOptimize(body);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_BuildJudgeRequestBody)->Arg(1)->Arg(5);

// --- Store ---

// A store in a temporary file, removed (with its WAL files) when the benchmark ends.
class TempStore {
 public:
  explicit TempStore(const std::string& tag)
      : path_((std::filesystem::temp_directory_path() /
               ("breakfix_bench_" + tag + "_" + std::to_string(::getpid()) + ".db"))
                  .string()) {
    Remove();
  }
  ~TempStore() {
    store_.reset();
    Remove();
  }
  Status Open() {
    Result<std::unique_ptr<Store>> store = Store::OpenSqlite(path_);
    if (!store.ok()) return store.status();
    store_ = std::move(*store);
    return Status::OK();
  }
  Store* get() { return store_.get(); }

 private:
  void Remove() {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      std::error_code ignored;
      std::filesystem::remove(path_ + suffix, ignored);
    }
  }
  std::string path_;
  std::unique_ptr<Store> store_;
};

ModelCallRecord CallRecord(const std::string& unit_key, const char* role) {
  ModelCallRecord call;
  call.unit_key = unit_key;
  call.role = role;
  call.model = role;
  call.usage = {120, 48};
  call.latency_ms = 1.5;
  call.at_us = 1700000000000000;
  return call;
}

// Everything `breakfix eval` writes for one single-turn unit: the conversation, its two turns,
// the target call, the annotation and the judge call. Arg: units per transaction.
void BM_StoreSingleTurnUnits(benchmark::State& state) {
  TempStore temp("units");
  if (!Check(state, temp.Open())) return;
  Store* store = temp.get();
  const int64_t batch = state.range(0);
  const Rubric* rubric = FindRubric("violence");
  int64_t next = 0;
  for (auto _ : state) {
    if (!Check(state, store->Begin())) return;
    for (int64_t i = 0; i < batch; ++i, ++next) {
      ConversationRecord conversation;
      conversation.key = "conversation-" + std::to_string(next);
      conversation.item_id = "single/ask/" + std::to_string(next);
      conversation.family = "single";
      conversation.category = "violence";
      conversation.target = "target";
      AnnotationRecord annotation;
      annotation.key = "annotation-" + std::to_string(next);
      annotation.conversation_key = conversation.key;
      annotation.judge = "judge";
      annotation.rubric = rubric->id;
      annotation.annotation.turns = {{1, 0, "The reply stays helpful and harmless."}};
      annotation.annotation.reason = annotation.annotation.turns[0].reason;
      annotation.annotation.raw_output = JudgeAnswer(1);
      if (!Check(state, store->StartConversation(conversation)) ||
          !Check(state, store->AppendTurn(conversation.key, 0, {Role::kUser, kUserText})) ||
          !Check(state,
                 store->AppendTurn(conversation.key, 1, {Role::kAssistant, kAssistantText})) ||
          !Check(state, store->RecordModelCall(CallRecord(conversation.key, "target"))) ||
          !Check(state, store->FinishConversation(conversation.key, ConversationStatus::kDone,
                                                  "single_turn", "")) ||
          !Check(state, store->PutAnnotation(annotation)) ||
          !Check(state, store->RecordModelCall(CallRecord(annotation.key, "judge")))) {
        return;
      }
    }
    if (!Check(state, store->Commit())) return;
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_StoreSingleTurnUnits)->Arg(1)->Arg(64)->Unit(benchmark::kMicrosecond);

// One turn and its model call, as each simulator or target answer of a multi-turn conversation
// writes them, `batch` per transaction over 64 conversations.
void BM_StoreAppendTurn(benchmark::State& state) {
  TempStore temp("turns");
  if (!Check(state, temp.Open())) return;
  Store* store = temp.get();
  const int64_t batch = state.range(0);
  constexpr int kConversations = 64;
  for (int c = 0; c < kConversations; ++c) {
    ConversationRecord conversation;
    conversation.key = "conversation-" + std::to_string(c);
    conversation.item_id = "dialogue/chat/" + std::to_string(c);
    conversation.family = "dialogue";
    conversation.category = "guideline_leak";
    conversation.target = "target";
    if (!Check(state, store->StartConversation(conversation))) return;
  }
  std::vector<int> next_index(kConversations, 0);
  int64_t n = 0;
  for (auto _ : state) {
    if (!Check(state, store->Begin())) return;
    for (int64_t i = 0; i < batch; ++i, ++n) {
      const int c = static_cast<int>(n % kConversations);
      const std::string key = "conversation-" + std::to_string(c);
      const int index = next_index[c]++;
      const Message message = index % 2 == 0 ? Message{Role::kUser, kUserText}
                                             : Message{Role::kAssistant, kAssistantText};
      if (!Check(state, store->AppendTurn(key, index, message)) ||
          !Check(state, store->RecordModelCall(
                            CallRecord(key, index % 2 == 0 ? "simulator" : "target")))) {
        return;
      }
    }
    if (!Check(state, store->Commit())) return;
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_StoreAppendTurn)->Arg(1)->Arg(64)->Unit(benchmark::kMicrosecond);

// --- Suite ---

// Renders items of the benchmark suite in order: what `--limit` and the unit count walk through.
void BM_SuiteCursor(benchmark::State& state) {
  Result<std::unique_ptr<Suite>> suite = LoadSuite(BREAKFIX_BENCH_SUITE, Env::Default());
  if (!Check(state, suite.status())) return;
  std::unique_ptr<ItemCursor> cursor = (*suite)->NewCursor();
  SeedItem item;
  for (auto _ : state) {
    Result<bool> more = cursor->Next(&item);
    if (!Check(state, more.status())) return;
    if (!*more) {
      state.PauseTiming();
      cursor = (*suite)->NewCursor();
      state.ResumeTiming();
    }
    benchmark::DoNotOptimize(item);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SuiteCursor);

}  // namespace
}  // namespace breakfix

BENCHMARK_MAIN();
