// NewLocalChatModel: the ChatModel interface over an in-process Engine, so any role (target,
// simulator, judge) can run on a local model exactly as it would on an HTTP endpoint.
#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "breakfix/engine.h"

namespace breakfix {
namespace {

// What one call carries from Chat() to the engine's final event.
struct CallState {
  ChatCallback done;
  std::string text;
  std::chrono::steady_clock::time_point start;
  std::string model;
};

class LocalChatModel final : public ChatModel {
 public:
  LocalChatModel(std::shared_ptr<Engine> engine, std::string name)
      : engine_(std::move(engine)), name_(std::move(name)) {
    const EngineInfo& info = engine_->info();
    if (name_.empty()) name_ = info.model_id;
    // Everything that changes answers for a given request: the weights (by content), the chat
    // template that renders the prompt and the context that bounds it. The batch size and thread
    // count do not appear: they change speed, not tokens.
    identity_ = "local/" + info.model_id + "/" + info.content_hash +
                "?chat_template=" + ChatTemplateName(info.chat_template) +
                "&context_length=" + std::to_string(info.context_length);
  }

  const std::string& name() const override { return name_; }
  std::string Identity() const override { return identity_; }

  // request.json_object is not enforced: the engine has no constrained decoding, so a judge
  // relies on its prompt (and the judge's parser re-asks on malformed output).
  void Chat(ChatRequest request, ChatCallback done) override {
    auto state = std::make_shared<CallState>();
    state->done = std::move(done);
    state->start = std::chrono::steady_clock::now();
    state->model = engine_->info().model_id;

    std::vector<int32_t> prompt = engine_->EncodeChat(request.messages);
    const int context = engine_->info().context_length;
    if (prompt.empty() || static_cast<int>(prompt.size()) + 1 > context) {
      state->done(Status::InvalidArgument("local model " + name_ + ": the rendered prompt has " +
                                          std::to_string(prompt.size()) +
                                          " tokens; the context of " + std::to_string(context) +
                                          " tokens needs room for at least one more"));
      return;
    }
    GenerationParams params;
    params.max_tokens = request.sampling.max_tokens;
    params.temperature = request.sampling.temperature;
    params.top_p = request.sampling.top_p;
    params.seed = request.sampling.seed;
    params.stop = std::move(request.sampling.stop);
    engine_->Submit(
        std::move(prompt), std::move(params), [state, name = name_](const GenerationEvent& event) {
          state->text += event.text;
          if (!event.done) return;
          if (event.finish_reason == "error") {
            state->done(Status::Internal("local model " + name + ": " + event.error));
            return;
          }
          if (event.finish_reason == "cancelled") {
            state->done(
                Status::Cancelled("local model " + name + ": the generation was cancelled"));
            return;
          }
          ChatResponse response;
          response.message.role = Role::kAssistant;
          response.message.content = std::move(state->text);
          response.finish_reason = event.finish_reason;
          response.usage.prompt_tokens = event.prompt_tokens;
          response.usage.completion_tokens = event.completion_tokens;
          response.latency_ms = std::chrono::duration<double, std::milli>(
                                    std::chrono::steady_clock::now() - state->start)
                                    .count();
          response.attempts = 1;
          response.model = state->model;
          response.system_fingerprint = "breakfix-" BREAKFIX_VERSION;
          state->done(std::move(response));
        });
  }

 private:
  std::shared_ptr<Engine> engine_;
  std::string name_;
  std::string identity_;
};

}  // namespace

std::unique_ptr<ChatModel> NewLocalChatModel(std::shared_ptr<Engine> engine, std::string name) {
  return std::make_unique<LocalChatModel>(std::move(engine), std::move(name));
}

}  // namespace breakfix
