#include "serve/openai_api.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

namespace breakfix::serve {
namespace {

using nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

ApiError Bad(const std::string& param, const std::string& message) {
  ApiError e;
  e.status = 400;
  e.param = param;
  e.message = message;
  return e;
}

ApiError Unsupported(const std::string& param, const std::string& what) {
  ApiError e = Bad(param, what + " is not supported by breakfix serve");
  e.code = "unsupported_parameter";
  return e;
}

const char* TypeName(const json& v) { return v.type_name(); }

// Each reader leaves `out` unchanged when the field is absent or null and returns an error
// message when it is present with the wrong type or range.
std::optional<ApiError> ReadNumber(const json& body, const char* key, double lo, double hi,
                                   double* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) {
    return Bad(key, std::string("'") + key + "' must be a number, got " + TypeName(*it));
  }
  double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) {
    return Bad(key, std::string("'") + key + "' must be between " + json(lo).dump() + " and " +
                        json(hi).dump() + ", got " + it->dump());
  }
  *out = v;
  return std::nullopt;
}

std::optional<ApiError> ReadInt(const json& body, const char* key, int64_t lo, int64_t hi,
                                int64_t* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer() && !it->is_number_unsigned()) {
    return Bad(key, std::string("'") + key + "' must be an integer, got " + it->dump());
  }
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(hi)) {
    return Bad(key, std::string("'") + key + "' is too large: " + it->dump());
  }
  int64_t v = it->get<int64_t>();
  if (v < lo || v > hi) {
    return Bad(key, std::string("'") + key + "' must be between " + std::to_string(lo) + " and " +
                        std::to_string(hi) + ", got " + std::to_string(v));
  }
  *out = v;
  return std::nullopt;
}

std::optional<ApiError> ReadBool(const json& body, const char* key, bool* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) {
    return Bad(key, std::string("'") + key + "' must be a boolean, got " + TypeName(*it));
  }
  *out = it->get<bool>();
  return std::nullopt;
}

// Fields common to chat and text completions.
std::optional<ApiError> ReadSampling(const json& body, SamplingRequest* s) {
  if (auto it = body.find("model"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) return Bad("model", "'model' must be a string");
    s->model = it->get<std::string>();
  }
  GenerationParams& p = s->params;
  p.max_tokens = 0;
  int64_t max_tokens = 0;
  if (auto e = ReadInt(body, "max_tokens", 1, 1 << 24, &max_tokens)) return e;
  if (auto e = ReadInt(body, "max_completion_tokens", 1, 1 << 24, &max_tokens)) return e;
  p.max_tokens = static_cast<int>(max_tokens);
  double temperature = 1.0;  // OpenAI's default when the field is absent
  if (auto e = ReadNumber(body, "temperature", 0, 2, &temperature)) return e;
  p.temperature = temperature;
  if (auto e = ReadNumber(body, "top_p", 0, 1, &p.top_p)) return e;
  if (body.contains("top_p") && body["top_p"].is_number() && p.top_p <= 0) {
    return Bad("top_p", "'top_p' must be greater than 0");
  }
  int64_t top_k = 0;
  if (auto e = ReadInt(body, "top_k", 0, 1 << 20, &top_k)) return e;
  p.top_k = static_cast<int>(top_k);
  if (auto e = ReadNumber(body, "min_p", 0, 1, &p.min_p)) return e;
  if (auto e = ReadNumber(body, "repetition_penalty", 0.01, 100, &p.repetition_penalty)) return e;
  for (const char* key : {"presence_penalty", "frequency_penalty"}) {
    double v = 0;
    if (auto e = ReadNumber(body, key, -2, 2, &v)) return e;
    if (v != 0) return Unsupported(key, std::string("a non-zero '") + key + "'");
  }
  int64_t n = 1;
  if (auto e = ReadInt(body, "n", 1, 128, &n)) return e;
  if (n != 1) return Unsupported("n", "'n' other than 1");
  if (auto it = body.find("seed"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer() && !it->is_number_unsigned()) {
      return Bad("seed", "'seed' must be an integer, got " + it->dump());
    }
    p.seed =
        it->is_number_unsigned() ? it->get<uint64_t>() : static_cast<uint64_t>(it->get<int64_t>());
  }
  if (auto it = body.find("stop"); it != body.end() && !it->is_null()) {
    if (it->is_string()) {
      p.stop.push_back(it->get<std::string>());
    } else if (it->is_array()) {
      if (it->size() > 4) return Bad("stop", "'stop' may hold at most 4 strings");
      for (const json& s : *it) {
        if (!s.is_string()) return Bad("stop", "'stop' must be a string or a list of strings");
        p.stop.push_back(s.get<std::string>());
      }
    } else {
      return Bad("stop", "'stop' must be a string or a list of strings");
    }
    for (const std::string& s : p.stop) {
      if (s.empty()) return Bad("stop", "'stop' strings must not be empty");
    }
  }
  if (auto e = ReadBool(body, "stream", &s->stream)) return e;
  if (auto it = body.find("stream_options"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) return Bad("stream_options", "'stream_options' must be an object");
    if (auto e = ReadBool(*it, "include_usage", &s->include_usage)) {
      e->param = "stream_options.include_usage";
      return e;
    }
  }
  if (auto it = body.find("response_format"); it != body.end() && !it->is_null()) {
    if (!it->is_object() || !it->contains("type") || !(*it)["type"].is_string()) {
      return Bad("response_format", "'response_format' must be an object with a 'type'");
    }
    if ((*it)["type"] != "text") {
      return Unsupported("response_format", "response_format " + (*it)["type"].dump());
    }
  }
  for (const char* key : {"tools", "functions", "tool_choice", "function_call"}) {
    if (auto it = body.find(key); it != body.end() && !it->is_null()) {
      return Unsupported(key, std::string("'") + key + "'");
    }
  }
  return std::nullopt;
}

std::optional<ApiError> ReadLogprobs(const json& body, bool chat, GenerationParams* p) {
  if (chat) {
    if (auto e = ReadBool(body, "logprobs", &p->logprobs)) return e;
    int64_t top = 0;
    if (auto e = ReadInt(body, "top_logprobs", 0, 20, &top)) return e;
    if (top > 0) return Unsupported("top_logprobs", "'top_logprobs' above 0");
    return std::nullopt;
  }
  // Legacy completions: "logprobs" is an integer count of alternatives; 0 = chosen tokens only.
  auto it = body.find("logprobs");
  if (it == body.end() || it->is_null()) return std::nullopt;
  int64_t count = 0;
  if (auto e = ReadInt(body, "logprobs", 0, 5, &count)) return e;
  if (count > 0) return Unsupported("logprobs", "'logprobs' alternatives above 0");
  p->logprobs = true;
  return std::nullopt;
}

std::variant<json, ApiError> ParseBody(const std::string& text) {
  json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    return Bad("", "the request body is not valid JSON");
  }
  if (!body.is_object()) return Bad("", "the request body must be a JSON object");
  return body;
}

Result<Role> MessageRole(const std::string& role) {
  if (role == "system" || role == "developer") return Role::kSystem;
  if (role == "user") return Role::kUser;
  if (role == "assistant") return Role::kAssistant;
  return Status::InvalidArgument(role);
}

}  // namespace

std::string ErrorJson(const ApiError& error) {
  json e = {{"message", error.message},
            {"type", error.type},
            {"param", error.param.empty() ? json() : json(error.param)},
            {"code", error.code.empty() ? json() : json(error.code)}};
  return Dump(json{{"error", e}});
}

std::variant<ChatRequestSpec, ApiError> ParseChatRequest(const std::string& text) {
  auto parsed = ParseBody(text);
  if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
  const json& body = std::get<json>(parsed);
  ChatRequestSpec spec;
  if (auto e = ReadSampling(body, &spec.sampling)) return *e;
  if (auto e = ReadLogprobs(body, /*chat=*/true, &spec.sampling.params)) return *e;
  auto it = body.find("messages");
  if (it == body.end() || !it->is_array() || it->empty()) {
    return Bad("messages", "'messages' must be a non-empty list of messages");
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return Bad(where, where + " must be an object");
    if (!m.contains("role") || !m["role"].is_string()) {
      return Bad(where + ".role", where + ".role must be a string");
    }
    const std::string role = m["role"].get<std::string>();
    Result<Role> r = MessageRole(role);
    if (!r.ok()) {
      if (role == "tool" || role == "function") {
        return Unsupported(where + ".role", "the '" + role + "' role");
      }
      return Bad(where + ".role",
                 where + ".role must be system, user or assistant, got '" + role + "'");
    }
    Message msg;
    msg.role = *r;
    auto content = m.find("content");
    if (content == m.end() || content->is_null()) {
      if (msg.role != Role::kAssistant) {
        return Bad(where + ".content", where + ".content is required");
      }
    } else if (content->is_string()) {
      msg.content = content->get<std::string>();
    } else if (content->is_array()) {
      for (size_t k = 0; k < content->size(); ++k) {
        const json& part = (*content)[k];
        const std::string pw = where + ".content[" + std::to_string(k) + "]";
        if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
          return Bad(pw, pw + " must be an object with a 'type'");
        }
        if (part["type"] != "text") {
          return Unsupported(pw + ".type", "content of type " + part["type"].dump());
        }
        if (!part.contains("text") || !part["text"].is_string()) {
          return Bad(pw + ".text", pw + ".text must be a string");
        }
        msg.content += part["text"].get<std::string>();
      }
    } else {
      return Bad(where + ".content", where + ".content must be a string or a list of parts");
    }
    spec.messages.push_back(std::move(msg));
  }
  return spec;
}

std::variant<CompletionRequestSpec, ApiError> ParseCompletionRequest(const std::string& text) {
  auto parsed = ParseBody(text);
  if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
  const json& body = std::get<json>(parsed);
  CompletionRequestSpec spec;
  if (auto e = ReadSampling(body, &spec.sampling)) return *e;
  if (auto e = ReadLogprobs(body, /*chat=*/false, &spec.sampling.params)) return *e;
  if (body.contains("max_tokens") == false) spec.sampling.params.max_tokens = 16;  // OpenAI default
  auto it = body.find("prompt");
  if (it == body.end() || it->is_null()) return Bad("prompt", "'prompt' is required");
  if (it->is_string()) {
    spec.prompt = it->get<std::string>();
  } else if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) {
    for (const json& t : *it) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX) {
        return Bad("prompt", "'prompt' as tokens must be a list of non-negative integers");
      }
      spec.prompt_tokens.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
    spec.tokens_given = true;
  } else if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
    spec.prompt = (*it)[0].get<std::string>();
  } else if (it->is_array()) {
    return Unsupported("prompt", "more than one prompt per request");
  } else {
    return Bad("prompt", "'prompt' must be a string or a list of token ids");
  }
  bool echo = false;
  if (auto e = ReadBool(body, "echo", &echo)) return *e;
  if (echo) return Unsupported("echo", "'echo'");
  if (auto it2 = body.find("suffix"); it2 != body.end() && !it2->is_null()) {
    return Unsupported("suffix", "'suffix'");
  }
  return spec;
}

namespace {

json Usage(int prompt_tokens, int completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

json ChatLogprobs(const std::vector<std::string>& texts, const std::vector<float>& logprobs) {
  json content = json::array();
  for (size_t i = 0; i < texts.size() && i < logprobs.size(); ++i) {
    json bytes = json::array();
    for (unsigned char c : texts[i]) bytes.push_back(static_cast<int>(c));
    content.push_back({{"token", texts[i]},
                       {"logprob", logprobs[i]},
                       {"bytes", bytes},
                       {"top_logprobs", json::array()}});
  }
  return {{"content", content}};
}

json TextLogprobs(const std::vector<std::string>& texts, const std::vector<float>& logprobs) {
  json tokens = json::array(), values = json::array(), offsets = json::array();
  size_t offset = 0;
  for (size_t i = 0; i < texts.size() && i < logprobs.size(); ++i) {
    tokens.push_back(texts[i]);
    values.push_back(logprobs[i]);
    offsets.push_back(offset);
    offset += texts[i].size();
  }
  return {{"tokens", tokens},
          {"token_logprobs", values},
          {"text_offset", offsets},
          {"top_logprobs", json()}};
}

json Header(const ResponseMeta& meta, const char* object) {
  return {{"id", meta.id},
          {"object", object},
          {"created", meta.created},
          {"model", meta.model},
          {"system_fingerprint", meta.system_fingerprint}};
}

}  // namespace

std::string ChatCompletionJson(const ResponseMeta& meta, const CompletionResult& r) {
  json j = Header(meta, "chat.completion");
  json choice = {{"index", 0},
                 {"message", {{"role", "assistant"}, {"content", r.text}}},
                 {"logprobs", meta.logprobs ? ChatLogprobs(r.token_texts, r.logprobs) : json()},
                 {"finish_reason", r.finish_reason}};
  j["choices"] = json::array({choice});
  j["usage"] = Usage(r.prompt_tokens, r.completion_tokens);
  return Dump(j);
}

std::string TextCompletionJson(const ResponseMeta& meta, const CompletionResult& r) {
  json j = Header(meta, "text_completion");
  json choice = {{"index", 0},
                 {"text", r.text},
                 {"logprobs", meta.logprobs ? TextLogprobs(r.token_texts, r.logprobs) : json()},
                 {"finish_reason", r.finish_reason}};
  j["choices"] = json::array({choice});
  j["usage"] = Usage(r.prompt_tokens, r.completion_tokens);
  return Dump(j);
}

std::string ChatChunkEvent(const ResponseMeta& meta, const std::string* role,
                           const std::string& delta, const std::vector<std::string>& token_texts,
                           const std::vector<float>& logprobs, const std::string* finish_reason) {
  json j = Header(meta, "chat.completion.chunk");
  json d = json::object();
  if (role != nullptr) d["role"] = *role;
  if (role != nullptr || !delta.empty()) d["content"] = delta;
  json choice = {
      {"index", 0},
      {"delta", d},
      {"logprobs",
       meta.logprobs && !token_texts.empty() ? ChatLogprobs(token_texts, logprobs) : json()},
      {"finish_reason", finish_reason ? json(*finish_reason) : json()}};
  j["choices"] = json::array({choice});
  return "data: " + Dump(j) + "\n\n";
}

std::string TextChunkEvent(const ResponseMeta& meta, const std::string& delta,
                           const std::vector<std::string>& token_texts,
                           const std::vector<float>& logprobs, const std::string* finish_reason) {
  json j = Header(meta, "text_completion");
  json choice = {
      {"index", 0},
      {"text", delta},
      {"logprobs",
       meta.logprobs && !token_texts.empty() ? TextLogprobs(token_texts, logprobs) : json()},
      {"finish_reason", finish_reason ? json(*finish_reason) : json()}};
  j["choices"] = json::array({choice});
  return "data: " + Dump(j) + "\n\n";
}

std::string UsageChunkEvent(const ResponseMeta& meta, bool chat, int prompt_tokens,
                            int completion_tokens) {
  json j = Header(meta, chat ? "chat.completion.chunk" : "text_completion");
  j["choices"] = json::array();
  j["usage"] = Usage(prompt_tokens, completion_tokens);
  return "data: " + Dump(j) + "\n\n";
}

std::string ModelsJson(const std::string& model_id, int64_t created) {
  json model = {
      {"id", model_id}, {"object", "model"}, {"created", created}, {"owned_by", "breakfix"}};
  return Dump(json{{"object", "list"}, {"data", json::array({model})}});
}

}  // namespace breakfix::serve
