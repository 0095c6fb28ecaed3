#include "cycle/training_data.h"

#include <functional>
#include <nlohmann/json.hpp>

#include "curate/json_text.h"
#include "curate/line_reader.h"

namespace breakfix {
namespace {

using nlohmann::ordered_json;

Status FieldError(const std::string& where, const std::string& field, const std::string& what) {
  return Status::InvalidArgument(where + ": field \"" + field + "\": " + what);
}

Result<std::string> StringField(const ordered_json& obj, const std::string& where,
                                const char* field, bool required) {
  auto it = obj.find(field);
  if (it == obj.end()) {
    if (required) return FieldError(where, field, "missing");
    return std::string();
  }
  if (!it->is_string()) {
    return FieldError(where, field, "expected a string, found " + curate::JsonTypeName(*it));
  }
  return it->get<std::string>();
}

// User first, then alternating user/assistant; `end` is the role the list must end with.
Status CheckAlternation(const std::vector<Message>& messages, const std::string& where,
                        const char* field, Role end) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const Role expected = i % 2 == 0 ? Role::kUser : Role::kAssistant;
    if (messages[i].role != expected) {
      return FieldError(where, std::string(field) + "[" + std::to_string(i) + "].role",
                        std::string("expected ") + RoleName(expected) + ", found " +
                            RoleName(messages[i].role) +
                            " (turns alternate user/assistant from a user turn)");
    }
  }
  if (!messages.empty() && messages.back().role != end) {
    return FieldError(where, field, std::string("must end with an ") + RoleName(end) + " turn");
  }
  return Status::OK();
}

// Reads every non-blank line of `path` as a JSON object and hands it to `parse`.
Result<std::vector<ChatExample>> ReadLines(
    const std::string& path,
    const std::function<Result<ChatExample>(const ordered_json&, const std::string&)>& parse) {
  BF_ASSIGN_OR_RETURN(std::unique_ptr<curate::LineReader> reader, curate::LineReader::Open(path));
  std::vector<ChatExample> out;
  std::string line;
  while (true) {
    BF_ASSIGN_OR_RETURN(bool more, reader->Next(&line));
    if (!more) break;
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(reader->line_number());
    BF_ASSIGN_OR_RETURN(ordered_json obj, curate::ParseJsonLine(line, where));
    if (!obj.is_object()) {
      return Status::InvalidArgument(where + ": expected a JSON object, found " +
                                     curate::JsonTypeName(obj));
    }
    BF_ASSIGN_OR_RETURN(ChatExample example, parse(obj, where));
    if (example.id.empty()) example.id = where;
    out.push_back(std::move(example));
  }
  if (out.empty()) return Status::InvalidArgument(path + ": the file holds no examples");
  return out;
}

}  // namespace

Result<std::vector<ChatExample>> ReadPolicyDialogues(const std::string& path,
                                                     const std::string& policy) {
  return ReadLines(
      path, [&](const ordered_json& obj, const std::string& where) -> Result<ChatExample> {
        ChatExample e;
        BF_ASSIGN_OR_RETURN(e.id, StringField(obj, where, "id", false));
        auto messages = obj.find("messages");
        if (messages == obj.end()) return FieldError(where, "messages", "missing");
        BF_ASSIGN_OR_RETURN(std::vector<Message> turns,
                            curate::MessagesFromJson(*messages, where, "messages"));
        if (turns.empty()) return FieldError(where, "messages", "the list is empty");
        BF_RETURN_IF_ERROR(CheckAlternation(turns, where, "messages", Role::kAssistant));
        bool with_policy = false;
        if (auto p = obj.find("policy"); p != obj.end()) {
          if (!p->is_boolean()) {
            return FieldError(where, "policy",
                              "expected true or false, found " + curate::JsonTypeName(*p));
          }
          with_policy = p->get<bool>();
        }
        if (with_policy) e.messages.push_back({Role::kSystem, policy});
        e.messages.insert(e.messages.end(), turns.begin(), turns.end());
        return e;
      });
}

Result<std::vector<ChatExample>> ReadSimulatorExamples(const std::string& path,
                                                       const SimulatorOptions& options) {
  return ReadLines(path,
                   [&](const ordered_json& obj, const std::string& where) -> Result<ChatExample> {
                     ChatExample e;
                     BF_ASSIGN_OR_RETURN(e.id, StringField(obj, where, "id", false));
                     SeedItem item;
                     BF_ASSIGN_OR_RETURN(item.persona, StringField(obj, where, "persona", true));
                     BF_ASSIGN_OR_RETURN(item.goal, StringField(obj, where, "goal", true));
                     BF_ASSIGN_OR_RETURN(item.category, StringField(obj, where, "category", true));
                     BF_ASSIGN_OR_RETURN(item.family, StringField(obj, where, "family", false));
                     BF_ASSIGN_OR_RETURN(std::string next, StringField(obj, where, "next", true));
                     if (next.empty()) return FieldError(where, "next", "is empty");
                     auto turns_it = obj.find("turns");
                     if (turns_it == obj.end()) return FieldError(where, "turns", "missing");
                     BF_ASSIGN_OR_RETURN(std::vector<Message> turns,
                                         curate::MessagesFromJson(*turns_it, where, "turns"));
                     BF_RETURN_IF_ERROR(CheckAlternation(turns, where, "turns", Role::kAssistant));
                     e.messages = BuildSimulatorRequest(item, turns, options).messages;
                     e.messages.push_back({Role::kAssistant, next});
                     return e;
                   });
}

}  // namespace breakfix
