// `breakfix serve` end to end with breakfix's own OpenAI client: a chat call, then the same eval
// through the server and through the in-process engine (local:) must produce identical
// conversations, since both run the same greedy decoding on the same prompts.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "breakfix/openai_client.h"
#include "breakfix/store.h"
#include "cli_runner.h"

namespace breakfix::testing {
namespace {

std::string StoriesModel() {
  const char* data = std::getenv("BREAKFIX_TEST_DATA");
  if (data == nullptr) return "";
  return std::string(data) + "/tinyllamas-stories260K/stories260K.gguf";
}

// Every assistant turn of the run, keyed by item id.
std::map<std::string, std::string> Answers(const std::string& store_path) {
  std::map<std::string, std::string> out;
  auto store = Store::OpenSqlite(store_path);
  EXPECT_TRUE(store.ok());
  if (!store.ok()) return out;
  auto runs = (*store)->ListRuns();
  EXPECT_TRUE(runs.ok() && runs->size() == 1u);
  if (!runs.ok() || runs->empty()) return out;
  EXPECT_TRUE((*store)
                  ->ForEachResult((*runs)[0].id,
                                  [&](const ResultRow& row) {
                                    auto conv =
                                        (*store)->GetConversation(row.unit.conversation_key);
                                    if (conv.ok() && conv->has_value()) {
                                      for (const Message& m : (*conv)->turns) {
                                        if (m.role == Role::kAssistant)
                                          out[row.unit.item_id] += m.content + "\n---\n";
                                      }
                                    }
                                    return Status::OK();
                                  })
                  .ok());
  return out;
}

TEST(ServeEndToEndTest, ClientAndEvalThroughServeMatchTheInProcessEngine) {
  const std::string model = StoriesModel();
  if (model.empty())
    GTEST_SKIP() << "BREAKFIX_TEST_DATA is unset; this test serves stories260K.gguf";
  ASSERT_TRUE(std::filesystem::exists(model)) << model << " is missing";
  TempDir dir;
  pid_t server = StartCli({"serve", "--model", model, "--port", "0", "--port-file", dir / "port",
                           "--chat-template", "zephyr", "--model-id", "stories"},
                          dir / "serve.out", dir / "serve.err");
  for (int i = 0; i < 400 && ReadFileOrEmpty(dir / "port").empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  const std::string port = ReadFileOrEmpty(dir / "port");
  ASSERT_FALSE(port.empty()) << ReadFileOrEmpty(dir / "serve.err");
  const std::string url = "http://127.0.0.1:" + std::to_string(std::stoi(port)) + "/v1";

  // breakfix's own client, directly.
  {
    auto client = HttpClient::Create({}, Env::Default());
    ASSERT_TRUE(client.ok());
    EndpointOptions o;
    o.name = "served";
    o.base_url = url;
    o.model = "stories";
    auto chat = (*client)->NewChatModel(o);
    ASSERT_TRUE(chat.ok());
    ChatRequest req;
    req.messages = {{Role::kUser, "Once upon a time"}};
    req.sampling.max_tokens = 24;
    auto r = (*chat)->ChatSync(req);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_FALSE(r->message.content.empty());
    EXPECT_EQ(r->usage.completion_tokens, 24);
    EXPECT_EQ(r->finish_reason, "length");
    EXPECT_EQ(r->model, "stories");
    EXPECT_EQ(r->system_fingerprint.rfind("fp_breakfix_", 0), 0u);
    o.model = "not-served";
    auto wrong = (*client)->NewChatModel(o);
    ASSERT_TRUE(wrong.ok());
    auto missing = (*wrong)->ChatSync(req);
    EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status().ToString();
  }

  // The same eval through the server and in process.
  const std::vector<std::string> common = {
      "eval",    "--suite", "rai",          "--families", "harmful_summarization", "--limit", "4",
      "--judge", "refusal", "--max-tokens", "32",         "--no-progress"};
  auto args = [&](const std::string& target, const std::string& store) {
    std::vector<std::string> a = common;
    a.insert(a.end(), {"--target", target, "--store", store, "--out", dir / (store + ".out")});
    return a;
  };
  CliResult via_server = RunCli(args("name=m,url=" + url + ",model=stories", dir / "served.db"));
  ASSERT_EQ(via_server.exit_code, 0) << via_server.err;
  CliResult in_process =
      RunCli(args("local:" + model + ",name=m,chat_template=zephyr", dir / "local.db"));
  ASSERT_EQ(in_process.exit_code, 0) << in_process.err;
  auto served = Answers(dir / "served.db");
  auto local = Answers(dir / "local.db");
  EXPECT_EQ(served.size(), 4u);
  EXPECT_EQ(served, local);

  ::kill(server, SIGTERM);
  CliResult stopped = WaitCli(server, dir / "serve.out", dir / "serve.err");
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_NE(stopped.err.find("stopped after"), std::string::npos) << stopped.err;
}

TEST(ServeEndToEndTest, BadModelPathsAreInputErrors) {
  TempDir dir;
  CliResult missing = RunCli({"serve", "--model", dir / "absent.gguf"});
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_NE(missing.err.find("absent.gguf"), std::string::npos);
  std::ofstream(dir / "junk.gguf") << "definitely not a model";
  CliResult junk = RunCli({"serve", "--model", dir / "junk.gguf"});
  EXPECT_EQ(junk.exit_code, 2) << junk.err;
  EXPECT_NE(junk.err.find("GGUF"), std::string::npos) << junk.err;
}

}  // namespace
}  // namespace breakfix::testing
