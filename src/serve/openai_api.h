// The OpenAI wire format as `breakfix serve` speaks it: request validation into native types,
// and response / streaming-chunk / error JSON. Pure functions, no I/O: the HTTP layer
// (openai_server.cc) only moves bytes.
#ifndef BREAKFIX_SERVE_OPENAI_API_H_
#define BREAKFIX_SERVE_OPENAI_API_H_

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "breakfix/chat_model.h"
#include "breakfix/engine.h"

namespace breakfix::serve {

// An error answer: HTTP status and the OpenAI error object's fields.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the offending field, "" when none
  std::string code;   // e.g. "model_not_found", "context_length_exceeded"; "" when none
};
std::string ErrorJson(const ApiError& error);

// Settings shared by both endpoints.
struct SamplingRequest {
  std::string model;        // "" when the request did not name one
  GenerationParams params;  // max_tokens 0 here = "until the context is full"
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

struct ChatRequestSpec {
  SamplingRequest sampling;
  std::vector<Message> messages;
};

struct CompletionRequestSpec {
  SamplingRequest sampling;
  std::string prompt;                  // text prompt (tokenised by the server)
  std::vector<int32_t> prompt_tokens;  // or token ids, when the request sent an array of ints
  bool tokens_given = false;
};

// Parse and validate a request body. Unknown fields are ignored (clients send many optional
// ones); known fields with a wrong type or range, and features breakfix does not implement
// (n > 1, tools, response_format json, top_logprobs > 0, non-zero presence/frequency penalties),
// are a 400 naming the field.
std::variant<ChatRequestSpec, ApiError> ParseChatRequest(const std::string& body);
std::variant<CompletionRequestSpec, ApiError> ParseCompletionRequest(const std::string& body);

// What a finished (or streaming) generation produced, for the response builders.
struct CompletionResult {
  std::string text;
  std::vector<std::string> token_texts;  // with logprobs: one per generated token
  std::vector<float> logprobs;
  std::string finish_reason;  // "stop", "length"
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

struct ResponseMeta {
  std::string id;       // "chatcmpl-..." or "cmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
  std::string system_fingerprint;
  bool logprobs = false;
};

std::string ChatCompletionJson(const ResponseMeta& meta, const CompletionResult& result);
std::string TextCompletionJson(const ResponseMeta& meta, const CompletionResult& result);

// Streaming: one "data: {...}\n\n" event each. The first chat chunk carries the role; content
// chunks carry text deltas (and logprobs); the final chunk has an empty delta and the
// finish_reason; with include_usage a last chunk has "choices": [] and the usage.
std::string ChatChunkEvent(const ResponseMeta& meta, const std::string* role,
                           const std::string& delta, const std::vector<std::string>& token_texts,
                           const std::vector<float>& logprobs, const std::string* finish_reason);
std::string TextChunkEvent(const ResponseMeta& meta, const std::string& delta,
                           const std::vector<std::string>& token_texts,
                           const std::vector<float>& logprobs, const std::string* finish_reason);
std::string UsageChunkEvent(const ResponseMeta& meta, bool chat, int prompt_tokens,
                            int completion_tokens);
inline constexpr const char* kDoneEvent = "data: [DONE]\n\n";

std::string ModelsJson(const std::string& model_id, int64_t created);

}  // namespace breakfix::serve

#endif  // BREAKFIX_SERVE_OPENAI_API_H_
