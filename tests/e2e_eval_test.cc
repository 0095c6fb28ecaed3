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

// The reproducibility manifest: written with the report, shown by `runs show`, free of API keys;
// and `breakfix compare` warns about everything two runs differ in but the target, including an
// endpoint that starts answering from another build under the same target name.
TEST_F(E2ETest, ManifestRecordsFingerprintsAndCompareWarnsAboutAllButTheTarget) {
  // The leaky endpoint's build changes between the two runs; everything else answers as scripted.
  auto build = std::make_shared<std::atomic<int>>(1);
  Responder scripted = ScriptedModels({}, stats_);
  server_ = std::make_unique<FakeOpenAIServer>([scripted, build](const FakeRequest& request) {
    FakeReply reply = scripted(request);
    if (request.model == "leaky") reply.system_fingerprint = "fp_leaky_v" + std::to_string(*build);
    return reply;
  });
  ASSERT_TRUE(server_->Start().ok());
  const std::string key = "sk-manifest-test-4b1d-very-secret";
  const std::map<std::string, std::string> env = {{"BF_TEST_KEY", key}};
  auto eval = [&](const std::string& run, const std::string& seed, const std::string& temperature) {
    return RunCli({"eval",
                   "--suite",
                   "rai",
                   "--families",
                   "harmful_continuation",
                   "--limit",
                   "5",
                   "--target",
                   Spec("careful", "careful"),
                   "--target",
                   Spec("leaky", "leaky", "key_env=BF_TEST_KEY"),
                   "--judge",
                   Spec("judge", "judge", "key_env=BF_TEST_KEY"),
                   "--seed",
                   seed,
                   "--temperature",
                   temperature,
                   "--run",
                   run,
                   "--store",
                   dir_ / "runs.db",
                   "--out",
                   dir_ / run,
                   "--no-progress"},
                  env);
  };
  CliResult first = eval("first", "1", "0");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  *build = 2;
  CliResult second = eval("second", "2", "0.5");
  ASSERT_EQ(second.exit_code, 0) << second.err;

  // manifest.json beside report.json: hashes, versions, endpoints, fingerprints.
  EXPECT_NE(first.out.find("wrote " + (dir_ / "first") + "/manifest.json"), std::string::npos)
      << first.out;
  const std::string manifest_text = ReadFileOrEmpty(dir_ / "first/manifest.json");
  json manifest = json::parse(manifest_text, nullptr, false);
  ASSERT_FALSE(manifest.is_discarded()) << manifest_text;
  json report = ReadJson(dir_ / "first/report.json");
  EXPECT_EQ(manifest["manifest_version"], 1);
  EXPECT_EQ(manifest["breakfix_version"], report["breakfix_version"]);
  EXPECT_EQ(manifest["run"]["name"], "first");
  EXPECT_EQ(manifest["run"]["config_hash"], report["run"]["config_hash"]);
  EXPECT_EQ(manifest["suite"]["hash"], report["run"]["suite_hash"]);
  EXPECT_EQ(manifest["seed"], 1);
  ASSERT_EQ(manifest["families"].size(), 1u);
  EXPECT_EQ(manifest["families"][0]["name"], "harmful_continuation");
  EXPECT_EQ(manifest["families"][0]["rubric_versions"]["violence"].get<std::string>().size(), 12u);
  std::map<std::string, json> models;
  for (const json& m : manifest["models"]) {
    models[m["role"].get<std::string>() + "/" + m["name"].get<std::string>()] = m;
  }
  ASSERT_EQ(models.size(), 3u) << manifest.dump(2);
  EXPECT_EQ(models["target/leaky"]["system_fingerprints"],
            json::parse(R"([{"value":"fp_leaky_v1","count":5}])"));
  EXPECT_EQ(models["target/careful"]["system_fingerprints"],
            json::parse(R"([{"value":"fp_breakfix_fake","count":5}])"));
  EXPECT_EQ(models["target/leaky"]["endpoint"]["model"], "leaky");
  EXPECT_EQ(models["target/leaky"]["endpoint"]["host"],
            "127.0.0.1:" + std::to_string(server_->port()));
  EXPECT_EQ(models["target/leaky"]["sampling"]["temperature"], 0.0);
  EXPECT_EQ(models["judge/judge"]["prompt_version"].get<std::string>().size(), 12u);
  // The LLM judge's answers carry fingerprints too: one per call, re-asks included.
  ASSERT_EQ(models["judge/judge"]["system_fingerprints"].size(), 1u) << manifest.dump(2);
  EXPECT_EQ(models["judge/judge"]["system_fingerprints"][0]["value"], "fp_breakfix_fake");
  EXPECT_GE(models["judge/judge"]["system_fingerprints"][0]["count"].get<int>(), 10);
  EXPECT_EQ(manifest["suite"]["dataset_files"], json::array());  // rai imports no file
  EXPECT_EQ(manifest["sessions"][0]["status"], "complete");
  json manifest2 = ReadJson(dir_ / "second/manifest.json");
  for (const json& m : manifest2["models"]) {
    if (m["name"] == "leaky") {
      EXPECT_EQ(m["system_fingerprints"][0]["value"], "fp_leaky_v2");
      EXPECT_EQ(m["sampling"]["temperature"], 0.5);
    }
  }

  // `runs show` prints it readably, and as manifest.json with --json.
  CliResult shown = RunCli({"runs", "show", "first", "--store", dir_ / "runs.db"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("fingerprints  {fp_leaky_v1 x5}"), std::string::npos) << shown.out;
  EXPECT_NE(
      shown.out.find("suite      rai, hash " + report["run"]["suite_hash"].get<std::string>()),
      std::string::npos)
      << shown.out;
  CliResult shown_json = RunCli({"runs", "--store", dir_ / "runs.db", "show", "first", "--json"});
  ASSERT_EQ(shown_json.exit_code, 0) << shown_json.err;
  EXPECT_EQ(shown_json.out, manifest_text);
  CliResult unknown = RunCli({"runs", "show", "no-such-run", "--store", dir_ / "runs.db"});
  EXPECT_EQ(unknown.exit_code, 2) << unknown.err;

  // The API key was sent but appears in no manifest, report, store or output.
  for (const std::string& text :
       {manifest_text, ReadFileOrEmpty(dir_ / "second/manifest.json"), shown.out, shown_json.out,
        ReadFileOrEmpty(dir_ / "runs.db"), ReadFileOrEmpty(dir_ / "runs.db-wal"), first.out,
        first.err, second.out, second.err}) {
    EXPECT_EQ(text.find(key), std::string::npos);
  }

  // Across runs: the seed, the target sampling and the leaky endpoint's build, one line each, in
  // the Markdown, the JSON and on stderr.
  CliResult cmp = RunCli({"compare", "first", "second", "--store", dir_ / "runs.db", "--a", "leaky",
                          "--b", "leaky", "--json", dir_ / "cmp.json"});
  ASSERT_EQ(cmp.exit_code, 0) << cmp.err;
  const std::vector<std::string> expected = {
      "seed differs: A 1, B 2",
      "target sampling differs: A temperature 0, top_p 1, max_tokens 512, B temperature 0.5, "
      "top_p 1, max_tokens 512",
      "target \"leaky\" system_fingerprint changed: A {fp_leaky_v1 x5}, B {fp_leaky_v2 x5} (same "
      "target name: the model behind the endpoint may have changed)"};
  EXPECT_EQ(ReadJson(dir_ / "cmp.json")["warnings"], json(expected));
  for (const std::string& w : expected) {
    EXPECT_NE(cmp.err.find("breakfix: warning: " + w + "\n"), std::string::npos) << cmp.err;
    EXPECT_NE(cmp.out.find("> Warning: "), std::string::npos) << cmp.out;
  }
  // The careful target answered from the same build both times: no fingerprint warning.
  CliResult careful = RunCli({"compare", "first", "second", "--store", dir_ / "runs.db", "--a",
                              "careful", "--b", "careful"});
  ASSERT_EQ(careful.exit_code, 0) << careful.err;
  EXPECT_NE(careful.err.find("seed differs"), std::string::npos) << careful.err;
  EXPECT_EQ(careful.err.find("system_fingerprint"), std::string::npos) << careful.err;

  // Two targets of one run differ only in the target: no warning at all.
  CliResult within = RunCli({"compare", "first", "--store", dir_ / "runs.db", "--a", "careful",
                             "--b", "leaky", "--json", dir_ / "within.json"});
  ASSERT_EQ(within.exit_code, 0) << within.err;
  EXPECT_EQ(within.err.find("warning"), std::string::npos) << within.err;
  EXPECT_EQ(within.out.find("Warning"), std::string::npos) << within.out;
  EXPECT_EQ(ReadJson(dir_ / "within.json")["warnings"], json::array());
}

}  // namespace
}  // namespace breakfix::testing
