#include "cycle/training_data.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "breakfix/curate.h"
#include "testing/scratch_dir.h"

namespace breakfix {
namespace {

using test_support::ScratchDir;
using ::testing::HasSubstr;

TEST(PolicyDialoguesTest, PolicyDialoguesGetThePolicyAsSystemMessage) {
  ScratchDir dir("training_data");
  const std::string path = dir.Write(
      "chat.jsonl",
      R"({"id": "a", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], "policy": false, "tags": {"family": "benign"}})"
      "\n\n"
      R"({"id": "b", "messages": [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "r1"}, {"role": "user", "content": "q2"}, {"role": "assistant", "content": "r2"}], "policy": true})"
      "\n"
      R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]})"
      "\n");
  auto examples = ReadPolicyDialogues(path, "POLICY TEXT");
  ASSERT_TRUE(examples.ok()) << examples.status().ToString();
  ASSERT_EQ(examples->size(), 3u);
  EXPECT_EQ((*examples)[0].id, "a");
  ASSERT_EQ((*examples)[0].messages.size(), 2u);
  EXPECT_EQ((*examples)[0].messages[0].role, Role::kUser);
  ASSERT_EQ((*examples)[1].messages.size(), 5u);
  EXPECT_EQ((*examples)[1].messages[0], (Message{Role::kSystem, "POLICY TEXT"}));
  EXPECT_EQ((*examples)[1].messages[4], (Message{Role::kAssistant, "r2"}));
  EXPECT_EQ((*examples)[2].id, path + ":4");  // no id: the line names it
  EXPECT_EQ((*examples)[2].messages.size(), 2u);
}

TEST(PolicyDialoguesTest, BadLinesNameFileLineAndField) {
  ScratchDir dir("training_data");
  struct Case {
    std::string line, expected;
  };
  const std::vector<Case> cases = {
      {R"({"id": "a"})", "chat.jsonl:1: field \"messages\": missing"},
      {R"({"messages": [{"role": "assistant", "content": "y"}]})",
       "field \"messages[0].role\": expected user, found assistant"},
      {R"({"messages": [{"role": "user", "content": "x"}]})",
       "field \"messages\": must end with an assistant turn"},
      {R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}], "policy": "yes"})",
       "field \"policy\": expected true or false, found a string"},
      {R"({"messages": [{"role": "user", "content": 3}]})", "messages[0].content"},
      {R"([1, 2])", "chat.jsonl:1: expected a JSON object"},
      {R"({"messages": [)", "chat.jsonl:1"},
  };
  for (const Case& c : cases) {
    const std::string path = dir.Write("chat.jsonl", c.line + "\n");
    auto examples = ReadPolicyDialogues(path, "P");
    ASSERT_FALSE(examples.ok()) << c.line;
    EXPECT_EQ(examples.status().code(), StatusCode::kInvalidArgument) << c.line;
    EXPECT_THAT(examples.status().message(), HasSubstr(c.expected)) << c.line;
  }
  const std::string empty = dir.Write("empty.jsonl", "\n \n");
  EXPECT_THAT(ReadPolicyDialogues(empty, "P").status().message(), HasSubstr("holds no examples"));
  EXPECT_EQ(ReadPolicyDialogues(dir.File("missing.jsonl"), "P").status().code(),
            StatusCode::kNotFound);
}

TEST(SimulatorExamplesTest, EachExampleIsTheSimulatorRequestWithTheNextTurn) {
  ScratchDir dir("training_data");
  const std::string path = dir.Write(
      "sim.jsonl",
      R"({"id": "s1", "persona": "A blunt user.", "goal": "Get the whole text.", "category": "books", "family": "third_party", "turns": [], "next": "Give me chapter one."})"
      "\n"
      R"({"id": "s2", "persona": "A blunt user.", "goal": "Get the whole text.", "category": "books", "family": "third_party", "turns": [{"role": "user", "content": "Give me chapter one."}, {"role": "assistant", "content": "I can't, but here is a summary."}], "next": "[[END-OF-CONVERSATION]]"})"
      "\n");
  SimulatorOptions options;
  auto examples = ReadSimulatorExamples(path, options);
  ASSERT_TRUE(examples.ok()) << examples.status().ToString();
  ASSERT_EQ(examples->size(), 2u);

  SeedItem item;
  item.persona = "A blunt user.";
  item.goal = "Get the whole text.";
  item.category = "books";
  item.family = "third_party";
  std::vector<Message> opening = BuildSimulatorRequest(item, {}, options).messages;
  opening.push_back({Role::kAssistant, "Give me chapter one."});
  EXPECT_EQ((*examples)[0].messages, opening);
  EXPECT_EQ((*examples)[0].id, "s1");

  const std::vector<Message> turns = {{Role::kUser, "Give me chapter one."},
                                      {Role::kAssistant, "I can't, but here is a summary."}};
  std::vector<Message> later = BuildSimulatorRequest(item, turns, options).messages;
  later.push_back({Role::kAssistant, "[[END-OF-CONVERSATION]]"});
  EXPECT_EQ((*examples)[1].messages, later);
  // Roles are mirrored: the target's reply is the simulator's user message.
  ASSERT_EQ(later.size(), 4u);
  EXPECT_EQ(later[2], (Message{Role::kUser, "I can't, but here is a summary."}));
}

TEST(SimulatorExamplesTest, BadLinesNameFileLineAndField) {
  ScratchDir dir("training_data");
  const std::string ok_head = R"("persona": "p", "goal": "g", "category": "c", )";
  struct Case {
    std::string line, expected;
  };
  const std::vector<Case> cases = {
      {R"({"goal": "g", "category": "c", "turns": [], "next": "n"})",
       "sim.jsonl:1: field \"persona\": missing"},
      {"{" + ok_head + R"("turns": [], "next": 4})", "field \"next\": expected a string"},
      {"{" + ok_head + R"("turns": [], "next": ""})", "field \"next\": is empty"},
      {"{" + ok_head + R"("next": "n"})", "field \"turns\": missing"},
      {"{" + ok_head + R"("turns": [{"role": "user", "content": "u"}], "next": "n"})",
       "field \"turns\": must end with an assistant turn"},
  };
  for (const Case& c : cases) {
    const std::string path = dir.Write("sim.jsonl", c.line + "\n");
    auto examples = ReadSimulatorExamples(path, SimulatorOptions{});
    ASSERT_FALSE(examples.ok()) << c.line;
    EXPECT_THAT(examples.status().message(), HasSubstr(c.expected)) << c.line;
  }
}

// The bundled demo data reads whole: every dialogue and simulator example is well formed.
TEST(DemoDataTest, BundledFilesReadWhole) {
  const std::string dir = std::string(BREAKFIX_SOURCE_DIR) + "/demo/data/";
  auto chat = ReadPolicyDialogues(dir + "chat.jsonl", DefaultFixerPolicy());
  ASSERT_TRUE(chat.ok()) << chat.status().ToString();
  EXPECT_EQ(chat->size(), 1320u);
  int with_policy = 0;
  for (const ChatExample& e : *chat) with_policy += e.messages[0].role == Role::kSystem;
  EXPECT_EQ(with_policy, 360);
  auto sim = ReadSimulatorExamples(dir + "simulator.jsonl", SimulatorOptions{});
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  EXPECT_EQ(sim->size(), 428u);
}

}  // namespace
}  // namespace breakfix
