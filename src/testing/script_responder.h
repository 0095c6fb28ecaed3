// ScriptResponder: a FakeOpenAIServer Responder driven by a YAML script, so end-to-end tests and
// `fake-openai` can stage a model's behaviour (answers, refusals, errors, faults) without C++.
//
// A script is an ordered list of rules, under a top-level `rules:` key (or as the whole
// document). For each request the first rule whose conditions all hold and which is not skipped
// by `times`/`every` decides the reply; when none does, the reply is a deterministic text derived
// from the messages ("Scripted reply 3f2a9c01").
//
//   rules:
//     - last_user_contains: "pipe bomb"     # conditions (all optional, ANDed, case-sensitive)
//       reply: "I can't help with that."    # assistant text; {{last_user}}, {{turn}} substituted
//     - any_contains: "overload"
//       status: 429                         # HTTP status, with error_message for the error body
//       error_message: "slow down"
//       headers: {Retry-After: "1"}
//       times: 2                            # applies to its first 2 matches only
//     - model: judge-model
//       every: 3                            # applies to the 3rd, 6th, 9th... match
//       fault: truncated_body               # none, malformed_json, truncated_body,
//       delay_ms: 50                        # close_without_response, hang, slow_body
//   default_reply: "..."                    # optional template replacing the hashed default
//
// Conditions: system_contains (any system message), last_user_contains (the last user message),
// any_contains (any message), model (exact), path (exact, without query string).
// Template fields: {{last_user}} = the last user message, {{turn}} = how many user messages.
#ifndef BREAKFIX_TESTING_SCRIPT_RESPONDER_H_
#define BREAKFIX_TESTING_SCRIPT_RESPONDER_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "breakfix/chat_model.h"
#include "breakfix/env.h"
#include "breakfix/status.h"
#include "testing/fake_openai_server.h"

namespace breakfix {

// A text with {{last_user}} and {{turn}} placeholders, checked when the script is loaded.
class ReplyTemplate {
 public:
  // The error names the unknown placeholder and lists the known ones.
  static Result<ReplyTemplate> Parse(const std::string& text);
  std::string Render(const std::vector<Message>& messages) const;

 private:
  enum class Piece { kText, kLastUser, kTurn };
  std::vector<std::pair<Piece, std::string>> pieces_;
};

struct ScriptRule {
  std::string where;  // "script.yaml:12:5", for messages

  // Conditions; unset = no constraint.
  std::optional<std::string> system_contains;
  std::optional<std::string> last_user_contains;
  std::optional<std::string> any_contains;
  std::optional<std::string> model;
  std::optional<std::string> path;

  // Actions.
  std::optional<ReplyTemplate> reply;  // unset = the default reply
  int status = 200;
  std::string error_message;
  std::vector<std::pair<std::string, std::string>> headers;
  int64_t delay_ms = 0;
  FakeFault fault = FakeFault::kNone;
  int64_t times = 0;  // > 0: applies to its first `times` matches only
  int64_t every = 0;  // > 1: applies to every `every`-th match only
};

// "Scripted reply " + the first 8 hex digits of a SHA-256 over the messages' roles and texts.
std::string DefaultScriptedReply(const std::vector<Message>& messages);

// Thread-safe: Respond may be called from any thread (the per-rule match counters are guarded).
class ScriptResponder {
 public:
  // Loads a YAML script. Every error names file:line:column and what was expected.
  static Result<std::unique_ptr<ScriptResponder>> FromFile(const std::string& path,
                                                           Env* env = Env::Default());
  // Same, for script text; `name` stands in for the file name in messages.
  static Result<std::unique_ptr<ScriptResponder>> FromString(const std::string& text,
                                                             const std::string& name = "<script>");

  explicit ScriptResponder(std::vector<ScriptRule> rules,
                           std::optional<ReplyTemplate> default_reply = std::nullopt);

  FakeReply Respond(const FakeRequest& request);

  // A Responder that calls Respond on this object, which must outlive every use of it.
  Responder AsResponder();

  // How many requests rule `index` has answered so far (0 for an index out of range).
  int64_t applied_count(size_t index) const;
  size_t rule_count() const { return rules_.size(); }

 private:
  struct Counters {
    int64_t matched = 0;  // requests whose conditions held while the rule was not exhausted
    int64_t applied = 0;  // requests the rule answered
  };

  const std::vector<ScriptRule> rules_;
  const std::optional<ReplyTemplate> default_reply_;
  mutable std::mutex mu_;
  std::vector<Counters> counters_;  // guarded by mu_, parallel to rules_
};

}  // namespace breakfix

#endif  // BREAKFIX_TESTING_SCRIPT_RESPONDER_H_
