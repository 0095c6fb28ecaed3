#include "store/record_encoding.h"

#include <cstdint>
#include <nlohmann/json.hpp>

namespace breakfix {

const char* RunStatusName(RunStatus status) {
  switch (status) {
    case RunStatus::kRunning:
      return "running";
    case RunStatus::kComplete:
      return "complete";
    case RunStatus::kFailed:
      return "failed";
    case RunStatus::kInterrupted:
      return "interrupted";
  }
  return "running";
}

const char* ConversationStatusName(ConversationStatus status) {
  switch (status) {
    case ConversationStatus::kRunning:
      return "running";
    case ConversationStatus::kDone:
      return "done";
    case ConversationStatus::kFailed:
      return "failed";
  }
  return "running";
}

namespace store {
namespace {

using nlohmann::json;

Status UnknownName(std::string_view field, std::string_view text, const char* expected) {
  return Status::Corruption("stored " + std::string(field) + " \"" + std::string(text) +
                            "\" is not a known value; expected one of " + expected);
}

constexpr char kHexDigits[] = "0123456789abcdef";

std::string ToHex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHexDigits[c >> 4]);
    out.push_back(kHexDigits[c & 0xf]);
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A string as JSON: itself when valid UTF-8, otherwise its bytes in hex.
json BytesToJson(const std::string& bytes) {
  if (IsValidUtf8(bytes)) return bytes;
  return json{{"hex", ToHex(bytes)}};
}

Result<std::string> BytesFromJson(const json& value, const std::string& where) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.size() == 1 && value.contains("hex") && value["hex"].is_string()) {
    const std::string& hex = value["hex"].get_ref<const std::string&>();
    if (hex.size() % 2 != 0) {
      return Status::Corruption(where + ": hex string has odd length " +
                                std::to_string(hex.size()));
    }
    std::string out;
    out.reserve(hex.size() / 2);
    for (size_t i = 0; i < hex.size(); i += 2) {
      int hi = HexValue(hex[i]);
      int lo = HexValue(hex[i + 1]);
      if (hi < 0 || lo < 0) {
        return Status::Corruption(where + ": invalid hex digit at offset " + std::to_string(i));
      }
      out.push_back(static_cast<char>((hi << 4) | lo));
    }
    return out;
  }
  return Status::Corruption(where + ": expected a string or {\"hex\": \"...\"}, found " +
                            std::string(value.type_name()));
}

Result<json> ParseJson(std::string_view text, const std::string& where) {
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return Status::Corruption(where + ": not valid JSON");
  return value;
}

}  // namespace

Result<Scale> ParseScaleText(std::string_view text) {
  if (text == "severity") return Scale::kSeverity;
  if (text == "ungroundedness") return Scale::kUngroundedness;
  if (text == "binary") return Scale::kBinary;
  if (text == "refusal") return Scale::kRefusal;
  return UnknownName("annotation scale", text, "severity, ungroundedness, binary, refusal");
}

Result<Outcome> ParseOutcomeText(std::string_view text) {
  if (text == "scored") return Outcome::kScored;
  if (text == "unscorable") return Outcome::kUnscorable;
  return UnknownName("annotation outcome", text, "scored, unscorable");
}

Result<RunStatus> ParseRunStatus(std::string_view text) {
  if (text == "running") return RunStatus::kRunning;
  if (text == "complete") return RunStatus::kComplete;
  if (text == "failed") return RunStatus::kFailed;
  if (text == "interrupted") return RunStatus::kInterrupted;
  return UnknownName("run status", text, "running, complete, failed, interrupted");
}

Result<ConversationStatus> ParseConversationStatus(std::string_view text) {
  if (text == "running") return ConversationStatus::kRunning;
  if (text == "done") return ConversationStatus::kDone;
  if (text == "failed") return ConversationStatus::kFailed;
  return UnknownName("conversation status", text, "running, done, failed");
}

bool IsValidUtf8(std::string_view bytes) {
  size_t i = 0;
  const size_t n = bytes.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int extra;
    uint32_t code;
    uint32_t min;
    if ((c & 0xe0) == 0xc0) {
      extra = 1, code = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2, code = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3, code = c & 0x07, min = 0x10000;
    } else {
      return false;  // a continuation byte without a lead, or 0xf8..0xff
    }
    if (n - i <= static_cast<size_t>(extra)) return false;
    for (int k = 1; k <= extra; ++k) {
      unsigned char cc = static_cast<unsigned char>(bytes[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      code = (code << 6) | (cc & 0x3f);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return false;
    i += static_cast<size_t>(extra) + 1;
  }
  return true;
}

std::string EncodeTurnScores(const std::vector<TurnScore>& turns) {
  json array = json::array();
  for (const TurnScore& t : turns) {
    array.push_back(json{{"turn", t.turn}, {"score", t.score}, {"reason", BytesToJson(t.reason)}});
  }
  // Every string in `array` is valid UTF-8 by construction, so dump() cannot throw; the
  // replace handler is a second line of defence.
  return array.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::vector<TurnScore>> DecodeTurnScores(std::string_view text, std::string_view where) {
  std::string context = std::string(where) + ": turns_json";
  BF_ASSIGN_OR_RETURN(json array, ParseJson(text, context));
  if (!array.is_array()) {
    return Status::Corruption(context + ": expected an array, found " +
                              std::string(array.type_name()));
  }
  std::vector<TurnScore> turns;
  turns.reserve(array.size());
  for (size_t i = 0; i < array.size(); ++i) {
    const json& item = array[i];
    std::string at = context + "[" + std::to_string(i) + "]";
    if (!item.is_object() || !item.contains("turn") || !item.contains("score") ||
        !item.contains("reason") || !item["turn"].is_number_integer() ||
        !item["score"].is_number_integer()) {
      return Status::Corruption(at + ": expected {\"turn\": int, \"score\": int, \"reason\": ...}");
    }
    TurnScore t;
    t.turn = item["turn"].get<int>();
    t.score = item["score"].get<int>();
    BF_ASSIGN_OR_RETURN(t.reason, BytesFromJson(item["reason"], at + ".reason"));
    turns.push_back(std::move(t));
  }
  return turns;
}

std::string EncodeStringList(const std::vector<std::string>& items) {
  json array = json::array();
  for (const std::string& s : items) array.push_back(BytesToJson(s));
  return array.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::vector<std::string>> DecodeStringList(std::string_view text, std::string_view where) {
  std::string context(where);
  BF_ASSIGN_OR_RETURN(json array, ParseJson(text, context));
  if (!array.is_array()) {
    return Status::Corruption(context + ": expected an array, found " +
                              std::string(array.type_name()));
  }
  std::vector<std::string> items;
  items.reserve(array.size());
  for (size_t i = 0; i < array.size(); ++i) {
    BF_ASSIGN_OR_RETURN(std::string s,
                        BytesFromJson(array[i], context + "[" + std::to_string(i) + "]"));
    items.push_back(std::move(s));
  }
  return items;
}

std::string EncodeMessages(const std::vector<Message>& messages) {
  json array = json::array();
  for (const Message& m : messages) {
    array.push_back(json{{"role", RoleName(m.role)}, {"content", BytesToJson(m.content)}});
  }
  return array.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::vector<Message>> DecodeMessages(std::string_view text, std::string_view where) {
  std::string context(where);
  BF_ASSIGN_OR_RETURN(json array, ParseJson(text, context));
  if (!array.is_array()) {
    return Status::Corruption(context + ": expected an array of messages, found " +
                              std::string(array.type_name()));
  }
  std::vector<Message> messages;
  for (size_t i = 0; i < array.size(); ++i) {
    const std::string at = context + "[" + std::to_string(i) + "]";
    const json& m = array[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content")) {
      return Status::Corruption(at + ": expected {\"role\": ..., \"content\": ...}");
    }
    Result<Role> role = ParseRole(m["role"].get<std::string>());
    if (!role.ok()) return Status::Corruption(at + ": " + role.status().message());
    BF_ASSIGN_OR_RETURN(std::string content, BytesFromJson(m["content"], at + ".content"));
    messages.push_back(Message{*role, std::move(content)});
  }
  return messages;
}

std::string EncodeItem(const SeedItem& item) {
  json params = json::array();
  for (const auto& [name, value] : item.params) {
    params.push_back(json::array({BytesToJson(name), BytesToJson(value)}));
  }
  json j = {{"id", BytesToJson(item.id)},
            {"family", BytesToJson(item.family)},
            {"category", BytesToJson(item.category)},
            {"rubric", BytesToJson(item.rubric)},
            {"params", std::move(params)},
            {"system_prompt", BytesToJson(item.system_prompt)},
            {"first_user", BytesToJson(item.first_user)},
            {"goal", BytesToJson(item.goal)},
            {"persona", BytesToJson(item.persona)},
            {"document", BytesToJson(item.document)}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<SeedItem> DecodeItem(std::string_view text, std::string_view where) {
  std::string context(where);
  BF_ASSIGN_OR_RETURN(json j, ParseJson(text, context));
  if (!j.is_object()) {
    return Status::Corruption(context + ": expected an object, found " +
                              std::string(j.type_name()));
  }
  SeedItem item;
  const std::pair<const char*, std::string*> fields[] = {{"id", &item.id},
                                                         {"family", &item.family},
                                                         {"category", &item.category},
                                                         {"rubric", &item.rubric},
                                                         {"system_prompt", &item.system_prompt},
                                                         {"first_user", &item.first_user},
                                                         {"goal", &item.goal},
                                                         {"persona", &item.persona},
                                                         {"document", &item.document}};
  for (const auto& [name, out] : fields) {
    if (!j.contains(name)) return Status::Corruption(context + ": missing \"" + name + "\"");
    BF_ASSIGN_OR_RETURN(*out, BytesFromJson(j[name], context + "." + name));
  }
  if (!j.contains("params") || !j["params"].is_array()) {
    return Status::Corruption(context + ": \"params\" must be an array of [name, value] pairs");
  }
  for (size_t i = 0; i < j["params"].size(); ++i) {
    const json& pair = j["params"][i];
    const std::string at = context + ".params[" + std::to_string(i) + "]";
    if (!pair.is_array() || pair.size() != 2) {
      return Status::Corruption(at + ": expected a [name, value] pair");
    }
    BF_ASSIGN_OR_RETURN(std::string name, BytesFromJson(pair[0], at));
    BF_ASSIGN_OR_RETURN(std::string value, BytesFromJson(pair[1], at));
    item.params[std::move(name)] = std::move(value);
  }
  return item;
}

}  // namespace store
}  // namespace breakfix
