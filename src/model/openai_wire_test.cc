#include "model/openai_wire.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace breakfix {
namespace {

using Json = nlohmann::json;

Json Parse(const std::string& s) {
  Json j = Json::parse(s, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << s;
  return j;
}

TEST(AppendJsonStringTest, EscapesAndRoundTrips) {
  const std::string text = "quote\" backslash\\ newline\n tab\t nul" + std::string(1, '\0') +
                           " bell\x07 unicode \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
  std::string out;
  AppendJsonString(out, text);
  EXPECT_EQ(Parse(out).get<std::string>(), text);
}

TEST(AppendJsonStringTest, InvalidUtf8BecomesReplacementCharacter) {
  for (std::string bad : {std::string("a\xff"
                                      "b"),
                          std::string("\xc3"), std::string("\xe2\x82"), std::string("\xed\xa0\x80"),
                          std::string("\xc0\xaf")}) {
    std::string out;
    AppendJsonString(out, bad);
    Json j = Parse(out);
    EXPECT_NE(j.get<std::string>().find("\xef\xbf\xbd"), std::string::npos) << out;
  }
}

TEST(BuildChatRequestBodyTest, AllFields) {
  SamplingOptions s;
  s.temperature = 0.7;
  s.top_p = 0.9;
  s.max_tokens = 256;
  s.seed = 42;
  s.stop = {"\n\nUser:", "END"};
  std::vector<Message> messages = {
      {Role::kSystem, "be safe"}, {Role::kUser, "hi \"there\""}, {Role::kAssistant, "hello"}};
  auto body = BuildChatRequestBody("phi-3-mini", messages, s, /*json_object=*/true);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  Json j = Parse(*body);
  EXPECT_EQ(j["model"], "phi-3-mini");
  ASSERT_EQ(j["messages"].size(), 3u);
  EXPECT_EQ(j["messages"][0]["role"], "system");
  EXPECT_EQ(j["messages"][1]["content"], "hi \"there\"");
  EXPECT_EQ(j["messages"][2]["role"], "assistant");
  EXPECT_DOUBLE_EQ(j["temperature"].get<double>(), 0.7);
  EXPECT_DOUBLE_EQ(j["top_p"].get<double>(), 0.9);
  EXPECT_EQ(j["max_tokens"], 256);
  EXPECT_EQ(j["seed"], 42);
  EXPECT_EQ(j["stop"], Json({"\n\nUser:", "END"}));
  EXPECT_EQ(j["response_format"]["type"], "json_object");
}

TEST(BuildChatRequestBodyTest, OptionalFieldsOmitted) {
  SamplingOptions s;  // temperature 0, no seed, no stop
  s.max_tokens = 0;
  auto body = BuildChatRequestBody("", {{Role::kUser, "x"}}, s, false);
  ASSERT_TRUE(body.ok());
  Json j = Parse(*body);
  EXPECT_FALSE(j.contains("model"));
  EXPECT_FALSE(j.contains("seed"));
  EXPECT_FALSE(j.contains("stop"));
  EXPECT_FALSE(j.contains("max_tokens"));
  EXPECT_FALSE(j.contains("response_format"));
  EXPECT_EQ(j["temperature"], 0);
}

TEST(BuildChatRequestBodyTest, NonFiniteSamplingIsRejected) {
  SamplingOptions s;
  s.temperature = std::nan("");
  auto body = BuildChatRequestBody("m", {{Role::kUser, "x"}}, s, false);
  ASSERT_FALSE(body.ok());
  EXPECT_EQ(body.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(body.status().message().find("temperature"), std::string::npos);
}

TEST(ParseChatResponseTest, FullResponse) {
  auto r = ParseChatResponseBody(R"({"id":"x","model":"phi-3","system_fingerprint":"fp_1",
    "choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"length"}],
    "usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->content, "Hello");
  EXPECT_EQ(r->finish_reason, "length");
  EXPECT_EQ(r->model, "phi-3");
  EXPECT_EQ(r->system_fingerprint, "fp_1");
  EXPECT_EQ(r->prompt_tokens, 12);
  EXPECT_EQ(r->completion_tokens, 3);
}

TEST(ParseChatResponseTest, NullContentAndRefusal) {
  auto r = ParseChatResponseBody(
      R"({"choices":[{"message":{"role":"assistant","content":null,"refusal":"I can't help."}}]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->content, "I can't help.");
  EXPECT_FALSE(r->prompt_tokens.has_value());
  auto empty = ParseChatResponseBody(R"({"choices":[{"message":{"content":null}}],
    "system_fingerprint":null})");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->content, "");
  EXPECT_EQ(empty->system_fingerprint, "");
}

TEST(ParseChatResponseTest, ContentParts) {
  auto r = ParseChatResponseBody(
      R"({"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}}]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->content, "ab");
}

TEST(ParseChatResponseTest, MalformedBodies) {
  for (const char* body : {"", "{", "[]", "{\"choices\":[]}", "{\"choices\":[{}]}",
                           "{\"choices\":[{\"message\":{\"content\":7}}]}",
                           "{\"id\":\"chatcmpl-x\",\"choices\":[{\"message\":{\"content\":\"tru"}) {
    auto r = ParseChatResponseBody(body);
    EXPECT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << body;
  }
  auto err = ParseChatResponseBody(R"({"error":{"message":"model overloaded"}})");
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.status().message().find("model overloaded"), std::string::npos);
}

TEST(ExtractErrorMessageTest, OpenAIErrorObject) {
  EXPECT_EQ(
      ExtractErrorMessage(
          R"({"error":{"message":"Invalid key","type":"invalid_request_error","code":"invalid_api_key"}})"),
      "Invalid key (type: invalid_request_error, code: invalid_api_key)");
  EXPECT_EQ(ExtractErrorMessage(R"({"error":{"message":"m","type":null,"code":429}})"),
            "m (code: 429)");
  EXPECT_EQ(ExtractErrorMessage(R"({"error":"plain"})"), "plain");
  EXPECT_EQ(ExtractErrorMessage(R"({"message":"vllm style"})"), "vllm style");
}

TEST(ExtractErrorMessageTest, FallsBackToTheBodyPrefix) {
  EXPECT_EQ(ExtractErrorMessage(""), "(empty body)");
  EXPECT_EQ(ExtractErrorMessage("<html>\n<b>Bad gateway</b></html>"),
            "<html> <b>Bad gateway</b></html>");
  std::string long_body(1000, 'x');
  std::string m = ExtractErrorMessage(long_body);
  EXPECT_EQ(m, std::string(300, 'x') + "...");
}

TEST(EstimateTokensTest, CharsOverFourRoundedUp) {
  EXPECT_EQ(EstimateTokens(0), 0);
  EXPECT_EQ(EstimateTokens(1), 1);
  EXPECT_EQ(EstimateTokens(4), 1);
  EXPECT_EQ(EstimateTokens(5), 2);
  EXPECT_EQ(EstimateTokens(400), 100);
}

}  // namespace
}  // namespace breakfix
