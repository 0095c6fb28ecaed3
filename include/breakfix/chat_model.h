// ChatModel: the one interface through which breakfix reaches any model.
//
// Start here. Every role (the target under test, the user simulator, the judge) is a ChatModel,
// so the OpenAI-compatible HTTP client, the in-process engine and test fakes swap freely.
#ifndef BREAKFIX_CHAT_MODEL_H_
#define BREAKFIX_CHAT_MODEL_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "breakfix/status.h"

namespace breakfix {

enum class Role { kSystem, kUser, kAssistant };

// "system", "user", "assistant".
const char* RoleName(Role role);
// Parses a role name; the error says which names are accepted.
Result<Role> ParseRole(const std::string& name);

struct Message {
  Role role = Role::kUser;
  std::string content;

  bool operator==(const Message& o) const { return role == o.role && content == o.content; }
};

// How to sample a completion. Defaults are deterministic: temperature 0.
struct SamplingOptions {
  double temperature = 0.0;       // 0 = greedy
  double top_p = 1.0;             // nucleus sampling mass, (0, 1]
  int max_tokens = 512;           // upper bound on completion tokens
  std::optional<uint64_t> seed;   // sent to servers that honour it
  std::vector<std::string> stop;  // stop strings
};

struct ChatRequest {
  std::vector<Message> messages;
  SamplingOptions sampling;
  // Ask the server for a JSON object (OpenAI response_format json_object) where supported.
  bool json_object = false;
};

struct TokenUsage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t total() const { return prompt_tokens + completion_tokens; }
  TokenUsage& operator+=(const TokenUsage& o) {
    prompt_tokens += o.prompt_tokens;
    completion_tokens += o.completion_tokens;
    return *this;
  }
};

struct ChatResponse {
  Message message;                 // role kAssistant
  std::string finish_reason;       // "stop", "length", ... as the server said
  TokenUsage usage;                // as reported by the server (estimated when it did not say)
  double latency_ms = 0;           // wall time of the successful attempt
  int attempts = 1;                // 1 + retries spent on this call
  std::string model;               // model id the server reported
  std::string system_fingerprint;  // server build fingerprint, empty when not reported
};

// Invoked exactly once per call with the response or the reason the call failed.
using ChatCallback = std::function<void(Result<ChatResponse>)>;

// Thread safety: Chat() may be called from any thread concurrently. The callback runs on a
// thread owned by the model (for HTTP models, the client's I/O thread); it must be quick and
// must not call back into the model synchronously with a blocking wait.
class ChatModel {
 public:
  virtual ~ChatModel() = default;

  // Short display name (the configured name, e.g. "phi3-mini").
  virtual const std::string& name() const = 0;

  // A canonical description of everything that changes this model's answers (endpoint, model
  // id, fixed sampling settings). Part of the key of every unit of work that uses the model.
  // Must not contain secrets.
  virtual std::string Identity() const = 0;

  // Starts a completion and returns at once; `done` is called later (possibly before Chat
  // returns, for models that answer synchronously). Calls beyond the model's concurrency limit
  // are queued, not rejected.
  virtual void Chat(ChatRequest request, ChatCallback done) = 0;

  // Blocking convenience wrapper around Chat(). Do not call it from a ChatCallback.
  Result<ChatResponse> ChatSync(ChatRequest request);
};

}  // namespace breakfix

#endif  // BREAKFIX_CHAT_MODEL_H_
