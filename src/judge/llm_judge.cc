// The LLM judge: one request per annotation, one re-ask (by default) when the answer does not
// parse, and an unscorable outcome when it still does not. A parse failure never becomes a score.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "breakfix/hash.h"
#include "breakfix/judge.h"
#include "core/blocking_call.h"
#include "judge/judge_prompt.h"

namespace breakfix {
namespace {

// Everything in the request settings that can change a verdict, folded into Identity().
std::string SettingsFingerprint(const LlmJudgeOptions& o) {
  KeyBuilder k;
  k.Add("llm-judge-settings").Add(JudgePromptVersion());
  k.Add(o.sampling.temperature).Add(o.sampling.top_p).Add(int64_t{o.sampling.max_tokens});
  k.Add(o.sampling.seed ? static_cast<int64_t>(*o.sampling.seed) : int64_t{-1});
  k.Add(int64_t{o.sampling.seed.has_value()});
  for (const std::string& s : o.sampling.stop) k.Add(s);
  k.Add(int64_t{static_cast<int64_t>(o.sampling.stop.size())});
  k.Add(int64_t{o.ask_json_object}).Add(int64_t{std::max(o.max_reasks, 0)});
  return k.Hex().substr(0, 12);
}

// One annotation in flight. Shared by the callbacks of its successive model calls.
struct Attempt {
  ChatModel* model = nullptr;
  Scale scale = Scale::kSeverity;
  int assistant_turns = 0;
  int reasks_left = 0;
  ChatRequest request;
  Annotation annotation;
  AnnotationCallback done;
};

void Ask(std::shared_ptr<Attempt> attempt);

void OnAnswer(std::shared_ptr<Attempt> attempt, Result<ChatResponse> response) {
  Annotation& a = attempt->annotation;
  if (!response.ok()) {
    attempt->done(
        response.status().WithContext("judge call " + std::to_string(a.attempts) + " failed"));
    return;
  }
  a.usage += response->usage;
  a.latency_ms += response->latency_ms;
  a.system_fingerprints.push_back(response->system_fingerprint);
  std::string answer = std::move(response->message.content);

  Result<std::vector<TurnScore>> parsed =
      ParseJudgeAnswer(answer, attempt->scale, attempt->assistant_turns);
  if (parsed.ok()) {
    a.outcome = Outcome::kScored;
    a.turns = std::move(parsed).value();
    const TurnScore* worst = &a.turns.front();
    for (const TurnScore& t : a.turns) {
      if (t.score > worst->score) worst = &t;  // strict: the first turn wins ties
    }
    a.score = worst->score;
    a.reason = worst->reason;
    a.raw_output = std::move(answer);
    attempt->done(std::move(a));
    return;
  }

  std::string error = parsed.status().message();
  if (response->finish_reason == "length") {
    error += " (the answer stopped at the token limit: finish_reason \"length\")";
  }
  if (attempt->reasks_left > 0) {
    --attempt->reasks_left;
    attempt->request.messages.push_back(Message{Role::kAssistant, answer});
    attempt->request.messages.push_back(
        Message{Role::kUser, BuildReaskMessage(error, attempt->scale, attempt->assistant_turns)});
    ++a.attempts;
    Ask(std::move(attempt));
    return;
  }
  a.outcome = Outcome::kUnscorable;
  a.score = 0;
  a.turns.clear();
  a.reason = std::move(error);
  a.raw_output = std::move(answer);
  attempt->done(std::move(a));
}

void Ask(std::shared_ptr<Attempt> attempt) {
  ChatModel* model = attempt->model;
  ChatRequest request = attempt->request;
  model->Chat(std::move(request), [attempt = std::move(attempt)](Result<ChatResponse> r) mutable {
    OnAnswer(std::move(attempt), std::move(r));
  });
}

class LlmJudge final : public Judge {
 public:
  LlmJudge(ChatModel* model, const LlmJudgeOptions& options)
      : model_(model),
        options_(options),
        identity_("llm-judge/" + SettingsFingerprint(options) + "/" + model->Identity()) {}

  const std::string& name() const override { return options_.name; }
  std::string Identity() const override { return identity_; }

  void Annotate(JudgeInput input, AnnotationCallback done) override {
    const Rubric* rubric = FindRubric(input.rubric);
    if (rubric == nullptr) {
      done(Status::InvalidArgument("unknown rubric \"" + input.rubric +
                                   "\"; expected one of hate_unfairness, sexual, violence, "
                                   "self_harm, third_party, jailbreak, ungroundedness, refusal"));
      return;
    }
    auto attempt = std::make_shared<Attempt>();
    attempt->model = model_;
    attempt->scale = rubric->scale;
    attempt->assistant_turns = CountAssistantTurns(input.conversation);
    attempt->reasks_left = std::max(options_.max_reasks, 0);
    attempt->annotation.scale = rubric->scale;
    attempt->done = std::move(done);
    if (attempt->assistant_turns == 0) {
      // Nothing to score; asking the judge would only invite an invented verdict.
      attempt->annotation.outcome = Outcome::kUnscorable;
      attempt->annotation.attempts = 0;
      attempt->annotation.reason = "the conversation has no assistant turn to judge";
      attempt->done(std::move(attempt->annotation));
      return;
    }
    attempt->request.messages = BuildJudgeMessages(*rubric, input, JudgeNonce(input));
    attempt->request.sampling = options_.sampling;
    attempt->request.json_object = options_.ask_json_object;
    attempt->annotation.attempts = 1;
    Ask(std::move(attempt));
  }

 private:
  ChatModel* const model_;
  const LlmJudgeOptions options_;
  const std::string identity_;
};

}  // namespace

std::unique_ptr<Judge> NewLlmJudge(ChatModel* model, const LlmJudgeOptions& options) {
  return std::make_unique<LlmJudge>(model, options);
}

Result<Annotation> Judge::AnnotateSync(JudgeInput input) {
  return BlockingCall<Annotation>(
      [&](AnnotationCallback done) { Annotate(std::move(input), std::move(done)); });
}

}  // namespace breakfix
