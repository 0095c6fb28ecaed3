#include "testing/script_responder.h"

#include <charconv>
#include <exception>

#include <yaml-cpp/yaml.h>

#include "breakfix/hash.h"

namespace breakfix {
namespace {

constexpr const char* kRuleKeys =
    "system_contains, last_user_contains, any_contains, model, path, reply, status, "
    "error_message, headers, delay_ms, fault, times, every";

std::string Where(const std::string& name, const YAML::Mark& mark) {
  if (mark.is_null()) return name;
  return name + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

// Turns a YAML node into script values, naming the position of anything unexpected.
class ScriptReader {
 public:
  explicit ScriptReader(std::string name) : name_(std::move(name)) {}

  Status Error(const YAML::Node& node, const std::string& what) const {
    return Status::InvalidArgument(Where(name_, node.Mark()) + ": " + what);
  }

  Result<std::string> String(const YAML::Node& node, const std::string& key) const {
    if (!node.IsScalar()) return Error(node, "\"" + key + "\": expected a string");
    return node.Scalar();
  }

  Result<int64_t> Integer(const YAML::Node& node, const std::string& key, int64_t min,
                          int64_t max) const {
    std::string expected =
        "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
    if (!node.IsScalar()) return Error(node, "\"" + key + "\": expected " + expected);
    const std::string& s = node.Scalar();
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v < min || v > max) {
      return Error(node, "\"" + key + "\": expected " + expected + ", got \"" + s + "\"");
    }
    return v;
  }

  Result<ReplyTemplate> Template(const YAML::Node& node, const std::string& key) const {
    BF_ASSIGN_OR_RETURN(std::string text, String(node, key));
    Result<ReplyTemplate> t = ReplyTemplate::Parse(text);
    if (!t.ok()) return Error(node, "\"" + key + "\": " + t.status().message());
    return t;
  }

  Result<ScriptRule> Rule(const YAML::Node& node, size_t index) const {
    std::string label = "rule " + std::to_string(index + 1);
    if (!node.IsMap()) {
      return Error(node, label + ": expected a map of conditions and actions (" +
                             std::string(kRuleKeys) + ")");
    }
    ScriptRule rule;
    rule.where = Where(name_, node.Mark());
    bool has_status = false;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key_node = it->first;
      const YAML::Node value = it->second;
      if (!key_node.IsScalar()) return Error(key_node, label + ": expected a key name");
      const std::string key = key_node.Scalar();
      auto text = [&](std::optional<std::string>& field) -> Status {
        BF_ASSIGN_OR_RETURN(field, String(value, key));
        return Status::OK();
      };
      if (key == "system_contains") {
        BF_RETURN_IF_ERROR(text(rule.system_contains));
      } else if (key == "last_user_contains") {
        BF_RETURN_IF_ERROR(text(rule.last_user_contains));
      } else if (key == "any_contains") {
        BF_RETURN_IF_ERROR(text(rule.any_contains));
      } else if (key == "model") {
        BF_RETURN_IF_ERROR(text(rule.model));
      } else if (key == "path") {
        BF_RETURN_IF_ERROR(text(rule.path));
      } else if (key == "reply") {
        BF_ASSIGN_OR_RETURN(rule.reply, Template(value, key));
      } else if (key == "status") {
        BF_ASSIGN_OR_RETURN(int64_t status, Integer(value, key, 100, 599));
        rule.status = static_cast<int>(status);
        has_status = true;
      } else if (key == "error_message") {
        BF_ASSIGN_OR_RETURN(rule.error_message, String(value, key));
      } else if (key == "headers") {
        if (!value.IsMap()) return Error(value, "\"headers\": expected a map of header: value");
        for (auto h = value.begin(); h != value.end(); ++h) {
          BF_ASSIGN_OR_RETURN(std::string name, String(h->first, "headers"));
          BF_ASSIGN_OR_RETURN(std::string v, String(h->second, "headers." + name));
          if (name.empty() || name.find_first_of(":\r\n ") != std::string::npos ||
              v.find_first_of("\r\n") != std::string::npos) {
            return Error(h->first, "\"headers\": \"" + name +
                                       "\" is not a valid header name/value (no spaces, colons "
                                       "or line breaks)");
          }
          rule.headers.emplace_back(std::move(name), std::move(v));
        }
      } else if (key == "delay_ms") {
        BF_ASSIGN_OR_RETURN(rule.delay_ms, Integer(value, key, 0, 3600000));
      } else if (key == "fault") {
        BF_ASSIGN_OR_RETURN(std::string name, String(value, key));
        Result<FakeFault> fault = ParseFakeFault(name);
        if (!fault.ok()) return Error(value, "\"fault\": " + fault.status().message());
        rule.fault = *fault;
      } else if (key == "times") {
        BF_ASSIGN_OR_RETURN(rule.times, Integer(value, key, 1, INT64_MAX));
      } else if (key == "every") {
        BF_ASSIGN_OR_RETURN(rule.every, Integer(value, key, 1, INT64_MAX));
      } else {
        return Error(key_node,
                     label + ": unknown key \"" + key + "\"; expected one of: " + kRuleKeys);
      }
    }
    if (!rule.error_message.empty() && (!has_status || rule.status < 400)) {
      return Error(node, label + ": \"error_message\" needs an error \"status\" (400..599)");
    }
    return rule;
  }

  Result<std::unique_ptr<ScriptResponder>> Script(const YAML::Node& root) const {
    YAML::Node rules_node;
    std::optional<ReplyTemplate> default_reply;
    if (!root || root.IsNull()) {
      return std::make_unique<ScriptResponder>(std::vector<ScriptRule>{});
    }
    if (root.IsSequence()) {
      rules_node = root;
    } else if (root.IsMap()) {
      for (auto it = root.begin(); it != root.end(); ++it) {
        const std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
        if (key == "rules") {
          rules_node = it->second;
          if (!rules_node.IsSequence() && !rules_node.IsNull()) {
            return Error(rules_node, "\"rules\": expected a list of rules");
          }
        } else if (key == "default_reply") {
          BF_ASSIGN_OR_RETURN(default_reply, Template(it->second, key));
        } else {
          return Error(it->first,
                       "unknown top-level key \"" + key + "\"; expected rules or default_reply");
        }
      }
    } else {
      return Error(root, "expected a list of rules or a map with \"rules\"");
    }
    std::vector<ScriptRule> rules;
    if (rules_node && rules_node.IsSequence()) {
      for (size_t i = 0; i < rules_node.size(); ++i) {
        BF_ASSIGN_OR_RETURN(ScriptRule rule, Rule(rules_node[i], i));
        rules.push_back(std::move(rule));
      }
    }
    return std::make_unique<ScriptResponder>(std::move(rules), std::move(default_reply));
  }

 private:
  std::string name_;
};

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

const Message* LastUser(const std::vector<Message>& messages) {
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    if (it->role == Role::kUser) return &*it;
  }
  return nullptr;
}

bool Matches(const ScriptRule& rule, const FakeRequest& req) {
  if (rule.model && req.model != *rule.model) return false;
  if (rule.path && req.path != *rule.path) return false;
  if (rule.system_contains) {
    bool found = false;
    for (const Message& m : req.messages) {
      if (m.role == Role::kSystem && Contains(m.content, *rule.system_contains)) found = true;
    }
    if (!found) return false;
  }
  if (rule.last_user_contains) {
    const Message* last = LastUser(req.messages);
    if (last == nullptr || !Contains(last->content, *rule.last_user_contains)) return false;
  }
  if (rule.any_contains) {
    bool found = false;
    for (const Message& m : req.messages) {
      if (Contains(m.content, *rule.any_contains)) found = true;
    }
    if (!found) return false;
  }
  return true;
}

}  // namespace

Result<ReplyTemplate> ReplyTemplate::Parse(const std::string& text) {
  ReplyTemplate t;
  size_t pos = 0;
  std::string literal;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == std::string::npos) {
      literal += text.substr(pos);
      break;
    }
    size_t close = text.find("}}", open + 2);
    if (close == std::string::npos) {
      return Status::InvalidArgument("unclosed \"{{\" at offset " + std::to_string(open) +
                                     ": expected {{last_user}} or {{turn}}");
    }
    std::string field = text.substr(open + 2, close - open - 2);
    while (!field.empty() && field.front() == ' ') field.erase(0, 1);
    while (!field.empty() && field.back() == ' ') field.pop_back();
    Piece piece;
    if (field == "last_user") {
      piece = Piece::kLastUser;
    } else if (field == "turn") {
      piece = Piece::kTurn;
    } else {
      return Status::InvalidArgument("unknown placeholder {{" + field +
                                     "}}: expected {{last_user}} or {{turn}}");
    }
    literal += text.substr(pos, open - pos);
    if (!literal.empty()) t.pieces_.emplace_back(Piece::kText, std::move(literal));
    literal.clear();
    t.pieces_.emplace_back(piece, std::string());
    pos = close + 2;
  }
  if (!literal.empty()) t.pieces_.emplace_back(Piece::kText, std::move(literal));
  return t;
}

std::string ReplyTemplate::Render(const std::vector<Message>& messages) const {
  std::string out;
  for (const auto& [piece, text] : pieces_) {
    switch (piece) {
      case Piece::kText:
        out += text;
        break;
      case Piece::kLastUser: {
        const Message* last = LastUser(messages);
        if (last != nullptr) out += last->content;
        break;
      }
      case Piece::kTurn: {
        int64_t turns = 0;
        for (const Message& m : messages) turns += m.role == Role::kUser ? 1 : 0;
        out += std::to_string(turns);
        break;
      }
    }
  }
  return out;
}

std::string DefaultScriptedReply(const std::vector<Message>& messages) {
  KeyBuilder key;
  for (const Message& m : messages) key.Add(std::string_view(RoleName(m.role))).Add(m.content);
  return "Scripted reply " + key.Hex().substr(0, 8);
}

Result<std::unique_ptr<ScriptResponder>> ScriptResponder::FromFile(const std::string& path,
                                                                   Env* env) {
  BF_ASSIGN_OR_RETURN(std::string text, env->ReadFile(path));
  return FromString(text, path);
}

Result<std::unique_ptr<ScriptResponder>> ScriptResponder::FromString(const std::string& text,
                                                                     const std::string& name) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(Where(name, e.mark) + ": invalid YAML: " + e.msg);
  }
  try {
    return ScriptReader(name).Script(root);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(Where(name, e.mark) + ": " + e.msg);
  }
}

ScriptResponder::ScriptResponder(std::vector<ScriptRule> rules,
                                 std::optional<ReplyTemplate> default_reply)
    : rules_(std::move(rules)),
      default_reply_(std::move(default_reply)),
      counters_(rules_.size()) {}

FakeReply ScriptResponder::Respond(const FakeRequest& request) {
  const ScriptRule* chosen = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < rules_.size() && chosen == nullptr; ++i) {
      const ScriptRule& rule = rules_[i];
      Counters& c = counters_[i];
      if (rule.times > 0 && c.applied >= rule.times) continue;
      if (!Matches(rule, request)) continue;
      ++c.matched;
      if (rule.every > 1 && c.matched % rule.every != 0) continue;
      ++c.applied;
      chosen = &rule;
    }
  }
  FakeReply reply;
  if (chosen == nullptr) {
    reply.content = default_reply_ ? default_reply_->Render(request.messages)
                                   : DefaultScriptedReply(request.messages);
    return reply;
  }
  if (chosen->reply) {
    reply.content = chosen->reply->Render(request.messages);
  } else if (default_reply_) {
    reply.content = default_reply_->Render(request.messages);
  } else {
    reply.content = DefaultScriptedReply(request.messages);
  }
  reply.status = chosen->status;
  reply.error_message = chosen->error_message;
  reply.headers = chosen->headers;
  reply.delay_ms = chosen->delay_ms;
  reply.fault = chosen->fault;
  return reply;
}

Responder ScriptResponder::AsResponder() {
  return [this](const FakeRequest& request) { return Respond(request); };
}

int64_t ScriptResponder::applied_count(size_t index) const {
  std::lock_guard<std::mutex> lock(mu_);
  return index < counters_.size() ? counters_[index].applied : 0;
}

}  // namespace breakfix
