// The run manifest's JSON form, the differences `breakfix compare` warns about, and how runs
// without a manifest (made before schema 6) are reported.
#include "breakfix/manifest.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "breakfix/report.h"
#include "store/schema.h"
#include "store/store_test_support.h"

namespace breakfix {
namespace {

RunManifestModel Model(const std::string& role, const std::string& name,
                       const std::string& identity) {
  RunManifestModel m;
  m.role = role;
  m.name = name;
  m.identity = identity;
  m.endpoint = RunManifestEndpoint{"openai-chat", name + "-id", "127.0.0.1:8000"};
  m.system_fingerprints.emplace();
  return m;
}

RunManifestSampling Sampling(double temperature, int max_tokens) {
  RunManifestSampling s;
  s.temperature = temperature;
  s.top_p = 1.0;
  s.max_tokens = max_tokens;
  return s;
}

// A manifest with every field set: two targets, a simulator, an LLM judge, one imported file.
RunManifest SampleManifest() {
  RunManifest m;
  m.breakfix_version = "0.1.0";
  m.created_us = 1764288000000000;  // 2025-11-28T00:00:00Z
  m.updated_us = 1764288060000000;
  m.run_id = 3;
  m.run_name = "rai-0123456789";
  m.config_hash = "c0ffee";
  m.suite_name = "rai";
  m.suite_hash = "5a17e0000000000000000000000000000000000000000000000000000000beef";
  m.dataset_files = std::vector<RunManifestDatasetFile>{
      {"jailbreak", "data/prompts.csv",
       "aaaa000000000000000000000000000000000000000000000000000000"}};
  RunManifestFamily f;
  f.name = "jailbreak";
  f.metric = "defect_rate";
  f.threshold = 1;
  f.turns = "multi";
  f.max_turns = 5;
  f.rubric = "jailbreak";
  f.rubric_versions = {{"jailbreak", "0123456789ab"}};
  m.families.push_back(f);
  m.limit_per_family = 0;
  m.seed = 7;
  RunManifestModel careful = Model("target", "careful", R"({"model":"careful"})");
  careful.sampling = Sampling(0, 512);
  (*careful.system_fingerprints)["fp_1"] = 40;
  RunManifestModel leaky = Model("target", "leaky", R"({"model":"leaky"})");
  leaky.sampling = Sampling(0, 512);
  leaky.pinned.temperature = 0.5;
  (*leaky.system_fingerprints)["fp_1"] = 39;
  (*leaky.system_fingerprints)[""] = 1;  // one answer reported no fingerprint
  RunManifestModel sim = Model("simulator", "sim", R"({"model":"sim"})");
  sim.sampling = Sampling(0, 400);
  sim.prompt_version = "5151515151ab";
  sim.stop_marker = "[[END-OF-CONVERSATION]]";
  (*sim.system_fingerprints)["fp_sim"] = 30;
  RunManifestModel judge = Model("judge", "judge", "llm-judge/abcdefabcdef/{\"model\":\"j\"}");
  judge.prompt_version = "fedcbafedcba";
  judge.system_fingerprints.reset();
  m.models = {careful, leaky, sim, judge};
  m.sessions = {{"0.1.0", 1764288000000000, 1764288060000000, "complete"}};
  return m;
}

bool Contains(const std::vector<std::string>& lines, const std::string& part) {
  for (const std::string& l : lines) {
    if (l.find(part) != std::string::npos) return true;
  }
  return false;
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

TEST(RunManifestTest, RoundTripsThroughJson) {
  const RunManifest m = SampleManifest();
  const std::string text = RunManifestToJson(m);
  nlohmann::json j = nlohmann::json::parse(text);
  EXPECT_EQ(j["manifest_version"], kRunManifestFormat);
  EXPECT_EQ(j["created"], "2025-11-28T00:00:00Z");
  EXPECT_EQ(j["suite"]["dataset_files"][0]["path"], "data/prompts.csv");
  EXPECT_EQ(j["models"][1]["pinned_sampling"]["temperature"], 0.5);
  EXPECT_TRUE(j["models"][1]["system_fingerprints"][0]["value"].is_null());  // reported none
  EXPECT_EQ(j["models"][1]["system_fingerprints"][0]["count"], 1);
  EXPECT_TRUE(j["models"][3]["system_fingerprints"].is_null());  // not observable
  EXPECT_TRUE(j["models"][3]["sampling"].is_null());
  EXPECT_EQ(j["request_seed"], kRunManifestRequestSeedRule);

  Result<RunManifest> back = ParseRunManifest(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(RunManifestToJson(*back), text);
  EXPECT_EQ(back->models[1].system_fingerprints->at(""), 1);
  EXPECT_FALSE(back->models[3].system_fingerprints.has_value());
  EXPECT_EQ(back->seed, 7u);
  EXPECT_TRUE(back->recorded_from_start);
}

TEST(RunManifestTest, ParseErrorsNameTheField) {
  nlohmann::json j = nlohmann::json::parse(RunManifestToJson(SampleManifest()));
  j["models"][2].erase("identity");
  Result<RunManifest> r = ParseRunManifest(j.dump());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("$.models[2]"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("\"identity\" is missing"), std::string::npos);

  j = nlohmann::json::parse(RunManifestToJson(SampleManifest()));
  j["models"][0]["system_fingerprints"][0]["count"] = "many";
  r = ParseRunManifest(j.dump());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("$.models[0].system_fingerprints[0].count"),
            std::string::npos)
      << r.status().message();

  j = nlohmann::json::parse(RunManifestToJson(SampleManifest()));
  j["manifest_version"] = kRunManifestFormat + 1;
  r = ParseRunManifest(j.dump());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not supported"), std::string::npos);

  EXPECT_FALSE(ParseRunManifest("{not json").ok());
  EXPECT_FALSE(ParseRunManifest("[]").ok());
}

TEST(RunManifestTest, NewerFieldsAreIgnored) {
  nlohmann::json j = nlohmann::json::parse(RunManifestToJson(SampleManifest()));
  j["something_new"] = {{"x", 1}};
  j["models"][0]["also_new"] = true;
  EXPECT_TRUE(ParseRunManifest(j.dump()).ok());
}

TEST(RunManifestDifferencesTest, TwoTargetsOfIdenticalRunsDifferInNothing) {
  const RunManifest a = SampleManifest();
  RunManifest b = SampleManifest();
  b.run_id = 4;
  b.run_name = "another-name";
  b.config_hash = "different-because-of-the-targets";
  b.created_us += 1000;
  b.sessions.push_back({"0.1.0", 1, 2, "complete"});
  EXPECT_TRUE(RunManifestDifferences(a, "careful", b, "careful").empty())
      << Joined(RunManifestDifferences(a, "careful", b, "careful"));
  // Comparing two different targets: their identities, endpoints, pinned sampling and
  // fingerprints are what is being compared, not a warning.
  EXPECT_TRUE(RunManifestDifferences(a, "careful", b, "leaky").empty())
      << Joined(RunManifestDifferences(a, "careful", b, "leaky"));
  EXPECT_TRUE(RunManifestDifferences(a, "careful", a, "leaky").empty());
}

TEST(RunManifestDifferencesTest, EveryDifferenceButTheTargetIsOneLine) {
  const RunManifest a = SampleManifest();
  RunManifest b = SampleManifest();
  b.breakfix_version = "0.2.0";
  b.suite_hash = "0ther";
  (*b.dataset_files)[0].sha256 = "bbbb0000";
  b.dataset_files->push_back({"jailbreak", "data/more.csv", "cccc"});
  b.families[0].rubric_versions["jailbreak"] = "ba9876543210";
  b.families[0].max_turns = 3;
  b.limit_per_family = 10;
  b.seed = 8;
  b.models[0].sampling->temperature = 0.7;
  b.models[1].sampling->temperature = 0.7;
  b.models[2].identity = R"({"model":"sim-2"})";
  b.models[3].identity = "llm-judge/abcdefabcdef/{\"model\":\"j2\"}";
  const std::vector<std::string> d = RunManifestDifferences(a, "careful", b, "careful");
  const std::string all = Joined(d);
  EXPECT_TRUE(Contains(d, "breakfix version differs: A 0.1.0, B 0.2.0")) << all;
  EXPECT_TRUE(Contains(d, "suite differs: A rai (hash 5a17e0000000), B rai (hash 0ther)")) << all;
  EXPECT_TRUE(Contains(d,
                       "dataset file jailbreak:data/prompts.csv differs: A sha256 "
                       "aaaa00000000, B sha256 bbbb0000"))
      << all;
  EXPECT_TRUE(Contains(d, "dataset file jailbreak:data/more.csv is only in B")) << all;
  EXPECT_TRUE(Contains(d,
                       "rubric jailbreak (family jailbreak) version differs: A 0123456789ab, "
                       "B ba9876543210"))
      << all;
  EXPECT_TRUE(Contains(d, "family jailbreak differs: A defect_rate DR-1, multi-turn (max 5)"))
      << all;
  EXPECT_TRUE(Contains(d, "items per family differ: A all, B 10")) << all;
  EXPECT_TRUE(Contains(d, "seed differs: A 7, B 8")) << all;
  EXPECT_TRUE(Contains(d,
                       "target sampling differs: A temperature 0, top_p 1, max_tokens 512, "
                       "B temperature 0.7, top_p 1, max_tokens 512"))
      << all;
  EXPECT_TRUE(Contains(d, "simulator identity differs")) << all;
  EXPECT_TRUE(Contains(d, "judge identity differs")) << all;
  EXPECT_EQ(d.size(), 11u) << all;
  for (const std::string& line : d) EXPECT_EQ(line.find('\n'), std::string::npos) << line;
}

TEST(RunManifestDifferencesTest, FingerprintChangeOfTheSameTargetName) {
  const RunManifest a = SampleManifest();
  RunManifest b = SampleManifest();
  b.models[1].system_fingerprints = std::map<std::string, int64_t>{{"fp_2", 40}};
  std::vector<std::string> d = RunManifestDifferences(a, "leaky", b, "leaky");
  ASSERT_EQ(d.size(), 1u) << Joined(d);
  EXPECT_EQ(d[0],
            "target \"leaky\" system_fingerprint changed: A {(none reported) x1, fp_1 x39}, B "
            "{fp_2 x40} (same target name: the model behind the endpoint may have changed)");
  // Only the set matters, not how often each value came.
  b.models[1].system_fingerprints = std::map<std::string, int64_t>{{"fp_1", 3}, {"", 5}};
  EXPECT_TRUE(RunManifestDifferences(a, "leaky", b, "leaky").empty());
  // A run that observed no response (every unit reused) has nothing to compare.
  b.models[1].system_fingerprints->clear();
  EXPECT_TRUE(RunManifestDifferences(a, "leaky", b, "leaky").empty());
  // Different target names: a different target, whatever its fingerprints.
  b.models[0].system_fingerprints = std::map<std::string, int64_t>{{"fp_9", 1}};
  EXPECT_TRUE(RunManifestDifferences(a, "leaky", b, "careful").empty());
  // The simulator's fingerprint changing under the same identity is a warning too.
  b = SampleManifest();
  b.models[2].system_fingerprints = std::map<std::string, int64_t>{{"fp_sim_2", 30}};
  d = RunManifestDifferences(a, "careful", b, "careful");
  ASSERT_EQ(d.size(), 1u) << Joined(d);
  EXPECT_NE(d[0].find("simulator \"sim\" system_fingerprint changed"), std::string::npos) << d[0];
}

TEST(RunManifestDifferencesTest, ARoleMissingOnOneSide) {
  const RunManifest a = SampleManifest();
  RunManifest b = SampleManifest();
  b.models.erase(b.models.begin() + 2);  // no simulator
  b.families.clear();
  const std::vector<std::string> d = RunManifestDifferences(a, "careful", b, "careful");
  EXPECT_TRUE(Contains(d, "simulator differs: A \"sim\", B none")) << Joined(d);
  EXPECT_TRUE(Contains(d, "families only in A: jailbreak")) << Joined(d);
}

TEST(RunManifestTest, RendersReadableText) {
  const std::string text = RenderRunManifestText(SampleManifest());
  EXPECT_NE(text.find("breakfix 0.1.0, created 2025-11-28T00:00:00Z"), std::string::npos) << text;
  EXPECT_NE(text.find("data/prompts.csv (jailbreak)"), std::string::npos) << text;
  EXPECT_NE(text.find("rubric jailbreak version 0123456789ab"), std::string::npos) << text;
  EXPECT_NE(text.find("fingerprints  {(none reported) x1, fp_1 x39}"), std::string::npos) << text;
  EXPECT_NE(text.find("pinned        temperature 0.5 (by the endpoint)"), std::string::npos)
      << text;
  EXPECT_NE(text.find("fingerprints  none (this role calls no model)"), std::string::npos) << text;
  EXPECT_NE(text.find("1. breakfix 0.1.0"), std::string::npos) << text;
}

TEST(RunManifestTest, RedactsCredentialsInUrls) {
  EXPECT_EQ(RedactUrlCredentials(R"({"base_url":"https://user:pw@host:1/v1?x=1","model":"m"})"),
            R"({"base_url":"https://***@host:1/v1?x=1","model":"m"})");
  EXPECT_EQ(RedactUrlCredentials("a http://k@h b https://h2/p@x"),
            "a http://***@h b https://h2/p@x");
  EXPECT_EQ(RedactUrlCredentials("no url here"), "no url here");
  EXPECT_EQ(RedactUrlCredentials("http://"), "http://");
}

TEST(RunManifestTest, MissingNotes) {
  EXPECT_EQ(RunManifestMissingNote(RunManifestState::kBeforeSchema),
            "manifest: not recorded (run made before schema 6)");
  EXPECT_NE(RunManifestMissingNote(RunManifestState::kNotRecorded).find("not recorded"),
            std::string::npos);
}

// --- With a store ---

using store::RawDb;
using store::ScratchDir;

RunRecord NewRun(const std::string& name, const std::string& target) {
  RunRecord run;
  run.name = name;
  run.config_hash = name + "-hash";
  run.config_json = R"({"families":[],"seed":1})";
  run.suite_name = "rai";
  run.suite_hash = "h";
  run.seed = 1;
  run.targets = {target};
  run.target_identities = {"id-" + target};
  run.judge = "judge";
  return run;
}

RunReport ReportFor(const RunRecord& run) {
  RunReport r;
  r.run = run;
  r.targets = run.targets;
  return r;
}

// A store left by a build whose schema stopped at version 5, holding one run.
void BuildVersion5Store(const std::string& path) {
  RawDb raw(path);
  ASSERT_TRUE(raw.Exec("PRAGMA journal_mode = WAL").ok());
  Status s = store::MigrateSchema(raw.get(), path, 5);
  ASSERT_TRUE(s.ok()) << s.ToString();
  s = raw.Exec(R"sql(
    INSERT INTO runs (id, name, config_hash, config_json, suite_name, suite_hash, seed,
                      targets_json, simulator, judge, status, created_us, updated_us)
      VALUES (1, 'old-run', 'cafe', '{"families":[],"seed":1}', 'rai', 'beef', 1, '["careful"]',
              '', 'judge', 'complete', 1600000000000000, 1600000000000000);
    INSERT INTO run_targets (run_id, position, name, identity) VALUES (1, 0, 'careful', 'x');
  )sql");
  ASSERT_TRUE(s.ok()) << s.ToString();
}

TEST(RunManifestStoreTest, ARunFromAVersion5StoreReportsNoManifest) {
  ScratchDir dir;
  const std::string path = dir.File("v5.db");
  BuildVersion5Store(path);
  auto store = Store::OpenSqlite(path);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->SchemaVersion(), kRunManifestSchemaVersion);
  auto old = (*store)->FindRun("old-run");
  ASSERT_TRUE(old.ok());
  auto record = (*store)->GetRunManifest(old->id);
  ASSERT_TRUE(record.ok()) << record.status().ToString();
  EXPECT_EQ(record->state, RunManifestState::kBeforeSchema);
  EXPECT_EQ(RunManifestMissingNote(record->state),
            "manifest: not recorded (run made before schema 6)");

  // A new run with a manifest, compared with the old one: the configurations are compared, and
  // the warnings say what could not be.
  auto fresh = (*store)->BeginRun(NewRun("new-run", "careful"));
  ASSERT_TRUE(fresh.ok());
  RunManifest m = SampleManifest();
  ASSERT_TRUE((*store)->PutRunManifest(fresh->id, RunManifestToJson(m)).ok());
  auto cmp = CompareTargets(store->get(), ReportFor(*old), "careful", ReportFor(*fresh), "careful",
                            1, 100);
  ASSERT_TRUE(cmp.ok()) << cmp.status().ToString();
  EXPECT_TRUE(Contains(cmp->warnings,
                       "run old-run: manifest: not recorded (run made before "
                       "schema 6); breakfix versions, dataset files and system "
                       "fingerprints were not compared"))
      << Joined(cmp->warnings);
  EXPECT_EQ(cmp->warnings.size(), 1u) << Joined(cmp->warnings);  // the configs are alike

  // WriteReportFiles writes manifest.json only for a run that has one.
  auto written = WriteReportFiles(store->get(), ReportFor(*fresh), dir.File("new"), Env::Default());
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(written->back(), dir.File("new") + "/manifest.json");
  auto text = Env::Default()->ReadFile(dir.File("new") + "/manifest.json");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, RunManifestToJson(m));
  written = WriteReportFiles(store->get(), ReportFor(*old), dir.File("old"), Env::Default());
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  for (const std::string& p : *written) EXPECT_EQ(p.find("manifest.json"), std::string::npos);
}

TEST(RunManifestStoreTest, CompareWarnsFromManifestsAndNeverWithinOneRun) {
  ScratchDir dir;
  auto store = Store::OpenSqlite(dir.File("s.db"));
  ASSERT_TRUE(store.ok());
  auto a = (*store)->BeginRun(NewRun("a", "leaky"));
  auto b = (*store)->BeginRun(NewRun("b", "leaky"));
  ASSERT_TRUE(a.ok() && b.ok());
  RunManifest ma = SampleManifest();
  RunManifest mb = SampleManifest();
  mb.seed = 9;
  mb.models[1].system_fingerprints = std::map<std::string, int64_t>{{"fp_new", 40}};
  ASSERT_TRUE((*store)->PutRunManifest(a->id, RunManifestToJson(ma)).ok());
  ASSERT_TRUE((*store)->PutRunManifest(b->id, RunManifestToJson(mb)).ok());
  auto cmp = CompareTargets(store->get(), ReportFor(*a), "leaky", ReportFor(*b), "leaky", 1, 100);
  ASSERT_TRUE(cmp.ok()) << cmp.status().ToString();
  ASSERT_EQ(cmp->warnings.size(), 2u) << Joined(cmp->warnings);
  EXPECT_EQ(cmp->warnings[0], "seed differs: A 7, B 9");
  EXPECT_NE(cmp->warnings[1].find("target \"leaky\" system_fingerprint changed"),
            std::string::npos);
  // The warnings reach both renderings.
  EXPECT_NE(RenderComparisonMarkdown(*cmp).find("> Warning: seed differs: A 7, B 9"),
            std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(RenderComparisonJson(*cmp))["warnings"].size(), 2u);

  auto same = CompareTargets(store->get(), ReportFor(*a), "leaky", ReportFor(*a), "leaky", 1, 100);
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->warnings.empty()) << Joined(same->warnings);

  // A manifest that no longer parses is reported, and the configurations are compared instead.
  RawDb raw(dir.File("s.db"));
  ASSERT_TRUE(raw.Exec("UPDATE run_manifests SET manifest_json = '{\"manifest_version\":1}' "
                       "WHERE run_id = " +
                       std::to_string(b->id))
                  .ok());
  cmp = CompareTargets(store->get(), ReportFor(*a), "leaky", ReportFor(*b), "leaky", 1, 100);
  ASSERT_TRUE(cmp.ok());
  EXPECT_TRUE(Contains(cmp->warnings, "run b: the stored manifest could not be read"))
      << Joined(cmp->warnings);
}

}  // namespace
}  // namespace breakfix
