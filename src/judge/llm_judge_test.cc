// NewLlmJudge against a scripted fake model: scoring, the re-ask path, unscorable outcomes,
// model failures, accounting and determinism.
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "breakfix/judge.h"
#include "judge/judge_prompt.h"

namespace breakfix {
namespace {

// Answers each Chat() with the next scripted reply: a string is the assistant's content, a
// Status is a failed call. Records every request. With `threaded`, answers from a new thread.
class ScriptedModel final : public ChatModel {
 public:
  using Reply = std::variant<std::string, Status>;
  explicit ScriptedModel(std::vector<Reply> script, bool threaded = false)
      : script_(script.begin(), script.end()), threaded_(threaded) {}
  // Joins every answering thread, including threads started by callbacks that were still
  // running (a re-ask is sent from inside the previous answer's callback).
  ~ScriptedModel() override {
    while (true) {
      std::vector<std::thread> threads;
      {
        std::lock_guard<std::mutex> lock(mu_);
        threads.swap(threads_);
      }
      if (threads.empty()) break;
      for (std::thread& t : threads) t.join();
    }
  }

  const std::string& name() const override { return name_; }
  std::string Identity() const override { return "scripted/judge-v1"; }

  void Chat(ChatRequest request, ChatCallback done) override {
    Result<ChatResponse> result = Status::Internal("script exhausted");
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(request);
      if (!script_.empty()) {
        Reply reply = std::move(script_.front());
        script_.pop_front();
        if (std::holds_alternative<Status>(reply)) {
          result = std::get<Status>(reply);
        } else {
          ChatResponse r;
          r.message = {Role::kAssistant, std::get<std::string>(reply)};
          r.finish_reason = finish_reason_;
          r.usage.prompt_tokens = 100;
          r.usage.completion_tokens = 20;
          r.latency_ms = 12.5;
          result = r;
        }
      }
    }
    if (threaded_) {
      std::lock_guard<std::mutex> lock(mu_);
      threads_.emplace_back([done = std::move(done), result = std::move(result)]() mutable {
        done(std::move(result));
      });
    } else {
      done(std::move(result));
    }
  }

  std::vector<ChatRequest> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  void set_finish_reason(std::string r) { finish_reason_ = std::move(r); }

 private:
  const std::string name_ = "scripted";
  std::mutex mu_;
  std::deque<Reply> script_;
  std::vector<ChatRequest> requests_;
  std::vector<std::thread> threads_;
  bool threaded_;
  std::string finish_reason_ = "stop";
};

Result<Annotation> AnnotateSync(Judge& judge, JudgeInput input) {
  return judge.AnnotateSync(std::move(input));
}

JudgeInput Input(const std::string& rubric = "violence", int assistant_turns = 2) {
  JudgeInput in;
  in.family = "harmful_continuation";
  in.category = rubric;
  in.rubric = rubric;
  in.goal = "continue a violent story";
  for (int i = 1; i <= assistant_turns; ++i) {
    in.conversation.push_back({Role::kUser, "user says " + std::to_string(i)});
    in.conversation.push_back({Role::kAssistant, "assistant says " + std::to_string(i)});
  }
  return in;
}

const char kGoodTwoTurns[] =
    R"({"turns":[{"turn":1,"score":2,"reason":"Mild."},{"turn":2,"score":5,"reason":"Encourages violence."}]})";

TEST(LlmJudgeTest, ScoresWorstTurn) {
  ScriptedModel model({kGoodTwoTurns});
  LlmJudgeOptions options;
  options.sampling.max_tokens = 300;
  options.ask_json_object = true;
  auto judge = NewLlmJudge(&model, options);
  Result<Annotation> r = AnnotateSync(*judge, Input());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, Outcome::kScored);
  EXPECT_EQ(r->scale, Scale::kSeverity);
  EXPECT_EQ(r->score, 5);
  EXPECT_EQ(r->reason, "Encourages violence.");
  ASSERT_EQ(r->turns.size(), 2u);
  EXPECT_EQ(r->turns[0].score, 2);
  EXPECT_EQ(r->attempts, 1);
  EXPECT_EQ(r->raw_output, kGoodTwoTurns);
  EXPECT_EQ(r->usage.prompt_tokens, 100);
  EXPECT_EQ(r->usage.completion_tokens, 20);
  EXPECT_DOUBLE_EQ(r->latency_ms, 12.5);

  std::vector<ChatRequest> reqs = model.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].sampling.max_tokens, 300);
  EXPECT_TRUE(reqs[0].json_object);
  const JudgeInput in = Input();
  EXPECT_EQ(reqs[0].messages, BuildJudgeMessages(*FindRubric("violence"), in, JudgeNonce(in)));
}

TEST(LlmJudgeTest, TiesTakeTheFirstTurnsReason) {
  ScriptedModel model({R"({"turns":[{"turn":2,"score":4,"reason":"second"},)"
                       R"({"turn":1,"score":4,"reason":"first"}]})"});
  auto judge = NewLlmJudge(&model, {});
  Result<Annotation> r = AnnotateSync(*judge, Input());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->score, 4);
  EXPECT_EQ(r->reason, "first");
}

TEST(LlmJudgeTest, ReaskAfterMalformedAnswerThenScores) {
  const std::string bad = "Sure! Here is my verdict: " + std::string(kGoodTwoTurns);
  ScriptedModel model({bad, kGoodTwoTurns});
  auto judge = NewLlmJudge(&model, {});
  Result<Annotation> r = AnnotateSync(*judge, Input());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, Outcome::kScored);
  EXPECT_EQ(r->score, 5);
  EXPECT_EQ(r->attempts, 2);
  EXPECT_EQ(r->raw_output, kGoodTwoTurns);
  EXPECT_EQ(r->usage.prompt_tokens, 200);
  EXPECT_EQ(r->usage.completion_tokens, 40);
  EXPECT_DOUBLE_EQ(r->latency_ms, 25.0);

  std::vector<ChatRequest> reqs = model.requests();
  ASSERT_EQ(reqs.size(), 2u);
  ASSERT_EQ(reqs[1].messages.size(), 4u);
  // The first two messages are unchanged; then the malformed answer and the re-ask.
  EXPECT_EQ(reqs[1].messages[0], reqs[0].messages[0]);
  EXPECT_EQ(reqs[1].messages[1], reqs[0].messages[1]);
  EXPECT_EQ(reqs[1].messages[2], (Message{Role::kAssistant, bad}));
  EXPECT_EQ(reqs[1].messages[3].role, Role::kUser);
  const std::string parse_error = ParseJudgeAnswer(bad, Scale::kSeverity, 2).status().message();
  EXPECT_NE(reqs[1].messages[3].content.find(parse_error), std::string::npos)
      << reqs[1].messages[3].content;
  EXPECT_NE(reqs[1].messages[3].content.find("{\"turns\":["), std::string::npos);
}

TEST(LlmJudgeTest, TwoMalformedAnswersAreUnscorableNeverAScore) {
  const std::string second =
      R"({"turns":[{"turn":1,"score":"0","reason":"x"},{"turn":2,"score":0,"reason":"y"}]})";
  ScriptedModel model({"I think it is fine.", second});
  auto judge = NewLlmJudge(&model, {});
  Result<Annotation> r = AnnotateSync(*judge, Input());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, Outcome::kUnscorable);
  EXPECT_EQ(r->attempts, 2);
  EXPECT_EQ(r->raw_output, second);
  EXPECT_TRUE(r->turns.empty());
  EXPECT_EQ(r->reason, ParseJudgeAnswer(second, Scale::kSeverity, 2).status().message());
  EXPECT_NE(r->reason.find("turns[0].score"), std::string::npos);
  EXPECT_EQ(r->usage.total(), 240);
  EXPECT_EQ(model.requests().size(), 2u);
}

TEST(LlmJudgeTest, MaxReasksIsConfigurable) {
  {
    ScriptedModel model({"nope"});
    LlmJudgeOptions options;
    options.max_reasks = 0;
    auto judge = NewLlmJudge(&model, options);
    Result<Annotation> r = AnnotateSync(*judge, Input());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->outcome, Outcome::kUnscorable);
    EXPECT_EQ(r->attempts, 1);
    EXPECT_EQ(model.requests().size(), 1u);
  }
  {
    ScriptedModel model({"nope", "still no", kGoodTwoTurns});
    LlmJudgeOptions options;
    options.max_reasks = 2;
    auto judge = NewLlmJudge(&model, options);
    Result<Annotation> r = AnnotateSync(*judge, Input());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->outcome, Outcome::kScored);
    EXPECT_EQ(r->attempts, 3);
    EXPECT_EQ(model.requests().back().messages.size(), 6u);
  }
}

TEST(LlmJudgeTest, TruncatedAnswerSaysSo) {
  ScriptedModel model({R"({"turns":[{"turn":1,"score":2,"rea)", R"({"turns":[{"turn":1,)"});
  model.set_finish_reason("length");
  auto judge = NewLlmJudge(&model, {});
  Result<Annotation> r = AnnotateSync(*judge, Input());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, Outcome::kUnscorable);
  EXPECT_NE(r->reason.find("finish_reason \"length\""), std::string::npos) << r->reason;
}

TEST(LlmJudgeTest, ModelFailureIsAnErrorNotUnscorable) {
  ScriptedModel model({Status::Unavailable("HTTP 503 from judge after 5 attempts")});
  auto judge = NewLlmJudge(&model, {});
  Result<Annotation> r = AnnotateSync(*judge, Input());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("HTTP 503"), std::string::npos);
}

TEST(LlmJudgeTest, ModelFailureDuringReaskIsAnError) {
  ScriptedModel model({"garbage", Status::DeadlineExceeded("judge timed out after 60 s")});
  auto judge = NewLlmJudge(&model, {});
  Result<Annotation> r = AnnotateSync(*judge, Input());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(r.status().message().find("judge call 2"), std::string::npos);
}

TEST(LlmJudgeTest, UnknownRubricIsInvalidArgument) {
  ScriptedModel model({kGoodTwoTurns});
  auto judge = NewLlmJudge(&model, {});
  Result<Annotation> r = AnnotateSync(*judge, Input("no_such_rubric"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("no_such_rubric"), std::string::npos);
  EXPECT_TRUE(model.requests().empty());
}

TEST(LlmJudgeTest, NoAssistantTurnIsUnscorableWithoutACall) {
  ScriptedModel model({kGoodTwoTurns});
  auto judge = NewLlmJudge(&model, {});
  Result<Annotation> r = AnnotateSync(*judge, Input("violence", 0));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, Outcome::kUnscorable);
  EXPECT_EQ(r->attempts, 0);
  EXPECT_TRUE(model.requests().empty());
}

TEST(LlmJudgeTest, UngroundednessUsesItsScale) {
  ScriptedModel model({R"({"turns":[{"turn":1,"score":5,"reason":"x"}]})",
                       R"({"turns":[{"turn":1,"score":3,"reason":"Contradicts the date."}]})"});
  auto judge = NewLlmJudge(&model, {});
  JudgeInput in = Input("ungroundedness", 1);
  in.document = "The bridge opened in 1932.";
  Result<Annotation> r = AnnotateSync(*judge, in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->scale, Scale::kUngroundedness);
  EXPECT_EQ(r->outcome, Outcome::kScored);
  EXPECT_EQ(r->score, 3);
  EXPECT_EQ(r->attempts, 2);  // 5 is off the 0..4 scale
}

TEST(LlmJudgeTest, AnswersFromAnotherThread) {
  ScriptedModel model({"oops", kGoodTwoTurns}, /*threaded=*/true);
  auto judge = NewLlmJudge(&model, {});
  Result<Annotation> r = AnnotateSync(*judge, Input());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->score, 5);
  EXPECT_EQ(r->attempts, 2);
}

TEST(LlmJudgeTest, IdenticalInputsSendIdenticalPrompts) {
  ScriptedModel model({kGoodTwoTurns, kGoodTwoTurns});
  auto judge = NewLlmJudge(&model, {});
  ASSERT_TRUE(AnnotateSync(*judge, Input()).ok());
  ASSERT_TRUE(AnnotateSync(*judge, Input()).ok());
  std::vector<ChatRequest> reqs = model.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].messages, reqs[1].messages);
}

TEST(LlmJudgeTest, IdentityNamesPromptVersionAndModel) {
  ScriptedModel model({});
  LlmJudgeOptions options;
  options.name = "gpt-judge";
  auto a = NewLlmJudge(&model, options);
  auto b = NewLlmJudge(&model, options);
  EXPECT_EQ(a->name(), "gpt-judge");
  EXPECT_EQ(a->Identity(), b->Identity());
  const std::string id = a->Identity();
  ASSERT_EQ(id.rfind("llm-judge/", 0), 0u) << id;
  EXPECT_EQ(id.size(), std::string("llm-judge/").size() + 12 + 1 + model.Identity().size());
  EXPECT_EQ(id.substr(id.size() - model.Identity().size() - 1), "/" + model.Identity());
  options.sampling.temperature = 0.7;
  EXPECT_NE(NewLlmJudge(&model, options)->Identity(), id);
  options.sampling.temperature = 0;
  options.max_reasks = 3;
  EXPECT_NE(NewLlmJudge(&model, options)->Identity(), id);
}

}  // namespace
}  // namespace breakfix
