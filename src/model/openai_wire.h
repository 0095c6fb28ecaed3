// The OpenAI Chat Completions wire format: request bodies out, responses and error bodies in.
//
// JSON stays here: callers get native structs. Request bodies are written directly into a string
// (no DOM), since the client builds one per call at thousands of calls per second.
#ifndef BREAKFIX_MODEL_OPENAI_WIRE_H_
#define BREAKFIX_MODEL_OPENAI_WIRE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "breakfix/chat_model.h"
#include "breakfix/status.h"

namespace breakfix {

// Appends `text` as a JSON string literal (quotes included). Invalid UTF-8 bytes become U+FFFD,
// so the body is always valid JSON whatever the conversation holds.
void AppendJsonString(std::string& out, std::string_view text);

// The request body for POST /chat/completions. `model` is omitted when empty, `seed` when unset,
// `stop` when empty, `max_tokens` when <= 0. The error names the sampling field that cannot be
// sent (a non-finite number).
Result<std::string> BuildChatRequestBody(const std::string& model,
                                         const std::vector<Message>& messages,
                                         const SamplingOptions& sampling, bool json_object);

// The fields breakfix uses from a chat completion.
struct ParsedChatResponse {
  std::string content;  // choices[0].message.content; the refusal text when content
                        // is null/empty and message.refusal is a string
  std::string finish_reason;
  std::string model;
  std::string system_fingerprint;
  std::optional<int64_t> prompt_tokens;  // unset when the server did not report usage
  std::optional<int64_t> completion_tokens;
};

// Parses a 2xx response body. A body that is not JSON, or lacks choices[0].message, is a
// kCorruption error saying what was missing.
Result<ParsedChatResponse> ParseChatResponseBody(std::string_view body);

// The server's explanation in an error response: "message (type: T, code: C)" from an OpenAI
// error object, else the first 300 bytes of the body (control characters replaced), else
// "(empty body)".
std::string ExtractErrorMessage(std::string_view body);

// The rough token count breakfix assumes when a server does not say: ceil(chars / 4).
int64_t EstimateTokens(size_t chars);

}  // namespace breakfix

#endif  // BREAKFIX_MODEL_OPENAI_WIRE_H_
