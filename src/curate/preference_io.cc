// Preference pairs and SFT examples as JSON Lines: the hand-off from curation to training, and the
// way external datasets come in. Writers are atomic; readers name file:line and the field.
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "breakfix/curate.h"
#include "breakfix/hash.h"
#include "core/atomic_file.h"
#include "curate/json_text.h"
#include "curate/line_reader.h"

namespace breakfix {
namespace {

using curate::DumpJson;
using curate::JsonTypeName;
using curate::LineReader;
using curate::MessagesFromJson;
using curate::MessagesToJson;
using nlohmann::json;
using nlohmann::ordered_json;

bool Blank(const std::string& line) { return line.find_first_not_of(" \t") == std::string::npos; }

Status FieldError(const std::string& where, const std::string& field, const std::string& what) {
  return Status::InvalidArgument(where + ": field \"" + field + "\": " + what);
}

// A stable id from the content, for files that carry none.
std::string ContentId(const std::vector<Message>& messages, const std::string& a,
                      const std::string& b) {
  KeyBuilder k;
  k.Add("content-id/v1");
  for (const Message& m : messages) k.Add(RoleName(m.role)).Add(m.content);
  k.Add(a).Add(b);
  return k.Hex().substr(0, 16);
}

// A prompt: a string (one user message) or a list of messages, optionally opened by a system
// message, ending with a user message.
Result<std::vector<Message>> ReadPrompt(const ordered_json& obj, const std::string& where) {
  auto it = obj.find("prompt");
  if (it == obj.end()) return FieldError(where, "prompt", "missing");
  std::vector<Message> prompt;
  if (it->is_string()) {
    prompt.push_back({Role::kUser, it->get<std::string>()});
  } else if (it->is_array()) {
    BF_ASSIGN_OR_RETURN(prompt, MessagesFromJson(*it, where, "prompt"));
  } else {
    return FieldError(where, "prompt",
                      "expected a string or a list of messages, found " + JsonTypeName(*it));
  }
  if (prompt.empty()) return FieldError(where, "prompt", "the list of messages is empty");
  for (size_t i = 1; i < prompt.size(); ++i) {
    if (prompt[i].role == Role::kSystem) {
      return FieldError(where, "prompt[" + std::to_string(i) + "].role",
                        "a system message may only come first");
    }
  }
  if (prompt.back().role != Role::kUser) {
    return FieldError(
        where, "prompt",
        std::string("must end with a user message, ends with ") + RoleName(prompt.back().role));
  }
  return prompt;
}

// A reply: a string, or a list holding exactly one assistant message (TRL's conversational form).
Result<std::string> ReadReply(const ordered_json& obj, const std::string& where,
                              const char* field) {
  auto it = obj.find(field);
  if (it == obj.end()) return FieldError(where, field, "missing");
  std::string text;
  if (it->is_string()) {
    text = it->get<std::string>();
  } else if (it->is_array()) {
    BF_ASSIGN_OR_RETURN(std::vector<Message> messages, MessagesFromJson(*it, where, field));
    if (messages.size() != 1 || messages[0].role != Role::kAssistant) {
      return FieldError(
          where, field,
          "expected exactly one assistant message, found " + std::to_string(messages.size()) +
              " message(s)" +
              (messages.size() == 1 ? std::string(" with role ") + RoleName(messages[0].role)
                                    : std::string()));
    }
    text = std::move(messages[0].content);
  } else {
    return FieldError(
        where, field,
        "expected a string or a list with one assistant message, found " + JsonTypeName(*it));
  }
  if (Blank(text)) return FieldError(where, field, "the reply is empty");
  return text;
}

// Calls `fn` with every non-blank line of a JSONL file (plain or gzip), each of which must be a
// JSON object, and "path:line" for its errors.
Status ForEachObject(const std::string& path,
                     const std::function<Status(const ordered_json&, const std::string&)>& fn) {
  BF_ASSIGN_OR_RETURN(auto reader, LineReader::Open(path));
  std::string line;
  for (;;) {
    BF_ASSIGN_OR_RETURN(bool more, reader->Next(&line));
    if (!more) return Status::OK();
    if (Blank(line)) continue;
    const std::string where = path + ":" + std::to_string(reader->line_number());
    BF_ASSIGN_OR_RETURN(ordered_json obj, curate::ParseJsonLine(line, where));
    if (!obj.is_object()) {
      return Status::InvalidArgument(where + ": expected a JSON object, found " +
                                     JsonTypeName(obj));
    }
    BF_RETURN_IF_ERROR(fn(obj, where));
  }
}

Result<std::string> OptionalString(const ordered_json& obj, const std::string& where,
                                   const char* field, const std::string& fallback) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_string()) {
    return FieldError(where, field, "expected a string, found " + JsonTypeName(*it));
  }
  return it->get<std::string>();
}

// Provenance keeps the key order it was written with.
ordered_json ProvenanceObject(const PreferencePair& pair, Status* error) {
  if (pair.provenance_json.empty()) return ordered_json::object();
  ordered_json j = ordered_json::parse(pair.provenance_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    *error = Status::InvalidArgument("pair " + pair.id +
                                     ": provenance is not a JSON object: " + pair.provenance_json);
    return ordered_json::object();
  }
  return j;
}

}  // namespace

Status WritePreferenceJsonl(const std::string& path, const std::vector<PreferencePair>& pairs) {
  BF_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path));
  for (const PreferencePair& pair : pairs) {
    Status error;
    ordered_json provenance = ProvenanceObject(pair, &error);
    BF_RETURN_IF_ERROR(error);
    ordered_json line = {{"id", pair.id},
                         {"prompt", MessagesToJson(pair.prompt)},
                         {"chosen", MessagesToJson({{Role::kAssistant, pair.chosen}})},
                         {"rejected", MessagesToJson({{Role::kAssistant, pair.rejected}})},
                         {"kind", pair.kind},
                         {"provenance", std::move(provenance)}};
    file->Write(DumpJson(line));
    file->Write("\n");
  }
  return file->Commit();
}

Result<std::vector<PreferencePair>> ReadPreferenceJsonl(const std::string& path) {
  std::vector<PreferencePair> pairs;
  BF_RETURN_IF_ERROR(ForEachObject(path, [&](const ordered_json& obj, const std::string& where) {
    PreferencePair pair;
    BF_ASSIGN_OR_RETURN(pair.prompt, ReadPrompt(obj, where));
    BF_ASSIGN_OR_RETURN(pair.chosen, ReadReply(obj, where, "chosen"));
    BF_ASSIGN_OR_RETURN(pair.rejected, ReadReply(obj, where, "rejected"));
    BF_ASSIGN_OR_RETURN(pair.kind, OptionalString(obj, where, "kind", kPairKindImported));
    BF_ASSIGN_OR_RETURN(pair.id, OptionalString(obj, where, "id", ""));
    if (pair.id.empty()) pair.id = ContentId(pair.prompt, pair.chosen, pair.rejected);
    auto prov = obj.find("provenance");
    if (prov == obj.end() || prov->is_null()) {
      pair.provenance_json = "{}";
    } else if (prov->is_object()) {
      pair.provenance_json = DumpJson(*prov);
    } else {
      return FieldError(where, "provenance", "expected an object, found " + JsonTypeName(*prov));
    }
    pairs.push_back(std::move(pair));
    return Status::OK();
  }));
  return pairs;
}

ChatExample SftExampleFromPair(const PreferencePair& pair) {
  ChatExample example;
  example.id = pair.id;
  example.messages = pair.prompt;
  example.messages.push_back({Role::kAssistant, pair.chosen});
  return example;
}

Status WriteSftJsonl(const std::string& path, const std::vector<ChatExample>& examples) {
  BF_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path));
  for (const ChatExample& example : examples) {
    ordered_json line = {{"id", example.id}, {"messages", MessagesToJson(example.messages)}};
    file->Write(DumpJson(line));
    file->Write("\n");
  }
  return file->Commit();
}

Result<std::vector<ChatExample>> ReadSftJsonl(const std::string& path) {
  std::vector<ChatExample> examples;
  BF_RETURN_IF_ERROR(ForEachObject(path, [&](const ordered_json& obj, const std::string& where) {
    ChatExample example;
    auto it = obj.find("messages");
    if (it == obj.end()) return FieldError(where, "messages", "missing");
    BF_ASSIGN_OR_RETURN(example.messages, MessagesFromJson(*it, where, "messages"));
    bool has_assistant = false;
    for (const Message& m : example.messages) has_assistant |= m.role == Role::kAssistant;
    if (!has_assistant) {
      return FieldError(where, "messages", "no assistant message: nothing to learn from");
    }
    BF_ASSIGN_OR_RETURN(example.id, OptionalString(obj, where, "id", ""));
    if (example.id.empty()) example.id = ContentId(example.messages, "", "");
    examples.push_back(std::move(example));
    return Status::OK();
  }));
  return examples;
}

}  // namespace breakfix
