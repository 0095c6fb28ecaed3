#include "serve/openai_api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace breakfix::serve {
namespace {

using nlohmann::json;

TEST(OpenAIApiTest, ChatDefaultsFollowOpenAI) {
  auto parsed = ParseChatRequest(R"({"messages":[{"role":"developer","content":"rules"},
                                                  {"role":"user","content":"hi"},
                                                  {"role":"assistant","content":null}]})");
  ASSERT_TRUE(std::holds_alternative<ChatRequestSpec>(parsed));
  const auto& spec = std::get<ChatRequestSpec>(parsed);
  EXPECT_DOUBLE_EQ(spec.sampling.params.temperature, 1.0);  // OpenAI's default
  EXPECT_EQ(spec.sampling.params.max_tokens, 0);            // until the context is full
  EXPECT_FALSE(spec.sampling.stream);
  ASSERT_EQ(spec.messages.size(), 3u);
  EXPECT_EQ(spec.messages[0].role, Role::kSystem);
  EXPECT_EQ(spec.messages[2].content, "");
}

TEST(OpenAIApiTest, UnknownFieldsAreIgnoredButUnsupportedFeaturesAreNamed) {
  auto ok = ParseChatRequest(
      R"({"messages":[{"role":"user","content":"x"}],"user":"u1","metadata":{"a":1},"presence_penalty":0})");
  EXPECT_TRUE(std::holds_alternative<ChatRequestSpec>(ok));
  auto json_mode = ParseChatRequest(
      R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}})");
  ASSERT_TRUE(std::holds_alternative<ApiError>(json_mode));
  EXPECT_EQ(std::get<ApiError>(json_mode).param, "response_format");
  EXPECT_EQ(std::get<ApiError>(json_mode).code, "unsupported_parameter");
  auto big_seed = ParseChatRequest(
      R"({"messages":[{"role":"user","content":"x"}],"seed":18446744073709551615})");
  ASSERT_TRUE(std::holds_alternative<ChatRequestSpec>(big_seed));
  EXPECT_EQ(*std::get<ChatRequestSpec>(big_seed).sampling.params.seed, 18446744073709551615ull);
}

TEST(OpenAIApiTest, ErrorAndChunkShapes) {
  ApiError e;
  e.status = 404;
  e.message = "no such model";
  e.param = "model";
  e.code = "model_not_found";
  json err = json::parse(ErrorJson(e));
  EXPECT_EQ(err["error"]["message"], "no such model");
  EXPECT_EQ(err["error"]["type"], "invalid_request_error");
  EXPECT_EQ(err["error"]["param"], "model");
  EXPECT_EQ(err["error"]["code"], "model_not_found");

  ResponseMeta meta;
  meta.id = "chatcmpl-1";
  meta.model = "m";
  meta.logprobs = true;
  std::string role = "assistant";
  std::string ev = ChatChunkEvent(meta, &role, "", {}, {}, nullptr);
  ASSERT_EQ(ev.rfind("data: ", 0), 0u);
  ASSERT_EQ(ev.substr(ev.size() - 2), "\n\n");
  json first = json::parse(ev.substr(6));
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  std::string stop = "stop";
  json last = json::parse(ChatChunkEvent(meta, nullptr, "", {}, {}, &stop).substr(6));
  EXPECT_TRUE(last["choices"][0]["delta"].empty());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  json lp = json::parse(
      ChatChunkEvent(meta, nullptr, "ab", {"a", "b"}, {-0.1f, -2.0f}, nullptr).substr(6));
  EXPECT_EQ(lp["choices"][0]["logprobs"]["content"].size(), 2u);
  EXPECT_EQ(lp["choices"][0]["logprobs"]["content"][1]["bytes"], json::array({98}));
  // Invalid UTF-8 from a model never breaks the JSON.
  CompletionResult r;
  r.text = std::string("bad \xff byte");
  r.finish_reason = "stop";
  EXPECT_FALSE(json::parse(ChatCompletionJson(meta, r), nullptr, false).is_discarded());
}

}  // namespace
}  // namespace breakfix::serve
