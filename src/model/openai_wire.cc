#include "model/openai_wire.h"

#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

namespace breakfix {
namespace {

using Json = nlohmann::json;

constexpr size_t kErrorSnippetBytes = 300;
constexpr size_t kMaxErrorMessageBytes = 1000;

// Length of the valid UTF-8 sequence starting at s[i], or 0 when the bytes there are not one.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t len;
  uint32_t min;
  if (b0 < 0x80) return 1;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  uint32_t cp = b0 & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

void AppendNumber(std::string& out, double v) {
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, ec == std::errc() ? p : buf);
}

void AppendInteger(std::string& out, uint64_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, ec == std::errc() ? p : buf);
}

std::string StringField(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return std::string();
  return it->get<std::string>();
}

std::optional<int64_t> IntegerField(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number()) return std::nullopt;
  if (it->is_number_float()) return static_cast<int64_t>(it->get<double>());
  return it->get<int64_t>();
}

std::string Snippet(std::string_view body) {
  std::string out;
  for (size_t i = 0; i < body.size() && i < kErrorSnippetBytes; ++i) {
    const auto c = static_cast<unsigned char>(body[i]);
    out.push_back(c < 0x20 || c == 0x7F ? ' ' : static_cast<char>(c));
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (body.size() > kErrorSnippetBytes) out += "...";
  return out;
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  out.reserve(out.size() + text.size() + 2);
  size_t i = 0;
  while (i < text.size()) {
    // Copy the run of bytes that need no escaping in one go: most text is plain ASCII.
    size_t run = i;
    while (run < text.size()) {
      const auto b = static_cast<unsigned char>(text[run]);
      if (b < 0x20 || b >= 0x80 || b == '"' || b == '\\') break;
      ++run;
    }
    if (run > i) {
      out.append(text.data() + i, run - i);
      i = run;
      continue;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      size_t len = Utf8SequenceLength(text, i);
      if (len == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(text.data() + i, len);
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
}

Result<std::string> BuildChatRequestBody(const std::string& model,
                                         const std::vector<Message>& messages,
                                         const SamplingOptions& sampling, bool json_object) {
  if (!std::isfinite(sampling.temperature)) {
    return Status::InvalidArgument("sampling.temperature: expected a finite number");
  }
  if (!std::isfinite(sampling.top_p)) {
    return Status::InvalidArgument("sampling.top_p: expected a finite number");
  }
  size_t size = 160 + model.size();
  for (const Message& m : messages) size += m.content.size() + m.content.size() / 8 + 40;
  std::string out;
  out.reserve(size);
  out += '{';
  if (!model.empty()) {
    out += "\"model\":";
    AppendJsonString(out, model);
    out += ',';
  }
  out += "\"messages\":[";
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i > 0) out += ',';
    out += "{\"role\":\"";
    out += RoleName(messages[i].role);
    out += "\",\"content\":";
    AppendJsonString(out, messages[i].content);
    out += '}';
  }
  out += "],\"temperature\":";
  AppendNumber(out, sampling.temperature);
  out += ",\"top_p\":";
  AppendNumber(out, sampling.top_p);
  if (sampling.max_tokens > 0) {
    out += ",\"max_tokens\":";
    AppendInteger(out, static_cast<uint64_t>(sampling.max_tokens));
  }
  if (sampling.seed) {
    out += ",\"seed\":";
    AppendInteger(out, *sampling.seed);
  }
  if (!sampling.stop.empty()) {
    out += ",\"stop\":[";
    for (size_t i = 0; i < sampling.stop.size(); ++i) {
      if (i > 0) out += ',';
      AppendJsonString(out, sampling.stop[i]);
    }
    out += ']';
  }
  if (json_object) out += ",\"response_format\":{\"type\":\"json_object\"}";
  out += '}';
  return out;
}

Result<ParsedChatResponse> ParseChatResponseBody(std::string_view body) {
  Json j = Json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Status::Corruption("response body is not valid JSON (" + std::to_string(body.size()) +
                              " bytes): " + Snippet(body));
  }
  if (!j.is_object()) return Status::Corruption("response body: expected a JSON object");
  auto choices = j.find("choices");
  if (choices == j.end() || !choices->is_array() || choices->empty()) {
    if (j.contains("error")) {
      return Status::Corruption("response has no choices but an error: " +
                                ExtractErrorMessage(body));
    }
    return Status::Corruption("response body: expected a non-empty \"choices\" array");
  }
  const Json& choice = (*choices)[0];
  if (!choice.is_object()) return Status::Corruption("choices[0]: expected an object");
  auto message = choice.find("message");
  if (message == choice.end() || !message->is_object()) {
    return Status::Corruption("choices[0].message: expected an object");
  }
  ParsedChatResponse out;
  auto content = message->find("content");
  if (content != message->end()) {
    if (content->is_string()) {
      out.content = content->get<std::string>();
    } else if (content->is_array()) {
      // Some servers send content parts: [{"type":"text","text":"..."}].
      for (const Json& part : *content) {
        if (part.is_object()) out.content += StringField(part, "text");
      }
    } else if (!content->is_null()) {
      return Status::Corruption("choices[0].message.content: expected a string or null");
    }
  }
  if (out.content.empty()) out.content = StringField(*message, "refusal");
  out.finish_reason = StringField(choice, "finish_reason");
  out.model = StringField(j, "model");
  out.system_fingerprint = StringField(j, "system_fingerprint");
  auto usage = j.find("usage");
  if (usage != j.end() && usage->is_object()) {
    out.prompt_tokens = IntegerField(*usage, "prompt_tokens");
    out.completion_tokens = IntegerField(*usage, "completion_tokens");
  }
  return out;
}

// Caps a server-supplied message so one error cannot flood a log.
std::string Capped(std::string message) {
  if (message.size() > kMaxErrorMessageBytes) {
    message.resize(kMaxErrorMessageBytes);
    message += "...";
  }
  return message;
}

std::string ExtractErrorMessage(std::string_view body) {
  if (body.empty()) return "(empty body)";
  Json j = Json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded() && j.is_object()) {
    auto error = j.find("error");
    if (error != j.end() && error->is_object()) {
      std::string message = StringField(*error, "message");
      std::string details;
      std::string type = StringField(*error, "type");
      if (!type.empty()) details += "type: " + type;
      auto code = error->find("code");
      if (code != error->end() && !code->is_null()) {
        if (!details.empty()) details += ", ";
        details += "code: " + (code->is_string() ? code->get<std::string>() : code->dump());
      }
      if (!message.empty() || !details.empty()) {
        if (message.empty()) message = "(no message)";
        return Capped(details.empty() ? message : message + " (" + details + ")");
      }
    } else if (error != j.end() && error->is_string()) {
      return Capped(error->get<std::string>());  // {"error": "text"}, as some servers send
    }
    std::string message = StringField(j, "message");
    if (!message.empty()) return Capped(message);
  }
  return Snippet(body);
}

int64_t EstimateTokens(size_t chars) { return static_cast<int64_t>((chars + 3) / 4); }

}  // namespace breakfix
