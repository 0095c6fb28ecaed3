#include "curate/json_text.h"

namespace breakfix::curate {

using nlohmann::json;

std::string ValidUtf8(std::string_view text) {
  // Round trip through the JSON writer, which performs exactly the replacement DumpJson does.
  const std::string dumped = DumpJson(json(std::string(text)));
  return json::parse(dumped).get<std::string>();
}

nlohmann::ordered_json MessagesToJson(const std::vector<Message>& messages) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const Message& m : messages) {
    out.push_back({{"role", RoleName(m.role)}, {"content", m.content}});
  }
  return out;
}

Result<nlohmann::ordered_json> ParseJsonLine(const std::string& line, const std::string& where) {
  try {
    return nlohmann::ordered_json::parse(line);
  } catch (const nlohmann::ordered_json::parse_error& e) {
    // e.byte is 1-based; the column counts bytes, which is what an editor's "go to" takes for
    // the ASCII punctuation where JSON syntax errors occur.
    std::string what = e.what();
    const size_t column = what.find("column ");
    const size_t colon = what.find(": ", column == std::string::npos ? 0 : column);
    if (colon != std::string::npos) what = what.substr(colon + 2);
    return Status::InvalidArgument(where + ":" + std::to_string(e.byte) +
                                   ": not valid JSON: " + what);
  }
}

Result<std::vector<Message>> MessagesFromJson(const nlohmann::ordered_json& j,
                                              const std::string& where, const std::string& field) {
  auto error = [&](const std::string& sub, const std::string& what) {
    return Status::InvalidArgument(where + ": field \"" + field + sub + "\": " + what);
  };
  if (!j.is_array()) return error("", "expected a list of messages, found " + JsonTypeName(j));
  std::vector<Message> out;
  out.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    const nlohmann::ordered_json& m = j[i];
    const std::string at = "[" + std::to_string(i) + "]";
    if (!m.is_object()) {
      return error(at,
                   "expected a message object {\"role\", \"content\"}, found " + JsonTypeName(m));
    }
    auto role = m.find("role");
    if (role == m.end()) return error(at, "missing \"role\"");
    if (!role->is_string())
      return error(at + ".role", "expected a string, found " + JsonTypeName(*role));
    Result<Role> parsed = ParseRole(role->get<std::string>());
    if (!parsed.ok()) return error(at + ".role", parsed.status().message());
    auto content = m.find("content");
    if (content == m.end()) return error(at, "missing \"content\"");
    if (!content->is_string()) {
      return error(at + ".content", "expected a string, found " + JsonTypeName(*content));
    }
    out.push_back({*parsed, content->get<std::string>()});
  }
  return out;
}

}  // namespace breakfix::curate
