// End-to-end runs of the breakfix CLI against a loopback OpenAI-compatible server started by the
// test: the full rai suite, faults, unscorable judgments, authentication failures, API keys.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "breakfix/store.h"
#include "cli_runner.h"
#include "scripted_models.h"

namespace breakfix::testing {
namespace {

using nlohmann::json;

class E2ETest : public ::testing::Test {
 protected:
  void StartServer(ScriptedModelsOptions options = {}) {
    server_ = std::make_unique<FakeOpenAIServer>(ScriptedModels(options, stats_));
    ASSERT_TRUE(server_->Start().ok());
  }
  std::string Spec(const std::string& name, const std::string& model,
                   const std::string& extra = "") const {
    return "name=" + name + ",url=" + server_->base_url() + ",model=" + model +
           (extra.empty() ? "" : "," + extra);
  }
  std::vector<std::string> EvalArgs(const std::string& store, const std::string& out,
                                    const std::string& extra_spec = "") const {
    return {"eval",
            "--suite",
            "rai",
            "--target",
            Spec("careful", "careful", extra_spec),
            "--target",
            Spec("leaky", "leaky", extra_spec),
            "--simulator",
            Spec("sim", "sim", extra_spec),
            "--judge",
            Spec("judge", "judge", extra_spec),
            "--store",
            store,
            "--out",
            out,
            "--no-progress"};
  }
  static json ReadJson(const std::string& path) {
    return json::parse(ReadFileOrEmpty(path), nullptr, false);
  }

  TempDir dir_;
  std::shared_ptr<ScriptedModelsStats> stats_ = std::make_shared<ScriptedModelsStats>();
  std::unique_ptr<FakeOpenAIServer> server_;
};

// The headline and category rows of report.json, keyed for comparison (run-specific fields
// such as names and timestamps left out).
std::map<std::string, json> Rows(const json& report) {
  std::map<std::string, json> out;
  for (const json& r : report["rows"]) {
    std::string key = r["family"].get<std::string>() + "/" +
                      (r["category"].is_null() ? "*" : r["category"].get<std::string>()) + "/" +
                      r["target"].get<std::string>();
    out[key] = r;
  }
  return out;
}

// Release gates on a real run: the careful target passes a strict jailbreak bound, the leaky one
// breaks it (exit code 3), and the JUnit file says which.
TEST_F(E2ETest, GateChecksBoundsPerTargetAndWritesJUnit) {
  StartServer();
  CliResult r = RunCli(EvalArgs(dir_ / "runs.db", dir_ / "out"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string run = ReadJson(dir_ / "out/report.json")["run"]["name"];
  CliResult careful =
      RunCli({"gate", run, "--store", dir_ / "runs.db", "--target", "careful", "--max",
              "jailbreak.rate<=0.2", "--max", "third_party.unscorable<=0.5"});
  EXPECT_EQ(careful.exit_code, 0) << careful.err << careful.out;
  CliResult both = RunCli({"gate", run, "--store", dir_ / "runs.db", "--max", "jailbreak.rate<=0.2",
                           "--junit", dir_ / "gate.xml"});
  EXPECT_EQ(both.exit_code, 3) << both.err << both.out;
  EXPECT_NE(both.out.find("FAIL leaky"), std::string::npos) << both.out;
  const std::string xml = ReadFileOrEmpty(dir_ / "gate.xml");
  EXPECT_NE(xml.find("tests=\"2\" failures=\"1\""), std::string::npos) << xml;
  CliResult typo = RunCli({"gate", run, "--store", dir_ / "runs.db", "--max", "jailbrek.rate<=1"});
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_NE(typo.err.find("no family \"jailbrek\""), std::string::npos) << typo.err;
}

TEST_F(E2ETest, FullRaiSuiteTwoTargetsThenResumeRepeatsNothing) {
  StartServer();
  CliResult r = RunCli(EvalArgs(dir_ / "runs.db", dir_ / "out"));
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("Jailbreak (DR-1)"), std::string::npos) << r.out;

  json report = ReadJson(dir_ / "out/report.json");
  ASSERT_FALSE(report.is_discarded());
  EXPECT_EQ(report["run"]["status"], "complete");
  EXPECT_EQ(report["targets"], json({"careful", "leaky"}));
  ASSERT_EQ(report["families"].size(), 5u);
  auto rows = Rows(report);
  // The careful target never complies; the leaky one does on about a third of prompts.
  EXPECT_EQ(rows.at("jailbreak/*/careful")["defects"], 0);
  EXPECT_EQ(rows.at("harmful_continuation/*/careful")["value"], 0.0);
  EXPECT_GT(rows.at("harmful_continuation/*/leaky")["defects"].get<int>(), 0);
  EXPECT_GT(rows.at("jailbreak/*/leaky")["value"].get<double>(), 0.0);
  const json& ung = rows.at("ungroundedness/*/careful");
  EXPECT_EQ(ung["metric"], "mean_ungroundedness");
  EXPECT_TRUE(ung["defects"].is_null());
  // Some leaky answers carry the mark that makes the judge talk prose twice: unscorable.
  int64_t unscorable = report["counts"]["leaky"]["unscorable"].get<int64_t>();
  EXPECT_GT(unscorable, 0);
  EXPECT_EQ(report["counts"]["careful"]["unscorable"], 0);
  EXPECT_EQ(report["counts"]["leaky"]["units"], 260);
  EXPECT_EQ(report["counts"]["leaky"]["pending"], 0);
  for (const char* role : {"target", "simulator", "judge"}) {
    EXPECT_GT(report["usage"][role]["prompt_tokens"].get<int64_t>(), 0) << role;
  }

  // annotations.csv: a header and one row per unit; unscorable rows say so.
  std::string csv = ReadFileOrEmpty(dir_ / "out/annotations.csv");
  size_t lines = 0, unscorable_rows = 0;
  for (size_t pos = 0; (pos = csv.find("\r\n", pos)) != std::string::npos; pos += 2) ++lines;
  EXPECT_EQ(lines, 1u + 520u);
  for (size_t pos = 0; (pos = csv.find(",unscorable,", pos)) != std::string::npos; ++pos) {
    ++unscorable_rows;
  }
  EXPECT_EQ(unscorable_rows, static_cast<size_t>(unscorable));

  // The same command again: everything is found in the store, nothing is sent.
  const int64_t requests = server_->total_requests();
  CliResult again = RunCli(EvalArgs(dir_ / "runs.db", dir_ / "out2"));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(server_->total_requests(), requests);
  EXPECT_EQ(Rows(ReadJson(dir_ / "out2/report.json")), rows);

  // report and runs read the same run back.
  std::string run = report["run"]["name"];
  CliResult shown = RunCli({"report", run, "--store", dir_ / "runs.db", "--format", "json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_EQ(Rows(json::parse(shown.out)), rows);
  CliResult listed = RunCli({"runs", "--store", dir_ / "runs.db"});
  ASSERT_EQ(listed.exit_code, 0);
  EXPECT_NE(listed.out.find(run), std::string::npos);
  EXPECT_NE(listed.out.find("complete"), std::string::npos);

  // compare: careful vs leaky on the same items.
  CliResult cmp = RunCli({"compare", run, "--store", dir_ / "runs.db", "--a", "careful", "--b",
                          "leaky", "--json", dir_ / "cmp.json"});
  ASSERT_EQ(cmp.exit_code, 0) << cmp.err;
  json c = ReadJson(dir_ / "cmp.json");
  for (const json& f : c["families"]) {
    if (f["family"] == "jailbreak") {
      EXPECT_EQ(f["only_a"], 0);
      EXPECT_GT(f["only_b"].get<int>(), 0);
      EXPECT_LT(f["difference"].get<double>(), 0);
      EXPECT_LT(f["mcnemar_p"].get<double>(), 1.0);
    }
  }
}

TEST_F(E2ETest, FaultsAreRetriedAndChangeNoNumber) {
  // Reference numbers without faults.
  StartServer();
  CliResult clean = RunCli(
      EvalArgs(dir_ / "clean.db", dir_ / "clean", "retries=8,backoff_ms=5,max_backoff_ms=50"));
  ASSERT_EQ(clean.exit_code, 0) << clean.err;
  server_.reset();

  // About 40% of all requests hit a fault, so a call can need many attempts: 25 retries make
  // giving up (p ~ 0.4^26 per call) practically impossible while still exercising every path.
  ScriptedModelsOptions faults;
  faults.status_every = {{7, 429}, {11, 500}, {29, 503}};
  faults.fault_every = {{13, FakeFault::kMalformedJson},
                        {17, FakeFault::kTruncatedBody},
                        {19, FakeFault::kCloseWithoutResponse},
                        {97, FakeFault::kHang}};
  StartServer(faults);
  CliResult faulty = RunCli(
      EvalArgs(dir_ / "faulty.db", dir_ / "faulty",
               "retries=25,backoff_ms=5,max_backoff_ms=50,idle_timeout_ms=300,timeout_ms=5000"));
  ASSERT_EQ(faulty.exit_code, 0) << faulty.err;
  EXPECT_GT(stats_->faults.load(), 20);
  EXPECT_GT(stats_->statuses.load(), 50);
  EXPECT_EQ(Rows(ReadJson(dir_ / "faulty/report.json")),
            Rows(ReadJson(dir_ / "clean/report.json")));
  // Retries are visible in the token/call accounting but not as failed calls.
  json usage = ReadJson(dir_ / "faulty/report.json")["usage"];
  EXPECT_EQ(usage["target"]["failed_calls"], 0);
}

TEST_F(E2ETest, AuthenticationFailureFailsFastWithTheServersMessage) {
  StartServer();
  CliResult r = RunCli({"eval", "--suite", "rai", "--families", "harmful_continuation", "--target",
                        Spec("locked", "locked", "concurrency=4"), "--judge", "refusal", "--store",
                        dir_ / "runs.db", "--out", dir_ / "out", "--no-progress"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("401"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Incorrect API key provided"), std::string::npos) << r.err;
  // No retry storm: at most one request per concurrency slot.
  EXPECT_LE(server_->total_requests(), 4);
}

TEST_F(E2ETest, ApiKeyIsSentButNeverWrittenAnywhere) {
  StartServer();
  const std::string key = "sk-test-7f3a9c2e-very-secret";
  CliResult r = RunCli({"eval", "--suite", "rai", "--families", "harmful_summarization", "--limit",
                        "3", "--target", Spec("careful", "careful", "key_env=BF_TEST_KEY"),
                        "--judge", Spec("judge", "judge", "key_env=BF_TEST_KEY"), "--store",
                        dir_ / "runs.db", "--out", dir_ / "out"},
                       {{"BF_TEST_KEY", key}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  bool seen = false;
  for (const auto& h : server_->recent_headers()) {
    auto it = h.find("authorization");
    if (it != h.end() && it->second == "Bearer " + key) seen = true;
  }
  EXPECT_TRUE(seen);
  EXPECT_EQ(r.out.find(key), std::string::npos);
  EXPECT_EQ(r.err.find(key), std::string::npos);
  for (const char* f :
       {"runs.db", "runs.db-wal", "out/report.md", "out/report.json", "out/annotations.csv"}) {
    EXPECT_EQ(ReadFileOrEmpty(dir_ / f).find(key), std::string::npos) << f;
  }
  // A missing key variable is an input error naming it.
  CliResult missing = RunCli({"eval", "--suite", "rai", "--target",
                              Spec("careful", "careful", "key_env=BF_TEST_KEY_UNSET"), "--judge",
                              "refusal", "--store", dir_ / "runs2.db"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("BF_TEST_KEY_UNSET"), std::string::npos) << missing.err;
}

TEST_F(E2ETest, ProgressLinesWhenNotATerminal) {
  StartServer();
  CliResult r = RunCli({"eval", "--suite", "rai", "--families", "harmful_continuation", "--target",
                        Spec("careful", "careful"), "--judge", "refusal", "--store",
                        dir_ / "runs.db", "--out", dir_ / "out"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("eval 40/40 (100.0%)"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos);  // no in-place rewriting into a file
}

}  // namespace
}  // namespace breakfix::testing
