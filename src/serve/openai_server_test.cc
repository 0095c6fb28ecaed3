// The HTTP server against a fake engine: routes, validation, streaming, auth, limits, shutdown.
#include <httplib.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "breakfix/server.h"
#include "serve/fake_engine.h"

namespace breakfix {
namespace {

using nlohmann::json;
using serve::FakeEngine;

class ServerTest : public ::testing::Test {
 protected:
  void Start(std::shared_ptr<FakeEngine> engine, ServerOptions options = {}) {
    engine_ = engine;
    options.port = 0;
    auto server = OpenAIServer::Create(engine, options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    ASSERT_TRUE(server_->Start().ok());
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(30, 0);
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }
  httplib::Result Post(const std::string& path, const std::string& body,
                       const httplib::Headers& headers = {}) {
    return client_->Post(path.c_str(), headers, body, "application/json");
  }
  static json Body(const httplib::Result& r) { return json::parse(r->body, nullptr, false); }

  std::shared_ptr<FakeEngine> engine_;
  std::unique_ptr<OpenAIServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

const char* kChat = R"({"model":"fake-model","messages":[{"role":"user","content":"hi"}]})";

TEST_F(ServerTest, HealthModelsAndChat) {
  Start(std::make_shared<FakeEngine>("Hello there."));
  auto health = client_->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto models = client_->Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(Body(models)["data"][0]["id"], "fake-model");

  auto r = Post("/v1/chat/completions", kChat);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = Body(r);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "Hello there.");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["usage"]["completion_tokens"], 12);
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 0);
  EXPECT_TRUE(j["system_fingerprint"].get<std::string>().rfind("fp_breakfix_", 0) == 0);
  EXPECT_EQ(server_->requests_served(), 1);
}

TEST_F(ServerTest, SamplingFieldsReachTheEngine) {
  Start(std::make_shared<FakeEngine>("abcdef"));
  auto r = Post(
      "/v1/chat/completions",
      R"({"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"x"}]}],
                    "max_tokens":3,"temperature":0.5,"top_p":0.9,"top_k":7,"min_p":0.1,
                    "repetition_penalty":1.2,"seed":42,"stop":["zz"],"logprobs":true})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = Body(r);
  EXPECT_EQ(j["choices"][0]["message"]["content"], "abc");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  ASSERT_EQ(j["choices"][0]["logprobs"]["content"].size(), 3u);
  EXPECT_EQ(j["choices"][0]["logprobs"]["content"][0]["token"], "a");
  GenerationParams p = engine_->last_params();
  EXPECT_EQ(p.max_tokens, 3);
  EXPECT_DOUBLE_EQ(p.temperature, 0.5);
  EXPECT_DOUBLE_EQ(p.top_p, 0.9);
  EXPECT_EQ(p.top_k, 7);
  EXPECT_DOUBLE_EQ(p.min_p, 0.1);
  EXPECT_DOUBLE_EQ(p.repetition_penalty, 1.2);
  ASSERT_TRUE(p.seed.has_value());
  EXPECT_EQ(*p.seed, 42u);
  EXPECT_EQ(p.stop, std::vector<std::string>{"zz"});
  EXPECT_TRUE(p.logprobs);
}

// Splits an SSE body into the JSON payloads of its data: lines.
std::vector<std::string> Events(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    size_t end = body.find("\n\n", pos);
    out.push_back(body.substr(pos + 6, end - pos - 6));
    pos = end;
  }
  return out;
}

TEST_F(ServerTest, StreamingChatSendsRoleDeltasFinishUsageAndDone) {
  Start(std::make_shared<FakeEngine>("streamed"));
  std::string body = R"({"messages":[{"role":"user","content":"hi"}],"stream":true,
                         "stream_options":{"include_usage":true}})";
  auto r = Post("/v1/chat/completions", body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  auto events = Events(r->body);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back(), "[DONE]");
  json first = json::parse(events[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  std::string finish;
  json usage;
  for (size_t i = 1; i + 1 < events.size(); ++i) {
    json e = json::parse(events[i]);
    if (e.contains("usage") && e["choices"].empty()) {
      usage = e["usage"];
      continue;
    }
    const json& c = e["choices"][0];
    if (c["delta"].contains("content")) text += c["delta"]["content"].get<std::string>();
    if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
  }
  EXPECT_EQ(text, "streamed");
  EXPECT_EQ(finish, "stop");
  EXPECT_EQ(usage["completion_tokens"], 8);
}

TEST_F(ServerTest, TextCompletionsPlainAndStreaming) {
  Start(std::make_shared<FakeEngine>("0123456789abcdefghij"));
  auto r = Post("/v1/completions", R"({"prompt":"count:"})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = Body(r);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], "0123456789abcdef");  // OpenAI's default max_tokens is 16
  EXPECT_EQ(j["usage"]["prompt_tokens"], 6);
  auto s = Post("/v1/completions", R"({"prompt":[99,111],"max_tokens":4,"stream":true})");
  ASSERT_TRUE(s);
  ASSERT_EQ(s->status, 200);
  auto events = Events(s->body);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    text += json::parse(events[i])["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(text, "0123");
}

TEST_F(ServerTest, InvalidRequestsAreAnsweredWithOpenAIErrors) {
  Start(std::make_shared<FakeEngine>("x"), ServerOptions{});
  struct Case {
    const char* path;
    std::string body;
    int status;
    std::string param;
  } cases[] = {
      {"/v1/chat/completions", "{not json", 400, ""},
      {"/v1/chat/completions", "[1,2]", 400, ""},
      {"/v1/chat/completions", R"({"messages":[]})", 400, "messages"},
      {"/v1/chat/completions", R"({"messages":"hi"})", 400, "messages"},
      {"/v1/chat/completions", R"({"messages":[{"role":"wizard","content":"x"}]})", 400,
       "messages[0].role"},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":5}]})", 400,
       "messages[0].content"},
      {"/v1/chat/completions",
       R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})", 400, "temperature"},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"max_tokens":-3})",
       400, "max_tokens"},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"n":2})", 400, "n"},
      {"/v1/chat/completions",
       R"({"messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]})", 400, "stop"},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"tools":[{}]})", 400,
       "tools"},
      {"/v1/chat/completions", R"({"model":"gpt-9","messages":[{"role":"user","content":"x"}]})",
       404, "model"},
      {"/v1/completions", R"({"max_tokens":2})", 400, "prompt"},
      {"/v1/completions", R"({"prompt":[1,-2]})", 400, "prompt"},
      {"/v1/completions", R"({"prompt":[400]})", 400, "prompt"},
      {"/v1/nothing", "{}", 404, ""},
  };
  for (const Case& c : cases) {
    auto r = Post(c.path, c.body);
    ASSERT_TRUE(r) << c.body;
    EXPECT_EQ(r->status, c.status) << c.body << " -> " << r->body;
    json j = Body(r);
    ASSERT_TRUE(j.contains("error")) << r->body;
    EXPECT_TRUE(j["error"]["message"].is_string());
    if (!c.param.empty()) {
      EXPECT_EQ(j["error"]["param"], c.param) << r->body;
    }
  }
  EXPECT_EQ(engine_->submitted(), 0);  // nothing invalid reached the engine
}

TEST_F(ServerTest, PromptLongerThanTheContextAndOversizedBodies) {
  ServerOptions options;
  options.max_body_bytes = 4096;
  Start(std::make_shared<FakeEngine>("x", std::chrono::milliseconds(0), /*context_length=*/64),
        options);
  std::string long_prompt(100, 'a');
  auto r = Post("/v1/chat/completions",
                R"({"messages":[{"role":"user","content":")" + long_prompt + R"("}]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(Body(r)["error"]["code"], "context_length_exceeded");
  auto big = Post("/v1/chat/completions", std::string(10000, ' '));
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_TRUE(Body(big).contains("error"));
}

TEST_F(ServerTest, ApiKeyIsRequiredWhenConfigured) {
  ServerOptions options;
  options.api_key = "sk-serve-secret";
  Start(std::make_shared<FakeEngine>("ok"), options);
  auto none = Post("/v1/chat/completions", kChat);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(none->body.find("sk-serve-secret"), std::string::npos);
  auto wrong = Post("/v1/chat/completions", kChat, {{"Authorization", "Bearer sk-nope"}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto right = Post("/v1/chat/completions", kChat, {{"Authorization", "Bearer sk-serve-secret"}});
  ASSERT_TRUE(right);
  EXPECT_EQ(right->status, 200);
  auto health = client_->Get("/health");  // health needs no key
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(ServerTest, TooManyRequestsGet429) {
  ServerOptions options;
  options.max_pending = 2;
  Start(std::make_shared<FakeEngine>("slow reply", std::chrono::milliseconds(30)), options);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0}, limited{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, this] {
      httplib::Client c("127.0.0.1", server_->port());
      auto r = c.Post("/v1/chat/completions", kChat, "application/json");
      if (r && r->status == 200) ++ok;
      if (r && r->status == 429) {
        ++limited;
        EXPECT_EQ(r->get_header_value("Retry-After"), "1");
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GE(ok.load(), 2);
  EXPECT_GE(limited.load(), 1);
  EXPECT_EQ(ok.load() + limited.load(), 6);
}

TEST_F(ServerTest, ConcurrentClientsAllGetTheirAnswers) {
  Start(std::make_shared<FakeEngine>("parallel", std::chrono::milliseconds(2)));
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < 32; ++i) {
    threads.emplace_back([&, i, this] {
      httplib::Client c("127.0.0.1", server_->port());
      c.set_read_timeout(30, 0);
      std::string body = i % 2 ? std::string(kChat)
                               : R"({"messages":[{"role":"user","content":"hi"}],"stream":true})";
      auto r = c.Post("/v1/chat/completions", body, "application/json");
      if (r && r->status == 200 &&
          (r->body.find("parallel") != std::string::npos ||
           r->body.find("[DONE]") != std::string::npos)) {
        ++good;
      } else {
        ADD_FAILURE() << "request " << i << ": "
                      << (r ? std::to_string(r->status) + " " + r->body
                            : "transport error " + httplib::to_string(r.error()));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 32);
}

TEST_F(ServerTest, StopLetsInFlightRequestsFinish) {
  ServerOptions options;
  options.shutdown_grace_ms = 5000;
  Start(std::make_shared<FakeEngine>("finishing", std::chrono::milliseconds(20)), options);
  int status = 0;
  std::string body;
  std::thread client([&] {
    httplib::Client c("127.0.0.1", server_->port());
    auto r = c.Post("/v1/chat/completions", kChat, "application/json");
    if (r) {
      status = r->status;
      body = r->body;
    }
  });
  while (server_->in_flight() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  server_->Stop();
  client.join();
  EXPECT_EQ(status, 200);
  EXPECT_EQ(json::parse(body)["choices"][0]["message"]["content"], "finishing");
}

TEST_F(ServerTest, StopCancelsWhatDoesNotFinishInTime) {
  ServerOptions options;
  options.shutdown_grace_ms = 50;
  Start(std::make_shared<FakeEngine>(std::string(500, 'z'), std::chrono::milliseconds(10)),
        options);
  int status = 0;
  std::string body;
  std::thread client([&] {
    httplib::Client c("127.0.0.1", server_->port());
    auto r = c.Post("/v1/chat/completions", kChat, "application/json");
    if (r) {
      status = r->status;
      body = r->body;
    }
  });
  while (server_->in_flight() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  server_->Stop();
  client.join();
  EXPECT_EQ(status, 503);
  EXPECT_TRUE(json::parse(body).contains("error"));
}

}  // namespace
}  // namespace breakfix
