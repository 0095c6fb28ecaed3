#include "testing/script_responder.h"

#include <gtest/gtest.h>

#include <thread>

namespace breakfix {
namespace {

FakeRequest Req(std::vector<Message> messages, std::string model = "m",
                std::string path = "/v1/chat/completions") {
  FakeRequest r;
  r.method = "POST";
  r.path = std::move(path);
  r.model = std::move(model);
  r.messages = std::move(messages);
  return r;
}

std::unique_ptr<ScriptResponder> Load(const std::string& yaml) {
  auto s = ScriptResponder::FromString(yaml, "test.yaml");
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

Status LoadError(const std::string& yaml) {
  auto s = ScriptResponder::FromString(yaml, "test.yaml");
  EXPECT_FALSE(s.ok()) << yaml;
  return s.ok() ? Status::OK() : s.status();
}

TEST(ScriptResponderTest, FirstMatchingRuleWins) {
  auto s = Load(R"(
rules:
  - system_contains: "strict"
    last_user_contains: "bomb"
    reply: "strict refusal"
  - last_user_contains: "bomb"
    reply: "refusal"
  - any_contains: "weather"
    reply: "sunny"
  - model: judge
    reply: '{"score": 0}'
  - path: /v1/other/chat/completions
    reply: "other path"
)");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->Respond(Req({{Role::kSystem, "be strict"}, {Role::kUser, "a bomb?"}})).content,
            "strict refusal");
  EXPECT_EQ(s->Respond(Req({{Role::kSystem, "be kind"}, {Role::kUser, "a bomb?"}})).content,
            "refusal");
  // last_user_contains looks at the last user message only.
  EXPECT_NE(s->Respond(Req({{Role::kUser, "bomb"}, {Role::kAssistant, "no"}, {Role::kUser, "ok"}}))
                .content,
            "refusal");
  EXPECT_EQ(s->Respond(Req({{Role::kAssistant, "the weather"}, {Role::kUser, "hm"}})).content,
            "sunny");
  EXPECT_EQ(s->Respond(Req({{Role::kUser, "rate this"}}, "judge")).content, "{\"score\": 0}");
  EXPECT_EQ(s->Respond(Req({{Role::kUser, "x"}}, "m", "/v1/other/chat/completions")).content,
            "other path");
}

TEST(ScriptResponderTest, DefaultReplyIsADeterministicHash) {
  auto s = Load("rules: []\n");
  ASSERT_TRUE(s);
  std::vector<Message> a = {{Role::kUser, "hello"}};
  std::vector<Message> b = {{Role::kUser, "hello!"}};
  FakeReply r = s->Respond(Req(a));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content, DefaultScriptedReply(a));
  ASSERT_EQ(r.content.size(), std::string("Scripted reply ").size() + 8);
  EXPECT_EQ(r.content.rfind("Scripted reply ", 0), 0u);
  EXPECT_EQ(s->Respond(Req(a)).content, r.content);
  EXPECT_NE(s->Respond(Req(b)).content, r.content);
  // The role is part of the hash.
  EXPECT_NE(DefaultScriptedReply({{Role::kSystem, "hello"}}), DefaultScriptedReply(a));
}

TEST(ScriptResponderTest, TemplatesSubstituteLastUserAndTurn) {
  auto s = Load(R"(
- reply: "turn {{turn}}: you said '{{ last_user }}'"
)");
  ASSERT_TRUE(s);
  FakeReply r = s->Respond(Req(
      {{Role::kSystem, "s"}, {Role::kUser, "one"}, {Role::kAssistant, "a"}, {Role::kUser, "two"}}));
  EXPECT_EQ(r.content, "turn 2: you said 'two'");
}

TEST(ScriptResponderTest, ActionsCarryOver) {
  auto s = Load(R"(
rules:
  - any_contains: overload
    status: 429
    error_message: slow down
    headers: {Retry-After: "3", X-Other: abc}
    delay_ms: 25
  - any_contains: broken
    fault: truncated_body
)");
  ASSERT_TRUE(s);
  FakeReply r = s->Respond(Req({{Role::kUser, "overload"}}));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.error_message, "slow down");
  ASSERT_EQ(r.headers.size(), 2u);
  EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>{"Retry-After", "3"}));
  EXPECT_EQ(r.delay_ms, 25);
  FakeReply f = s->Respond(Req({{Role::kUser, "broken"}}));
  EXPECT_EQ(f.fault, FakeFault::kTruncatedBody);
  EXPECT_EQ(f.status, 200);
  EXPECT_EQ(f.content, DefaultScriptedReply({{Role::kUser, "broken"}}));
}

TEST(ScriptResponderTest, TimesLimitsARule) {
  auto s = Load(R"(
- status: 503
  times: 2
- reply: fine
)");
  ASSERT_TRUE(s);
  auto req = Req({{Role::kUser, "x"}});
  EXPECT_EQ(s->Respond(req).status, 503);
  EXPECT_EQ(s->Respond(req).status, 503);
  FakeReply third = s->Respond(req);
  EXPECT_EQ(third.status, 200);
  EXPECT_EQ(third.content, "fine");
  EXPECT_EQ(s->applied_count(0), 2);
  EXPECT_EQ(s->applied_count(1), 1);
  EXPECT_EQ(s->applied_count(7), 0);
}

TEST(ScriptResponderTest, EveryAppliesToEveryKthMatch) {
  auto s = Load(R"(
- any_contains: "q"
  every: 3
  fault: malformed_json
- reply: normal
)");
  ASSERT_TRUE(s);
  std::vector<FakeFault> faults;
  for (int i = 0; i < 7; ++i) faults.push_back(s->Respond(Req({{Role::kUser, "q"}})).fault);
  std::vector<FakeFault> expected = {FakeFault::kNone, FakeFault::kNone, FakeFault::kMalformedJson,
                                     FakeFault::kNone, FakeFault::kNone, FakeFault::kMalformedJson,
                                     FakeFault::kNone};
  EXPECT_EQ(faults, expected);
  // Requests the rule's conditions do not match do not advance its count.
  EXPECT_EQ(s->Respond(Req({{Role::kUser, "zzz"}})).content, "normal");
  EXPECT_EQ(s->Respond(Req({{Role::kUser, "q"}})).fault, FakeFault::kNone);
  EXPECT_EQ(s->Respond(Req({{Role::kUser, "q"}})).fault, FakeFault::kMalformedJson);
}

TEST(ScriptResponderTest, DefaultReplyTemplate) {
  auto s =
      Load("default_reply: \"echo {{last_user}}\"\nrules:\n  - any_contains: x\n    status: 500\n");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->Respond(Req({{Role::kUser, "hello"}})).content, "echo hello");
}

TEST(ScriptResponderTest, EmptyScriptIsAllDefaults) {
  auto s = Load("");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->rule_count(), 0u);
  EXPECT_EQ(s->Respond(Req({{Role::kUser, "a"}})).content,
            DefaultScriptedReply({{Role::kUser, "a"}}));
}

TEST(ScriptResponderTest, ErrorsNameFileLineAndColumn) {
  struct Case {
    const char* yaml;
    const char* where;
    const char* what;
  } cases[] = {
      {"rules:\n  - reply: x\n    colour: blue\n", "test.yaml:3:5", "unknown key \"colour\""},
      {"rules:\n  - status: abc\n", "test.yaml:2:13", "\"status\": expected an integer"},
      {"rules:\n  - status: 99\n", "test.yaml:2:13", "got \"99\""},
      {"rules:\n  - fault: explode\n", "test.yaml:2:12", "malformed_json"},
      {"rules:\n  - times: 0\n", "test.yaml:2:12", "\"times\""},
      {"rules:\n  - every: -1\n", "test.yaml:2:12", "\"every\""},
      {"rules:\n  - reply: \"{{nope}}\"\n", "test.yaml:2:12", "{{nope}}"},
      {"rules:\n  - reply: [a, b]\n", "test.yaml:2:12", "expected a string"},
      {"rules:\n  - headers: [a]\n", "test.yaml:2:14", "\"headers\""},
      {"rules:\n  - just a string\n", "test.yaml:2:5", "rule 1"},
      {"rules:\n  - error_message: x\n", "test.yaml:2:5", "needs an error \"status\""},
      {"rules: 5\n", "test.yaml:1:8", "\"rules\": expected a list"},
      {"rulez: []\n", "test.yaml:1:1", "unknown top-level key \"rulez\""},
      {"rules:\n  - {reply: x\n", "test.yaml:", "invalid YAML"},
      {"rules:\n  - reply: x\n   bad: : y\n", "test.yaml:", "invalid YAML"},
      {"rules: [\n", "test.yaml:", "invalid YAML"},
  };
  for (const Case& c : cases) {
    Status s = LoadError(c.yaml);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_EQ(s.message().rfind(c.where, 0), 0u) << c.yaml << " -> " << s.message();
    EXPECT_NE(s.message().find(c.what), std::string::npos) << c.yaml << " -> " << s.message();
  }
}

TEST(ScriptResponderTest, MissingFileNamesThePath) {
  auto s = ScriptResponder::FromFile("/nonexistent/breakfix/script.yaml");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("/nonexistent/breakfix/script.yaml"), std::string::npos);
}

TEST(ScriptResponderTest, ConcurrentRespondKeepsExactCounts) {
  auto s = Load("- status: 500\n  times: 100\n- reply: ok\n");
  ASSERT_TRUE(s);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 250; ++i) {
        if (s->Respond(Req({{Role::kUser, "x"}})).status == 500) ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 100);
  EXPECT_EQ(s->applied_count(1), 900);
}

TEST(ReplyTemplateTest, ParseErrors) {
  EXPECT_FALSE(ReplyTemplate::Parse("{{").ok());
  EXPECT_FALSE(ReplyTemplate::Parse("a {{who}} b").ok());
  auto t = ReplyTemplate::Parse("plain } { text");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->Render({}), "plain } { text");
  auto empty_user = ReplyTemplate::Parse("[{{last_user}}] {{turn}}");
  ASSERT_TRUE(empty_user.ok());
  EXPECT_EQ(empty_user->Render({{Role::kSystem, "s"}}), "[] 0");
}

}  // namespace
}  // namespace breakfix
