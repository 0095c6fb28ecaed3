// Crash safety: a run killed with SIGKILL at random points, several times, then resumed, ends with
// exactly the store contents and numbers of an uninterrupted run: nothing lost, nothing doubled.
// Also Ctrl-C (SIGINT): in-flight calls are finished and stored, the run is marked interrupted,
// and the same command resumes it.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "breakfix/env.h"
#include "breakfix/store.h"
#include "cli_runner.h"
#include "scripted_models.h"

namespace breakfix::testing {
namespace {

using nlohmann::json;

// Everything a run's store holds about its units, in a comparable form.
struct Snapshot {
  std::map<std::string, std::string> units;  // conversation key -> transcript + annotation
  std::map<std::string, int64_t> calls;      // role -> successful model calls recorded
  int64_t annotated = 0;
  int64_t total = 0;
};

Snapshot Take(const std::string& store_path) {
  Snapshot snap;
  auto store = Store::OpenSqlite(store_path);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return snap;
  auto runs = (*store)->ListRuns();
  EXPECT_TRUE(runs.ok());
  if (!runs.ok() || runs->empty()) return snap;
  EXPECT_EQ(runs->size(), 1u);
  const int64_t run_id = (*runs)[0].id;
  Status s = (*store)->ForEachResult(run_id, [&](const ResultRow& row) {
    ++snap.total;
    if (!row.annotated) return Status::OK();
    ++snap.annotated;
    auto conv = (*store)->GetConversation(row.unit.conversation_key);
    EXPECT_TRUE(conv.ok() && conv->has_value());
    std::string text = row.unit.item_id + "|" + row.unit.target + "|" + row.stop_reason + "\n";
    if (conv.ok() && conv->has_value()) {
      for (const Message& m : (*conv)->turns)
        text += std::string(RoleName(m.role)) + ": " + m.content + "\n";
    }
    const Annotation& a = row.annotation;
    text += std::string(OutcomeName(a.outcome)) + " " + std::to_string(a.score) +
            " attempts=" + std::to_string(a.attempts);
    for (const TurnScore& t : a.turns)
      text += " " + std::to_string(t.turn) + ":" + std::to_string(t.score);
    EXPECT_TRUE(snap.units.emplace(row.unit.conversation_key, text).second)
        << "unit listed twice: " << row.unit.conversation_key;
    return Status::OK();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  auto usage = (*store)->UsageByRole(run_id);
  EXPECT_TRUE(usage.ok());
  if (usage.ok()) {
    for (const auto& [role, u] : *usage) snap.calls[role] = u.calls - u.failed_calls;
  }
  return snap;
}

class ResumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ScriptedModelsOptions options;
    options.delay_ms = 3;  // long enough for kills to land mid-run, short enough to be quick
    server_ = std::make_unique<FakeOpenAIServer>(ScriptedModels(options));
    ASSERT_TRUE(server_->Start().ok());
  }
  std::vector<std::string> Args(const std::string& store) {
    auto spec = [&](const std::string& name) {
      return "name=" + name + ",url=" + server_->base_url() + ",model=" + name + ",concurrency=8";
    };
    return {"eval",          "--suite",         "rai",         "--target",  spec("careful"),
            "--target",      spec("leaky"),     "--simulator", spec("sim"), "--judge",
            spec("judge"),   "--store",         store,         "--out",     dir_ / "out",
            "--no-progress", "--max-in-flight", "32"};
  }

  TempDir dir_;
  std::unique_ptr<FakeOpenAIServer> server_;
};

TEST_F(ResumeTest, RepeatedSigkillThenResumeEqualsAnUninterruptedRun) {
  const auto t0 = std::chrono::steady_clock::now();
  CliResult clean = RunCli(Args(dir_ / "clean.db"));
  const double clean_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(clean.exit_code, 0) << clean.err;
  const Snapshot reference = Take(dir_ / "clean.db");
  ASSERT_EQ(reference.annotated, 520);
  const json reference_rows = json::parse(ReadFileOrEmpty(dir_ / "out/report.json"))["rows"];

  // Kill points spread over the clean run's duration (seeded, so the test is repeatable).
  Random rng(20261127);
  int partial_kills = 0;
  int64_t last_annotated = -1;
  for (int k = 0; k < 5; ++k) {
    pid_t pid = StartCli(Args(dir_ / "killed.db"), dir_ / "k.out", dir_ / "k.err");
    const double at = clean_ms * (0.05 + 0.35 * rng.Uniform());
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(at * 1000)));
    ::kill(pid, SIGKILL);
    CliResult killed = WaitCli(pid, dir_ / "k.out", dir_ / "k.err");
    Snapshot now = Take(dir_ / "killed.db");
    if (killed.signal == SIGKILL && now.annotated < reference.annotated) ++partial_kills;
    // Work finished before a kill is never lost by a later kill.
    EXPECT_GE(now.annotated, last_annotated);
    last_annotated = now.annotated;
  }
  EXPECT_GE(partial_kills, 3) << "the kills should land while the run is still going";

  CliResult resumed = RunCli(Args(dir_ / "killed.db"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const Snapshot after = Take(dir_ / "killed.db");
  EXPECT_EQ(after.total, reference.total);
  EXPECT_EQ(after.annotated, reference.annotated);
  EXPECT_EQ(after.units, reference.units);  // same transcripts and judgments, unit by unit
  EXPECT_EQ(after.calls, reference.calls);  // no model call recorded twice
  EXPECT_EQ(json::parse(ReadFileOrEmpty(dir_ / "out/report.json"))["rows"], reference_rows);
}

TEST_F(ResumeTest, CtrlCFinishesInFlightWorkMarksInterruptedAndResumes) {
  pid_t pid = StartCli(Args(dir_ / "runs.db"), dir_ / "i.out", dir_ / "i.err");
  // Signal only once the run has begun (its record is in the store): before that, the process is
  // still starting and has no handler yet.
  for (int i = 0; i < 2000; ++i) {
    if (std::filesystem::exists(dir_ / "runs.db")) {
      auto store = Store::OpenSqlite(dir_ / "runs.db");
      if (store.ok()) {
        auto runs = (*store)->ListRuns();
        if (runs.ok() && !runs->empty()) break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ::kill(pid, SIGINT);
  CliResult interrupted = WaitCli(pid, dir_ / "i.out", dir_ / "i.err");
  if (interrupted.exit_code == 0) GTEST_SKIP() << "the run finished before the signal arrived";
  EXPECT_EQ(interrupted.exit_code, 1) << interrupted.err;
  EXPECT_NE(interrupted.err.find("interrupted"), std::string::npos) << interrupted.err;
  {
    auto store = Store::OpenSqlite(dir_ / "runs.db");
    ASSERT_TRUE(store.ok());
    auto runs = (*store)->ListRuns();
    ASSERT_TRUE(runs.ok() && runs->size() == 1u);
    EXPECT_EQ((*runs)[0].status, RunStatus::kInterrupted);
    // A graceful stop leaves no conversation half-recorded as failed.
    ASSERT_TRUE(
        (*store)
            ->ForEachResult((*runs)[0].id,
                            [](const ResultRow& row) {
                              EXPECT_NE(row.conversation_status, ConversationStatus::kFailed)
                                  << row.unit.item_id;
                              return Status::OK();
                            })
            .ok());
  }
  CliResult resumed = RunCli(Args(dir_ / "runs.db"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(Take(dir_ / "runs.db").annotated, 520);
}

}  // namespace
}  // namespace breakfix::testing
