// JSON at the edges of curation: messages to and from JSON, and dumping that never throws on the
// invalid UTF-8 a model may produce. JSON stays inside src/curate.
#ifndef BREAKFIX_CURATE_JSON_TEXT_H_
#define BREAKFIX_CURATE_JSON_TEXT_H_

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "breakfix/chat_model.h"
#include "breakfix/status.h"

namespace breakfix::curate {

// Compact JSON; invalid UTF-8 in strings is replaced by U+FFFD. Takes nlohmann::json (keys
// sorted) or nlohmann::ordered_json (keys as inserted, for files people read).
template <typename Json>
std::string DumpJson(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// `text` with every invalid UTF-8 sequence replaced by U+FFFD, exactly as DumpJson writes it, so
// what is judged, cached and written agree byte for byte.
std::string ValidUtf8(std::string_view text);

// [{"role":"user","content":"..."}, ...]
nlohmann::ordered_json MessagesToJson(const std::vector<Message>& messages);

// Reads a list of {"role","content"} objects (other keys are ignored). `where` ("file:line")
// and `field` name the place in errors: "pairs.jsonl:3: field \"prompt[1].role\": ...".
Result<std::vector<Message>> MessagesFromJson(const nlohmann::ordered_json& j,
                                              const std::string& where, const std::string& field);

// Parses one line of a JSONL file, keeping key order; a syntax error names "where:column".
Result<nlohmann::ordered_json> ParseJsonLine(const std::string& line, const std::string& where);

// A short description of a JSON value's type for error messages ("a number", "an object").
template <typename Json>
std::string JsonTypeName(const Json& j) {
  if (j.is_null()) return "null";
  if (j.is_boolean()) return "a boolean";
  if (j.is_number()) return "a number";
  if (j.is_string()) return "a string";
  if (j.is_array()) return "a list";
  if (j.is_object()) return "an object";
  return "an unsupported value";
}

}  // namespace breakfix::curate

#endif  // BREAKFIX_CURATE_JSON_TEXT_H_
