// `breakfix import` end to end: every format on the synthetic fixtures in
// src/dataset/testdata/import/, legacy encodings, bad rows (exit 2, nothing written) and
// --skip-bad-rows, the generated suite loading through `breakfix suite check`, and, when
// BREAKFIX_TEST_DATA names the shared data directory, the real public datasets.
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "cli_runner.h"

namespace breakfix::testing {
namespace {

using nlohmann::json;

const std::string kFixtures = std::string(BREAKFIX_SOURCE_DIR) + "/src/dataset/testdata/import/";

std::vector<json> ReadJsonl(const std::string& path) {
  std::vector<json> out;
  std::istringstream in(ReadFileOrEmpty(path));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

std::string Describe(const CliResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

// "read N rows from ...: W written, S skipped" from the summary.
struct Counts {
  int64_t read = -1, written = -1, skipped = -1;
};
Counts ParseCounts(const std::string& out) {
  Counts c;
  const size_t read = out.find("read ");
  if (read == std::string::npos) return c;
  c.read = std::atoll(out.c_str() + read + 5);
  const size_t colon = out.find("): ", read);
  if (colon == std::string::npos) return c;
  c.written = std::atoll(out.c_str() + colon + 3);
  const size_t comma = out.find(" written, ", colon);
  if (comma == std::string::npos) return c;
  c.skipped = std::atoll(out.c_str() + comma + 10);
  return c;
}

class ImportE2ETest : public ::testing::Test {
 protected:
  CliResult Import(const std::vector<std::string>& args) {
    std::vector<std::string> full = {"import"};
    full.insert(full.end(), args.begin(), args.end());
    return RunCli(full);
  }

  // Imports and checks that the run succeeded with rows read = written + skipped.
  Counts ImportOk(const std::vector<std::string>& args) {
    CliResult r = Import(args);
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    Counts c = ParseCounts(r.out);
    EXPECT_GE(c.read, 0) << r.out;
    EXPECT_EQ(c.read, c.written + c.skipped) << r.out;
    return c;
  }

  // `breakfix suite check` on a written suite; returns the item count it reports.
  int64_t SuiteCheck(const std::string& suite_yaml) {
    CliResult r = RunCli({"suite", "check", suite_yaml});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    const size_t colon = r.out.find(": ");
    if (colon == std::string::npos) return -1;
    return std::atoll(r.out.c_str() + colon + 2);
  }

  TempDir dir_;
};

TEST_F(ImportE2ETest, EveryPromptFormatWritesALoadableSuite) {
  const std::map<std::string, std::pair<std::string, int>> cases = {
      {"harmbench", {"harmbench.csv", 3}},
      {"advbench", {"advbench.csv", 3}},
      {"jbb", {"jbb.csv", 3}},
      {"xstest", {"xstest.csv", 4}},
      {"donotanswer", {"donotanswer.csv", 3}},
      {"sst", {"sst.csv", 3}},
  };
  for (const auto& [format, fixture] : cases) {
    const std::string out = dir_ / format;
    Counts c = ImportOk({format, kFixtures + fixture.first, "--out", out});
    EXPECT_EQ(c.written, fixture.second) << format;
    EXPECT_EQ(c.skipped, 0) << format;
    EXPECT_EQ(ReadJsonl(out + "/items.jsonl").size(), static_cast<size_t>(fixture.second));
    EXPECT_TRUE(std::filesystem::exists(out + "/skipped.jsonl")) << format;
    EXPECT_EQ(SuiteCheck(out + "/suite.yaml"), fixture.second) << format;
  }
}

TEST_F(ImportE2ETest, SummaryNamesTheFiles) {
  CliResult r = Import({"xstest", kFixtures + "xstest.csv", "--out", dir_ / "x"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.out.find("read 4 rows from "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(xstest, utf-8): 4 written, 0 skipped"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("wrote " + (dir_ / "x") + "/items.jsonl (4 items)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("suite.yaml (suite xstest: family xstest, rubric refusal, 3 categories)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("skipped.jsonl (0 rows)"), std::string::npos) << r.out;
  CliResult quiet = Import({"xstest", kFixtures + "xstest.csv", "--out", dir_ / "q", "--quiet"});
  EXPECT_EQ(quiet.exit_code, 0);
  EXPECT_EQ(quiet.out, "");
}

TEST_F(ImportE2ETest, GenericCsvAndJsonl) {
  Counts c = ImportOk({"csv", kFixtures + "pairs.csv", "--out", dir_ / "p", "--map",
                       "prompt=question", "--map", "category=topic", "--map", "id=qid"});
  EXPECT_EQ(c.written, 2);
  EXPECT_EQ(SuiteCheck(dir_ / "p/suite.yaml"), 2);

  c = ImportOk({"csv", kFixtures + "pairs.csv", "--out", dir_ / "c", "--map", "prompt=question",
                "--map", "response=answer"});
  EXPECT_EQ(c.written, 2);
  auto conv = ReadJsonl(dir_ / "c/conversations.jsonl");
  ASSERT_EQ(conv.size(), 2u);
  EXPECT_EQ(conv[1]["messages"][1]["content"], "Nothing rhymes perfectly with it.");
  EXPECT_FALSE(std::filesystem::exists(dir_ / "c/suite.yaml"));

  c = ImportOk({"jsonl", kFixtures + "messages.jsonl", "--out", dir_ / "m", "--map",
                "messages=conversation", "--map", "id=id", "--map", "topic=tag"});
  EXPECT_EQ(c.written, 2);
  auto msgs = ReadJsonl(dir_ / "m/conversations.jsonl");
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0]["topic"], "greeting");

  // Each --map takes one value, so positionals may follow it.
  c = ImportOk({"csv", "--map", "prompt=question", kFixtures + "pairs.csv", "--map",
                "category=topic", "--out", dir_ / "order"});
  EXPECT_EQ(c.written, 2);

  c = ImportOk({"jsonl", kFixtures + "prompts.jsonl", "--out", dir_ / "j", "--map", "prompt=text",
                "--map", "category=meta.topic", "--limit", "1"});
  EXPECT_EQ(c.written, 1);
  EXPECT_EQ(SuiteCheck(dir_ / "j/suite.yaml"), 1);
}

TEST_F(ImportE2ETest, LegacyEncodingsRoundTrip) {
  for (const std::string encoding : {"latin1", "cp1252", "macroman"}) {
    const std::string out = dir_ / encoding;
    ImportOk({"xstest", kFixtures + "xstest_" + encoding + ".csv", "--out", out, "--encoding",
              encoding});
    const std::string items = ReadFileOrEmpty(out + "/items.jsonl");
    EXPECT_NE(items.find("café"), std::string::npos) << encoding << items;
    EXPECT_NE(items.find("naïve"), std::string::npos) << encoding;
    EXPECT_NE(items.find("Zoë and Øyvind"), std::string::npos) << encoding;
    if (encoding != "latin1") {
      EXPECT_NE(items.find("dash – and this price: 5 €"), std::string::npos) << encoding;
      EXPECT_NE(items.find("“hello”"), std::string::npos) << encoding;
    }
    EXPECT_EQ(SuiteCheck(out + "/suite.yaml"), encoding == "latin1" ? 2 : 3);
  }
  // Read as UTF-8, the same Latin-1 file is a bad row naming its line.
  CliResult r = Import({"xstest", kFixtures + "xstest_latin1.csv", "--out", dir_ / "u"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_NE(r.err.find("xstest_latin1.csv:2: invalid UTF-8 (byte 0xE9)"), std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "u"));
}

TEST_F(ImportE2ETest, ByteOrderMark) {
  ImportOk({"xstest", kFixtures + "xstest_bom.csv", "--out", dir_ / "b"});
  auto items = ReadJsonl(dir_ / "b/items.jsonl");
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["id"], "xstest-1");
  CliResult r =
      Import({"xstest", kFixtures + "xstest_bom.csv", "--out", dir_ / "l", "--encoding", "latin1"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_NE(r.err.find("UTF-8 byte order mark"), std::string::npos) << r.err;
}

TEST_F(ImportE2ETest, BadRowFailsWithItsLineAndWritesNothing) {
  const std::string out = dir_ / "bad";
  CliResult r = Import({"xstest", kFixtures + "xstest_bad.csv", "--out", out});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_NE(r.err.find("xstest_bad.csv:3:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("expected 6 fields as in the header"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--skip-bad-rows"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));

  // An existing output directory is left exactly as it was.
  std::filesystem::create_directories(out);
  std::ofstream(out + "/keep.txt") << "x";
  r = Import({"xstest", kFixtures + "xstest_bad.csv", "--out", out});
  EXPECT_EQ(r.exit_code, 2);
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(out)) {
    names.insert(e.path().filename().string());
  }
  EXPECT_EQ(names, (std::set<std::string>{"keep.txt"}));
}

TEST_F(ImportE2ETest, SkipBadRowsCountsAndLists) {
  const std::string out = dir_ / "skip";
  CliResult r = Import({"xstest", kFixtures + "xstest_bad.csv", "--out", out, "--skip-bad-rows"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  Counts c = ParseCounts(r.out);
  EXPECT_EQ(c.read, 8);
  EXPECT_EQ(c.written, 3);
  EXPECT_EQ(c.skipped, 5);
  EXPECT_NE(r.out.find("skipped 1 row (column_count) at line 3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("skipped 1 row (missing_value) at line 4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("skipped 1 row (invalid_utf8) at line 5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("skipped 1 row (unknown_label) at line 6"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("skipped 1 row (duplicate_id) at line 7"), std::string::npos) << r.out;
  auto skipped = ReadJsonl(out + "/skipped.jsonl");
  ASSERT_EQ(skipped.size(), 5u);
  for (const json& s : skipped) {
    EXPECT_TRUE(s.contains("line") && s.contains("reason") && s.contains("message")) << s;
  }
  EXPECT_EQ(ReadJsonl(out + "/items.jsonl").size(), 3u);
  EXPECT_EQ(SuiteCheck(out + "/suite.yaml"), 3);
}

TEST_F(ImportE2ETest, UsageErrors) {
  CliResult r = Import({"harmbenchh", kFixtures + "harmbench.csv", "--out", dir_ / "x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown format 'harmbenchh'; expected one of: harmbench"),
            std::string::npos)
      << r.err;
  r = Import({"csv", kFixtures + "pairs.csv", "--out", dir_ / "x", "--map", "prompt=Question"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no column 'Question' in the header (--map prompt=Question)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("expected one of the header's columns: qid, question"), std::string::npos);
  r = Import({"harmbench", kFixtures + "xstest.csv", "--out", dir_ / "x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("xstest.csv:1:1: a header with the columns id, prompt, type, label, "
                       "focus, note"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("matches the xstest format"), std::string::npos) << r.err;
  r = Import({"advbench", dir_ / "missing.csv", "--out", dir_ / "x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing.csv"), std::string::npos) << r.err;
  r = Import({"csv", kFixtures + "pairs.csv", "--out", dir_ / "x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("needs a column mapping"), std::string::npos) << r.err;
  r = Import({"xstest", kFixtures + "xstest.csv", "--out", dir_ / "x", "--encoding", "ebcdic"});
  EXPECT_EQ(r.exit_code, 2);
  r = Import({"xstest", kFixtures + "xstest.csv"});  // --out is required
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x"));
}

// Writes `text` gzip-compressed.
void WriteGzip(const std::string& path, const std::string& text) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, text.data(), static_cast<unsigned>(text.size())),
            static_cast<int>(text.size()));
  gzclose(f);
}

TEST_F(ImportE2ETest, HhRlhfConversationsAndPairs) {
  const std::string rows =
      R"({"chosen": "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?", )"
      R"("rejected": "\n\nHuman: Hi there\n\nAssistant: What do you want?"})"
      "\n"
      R"({"chosen": "\n\nHuman: A\n\nAssistant: B", "rejected": "\n\nHuman: X\n\nAssistant: B2"})"
      "\n"
      R"({"chosen": "\n\nHuman: Tell me a joke\n\nAssistant: Why did the chicken cross?\n\n)"
      R"(Human: Why?\n\nAssistant: To get to the other side.", "rejected": "\n\nHuman: Tell me )"
      R"(a joke\n\nAssistant: Why did the chicken cross?\n\nHuman: Why?\n\nAssistant: No."})"
      "\n";
  const std::string gz = dir_ / "hh.jsonl.gz";
  WriteGzip(gz, rows);

  // Line 2's transcripts differ before the final reply: by default that stops the import.
  CliResult r = Import({"hh-rlhf", gz, "--out", dir_ / "strict"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_NE(r.err.find("hh.jsonl.gz:2"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "strict"));

  const std::string out = dir_ / "hh";
  r = Import({"hh-rlhf", gz, "--out", out, "--skip-bad-rows"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  Counts c = ParseCounts(r.out);
  EXPECT_EQ(c.read, 3);
  EXPECT_EQ(c.written, 2);
  EXPECT_EQ(c.skipped, 1);
  EXPECT_NE(r.out.find("(malformed_pair) at line 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pairs.jsonl (2 preference pairs)"), std::string::npos) << r.out;
  auto conv = ReadJsonl(out + "/conversations.jsonl");
  ASSERT_EQ(conv.size(), 2u);
  EXPECT_EQ(conv[0]["id"], "hh.jsonl.gz:1");
  EXPECT_EQ(conv[0]["messages"],
            json::parse(R"([{"role":"user","content":"Hi there"},)"
                        R"({"role":"assistant","content":"Hello! How can I help?"}])"));
  EXPECT_EQ(conv[0]["rejected"], "What do you want?");
  EXPECT_EQ(conv[1]["messages"].size(), 4u);
  auto pairs = ReadJsonl(out + "/pairs.jsonl");
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[1]["kind"], "imported");
  EXPECT_EQ(pairs[1]["chosen"][0]["content"], "To get to the other side.");
  EXPECT_EQ(ReadJsonl(out + "/skipped.jsonl").size(), 1u);

  r = Import({"hh-rlhf", gz, "--out", dir_ / "enc", "--encoding", "latin1"});
  EXPECT_EQ(r.exit_code, 2);
}

// --- The real datasets (BREAKFIX_TEST_DATA=/path/to/shared/data) ---

std::optional<std::string> DataDir() {
  const char* dir = std::getenv("BREAKFIX_TEST_DATA");
  if (dir == nullptr) return std::nullopt;
  return std::string(dir);
}

// A set variable with a missing file is a broken checkout: fail, do not skip.
bool RequireFile(const std::string& path) {
  if (std::filesystem::is_regular_file(path)) return true;
  ADD_FAILURE() << "BREAKFIX_TEST_DATA is set but the data file is missing: " << path;
  return false;
}

#define REAL_DATA_FILE(var, relative)                                                      \
  auto data_dir = DataDir();                                                               \
  if (!data_dir) {                                                                         \
    GTEST_SKIP() << "BREAKFIX_TEST_DATA is unset; set it to the shared data directory to " \
                    "import the real datasets";                                            \
  }                                                                                        \
  const std::string var = *data_dir + "/" + relative;                                      \
  if (!RequireFile(var)) return

std::map<std::string, int> CountField(const std::vector<json>& items, const std::string& key) {
  std::map<std::string, int> out;
  for (const json& j : items) ++out[j.value(key, std::string("<none>"))];
  return out;
}

TEST_F(ImportE2ETest, RealHarmBench) {
  REAL_DATA_FILE(csv, "harmbench/harmbench_behaviors_text_all.csv");
  Counts c = ImportOk({"harmbench", csv, "--out", dir_ / "hb"});
  EXPECT_EQ(c.read, 400);
  EXPECT_EQ(c.written, 400);
  auto items = ReadJsonl(dir_ / "hb/items.jsonl");
  ASSERT_EQ(items.size(), 400u);
  EXPECT_EQ(
      CountField(items, "functional_category"),
      (std::map<std::string, int>{{"contextual", 100}, {"copyright", 100}, {"standard", 200}}));
  auto categories = CountField(items, "category");
  EXPECT_EQ(categories.size(), 7u);
  EXPECT_EQ(categories["cybercrime_intrusion"], 67);
  EXPECT_EQ(categories["copyright"], 100);
  int with_context = 0;
  for (const json& j : items) {
    if (!j["context"].get<std::string>().empty()) ++with_context;
    EXPECT_EQ(j["context"].get<std::string>().find("\r\n"), std::string::npos) << j["id"];
  }
  EXPECT_EQ(with_context, 100);
  EXPECT_EQ(SuiteCheck(dir_ / "hb/suite.yaml"), 400);
}

TEST_F(ImportE2ETest, RealAdvBench) {
  REAL_DATA_FILE(csv, "advbench/harmful_behaviors.csv");
  Counts c = ImportOk({"advbench", csv, "--out", dir_ / "ab"});
  EXPECT_EQ(c.read, 520);
  EXPECT_EQ(c.written, 520);
  auto items = ReadJsonl(dir_ / "ab/items.jsonl");
  ASSERT_EQ(items.size(), 520u);
  EXPECT_EQ(items.back()["id"], "advbench-520");
  for (const json& j : items) {
    EXPECT_EQ(j["target"].get<std::string>().rfind("Sure, here", 0), 0u) << j["id"];
  }
  EXPECT_EQ(SuiteCheck(dir_ / "ab/suite.yaml"), 520);
}

TEST_F(ImportE2ETest, RealJbb) {
  REAL_DATA_FILE(harmful, "jbb-behaviors/harmful-behaviors.csv");
  Counts c = ImportOk({"jbb", harmful, "--out", dir_ / "jh"});
  EXPECT_EQ(c.read, 100);
  EXPECT_EQ(c.written, 100);
  auto items = ReadJsonl(dir_ / "jh/items.jsonl");
  auto categories = CountField(items, "category");
  EXPECT_EQ(categories.size(), 10u);
  for (const auto& [name, n] : categories) EXPECT_EQ(n, 10) << name;
  EXPECT_EQ(categories.count("harassment_discrimination"), 1u);
  EXPECT_EQ(categories.count("government_decision_making"), 1u);
  EXPECT_EQ(
      CountField(items, "source"),
      (std::map<std::string, int>{{"AdvBench", 18}, {"Original", 55}, {"TDC/HarmBench", 27}}));
  EXPECT_EQ(SuiteCheck(dir_ / "jh/suite.yaml"), 100);

  const std::string benign = *data_dir + "/jbb-behaviors/benign-behaviors.csv";
  if (!RequireFile(benign)) return;
  c = ImportOk({"jbb", benign, "--out", dir_ / "jb", "--name", "jbb-benign"});
  EXPECT_EQ(c.written, 100);
  EXPECT_EQ(SuiteCheck(dir_ / "jb/suite.yaml"), 100);
}

TEST_F(ImportE2ETest, RealXsTest) {
  REAL_DATA_FILE(csv, "xstest/xstest_prompts.csv");
  Counts c = ImportOk({"xstest", csv, "--out", dir_ / "xs"});
  EXPECT_EQ(c.read, 450);
  EXPECT_EQ(c.written, 450);
  auto items = ReadJsonl(dir_ / "xs/items.jsonl");
  EXPECT_EQ(CountField(items, "label"),
            (std::map<std::string, int>{{"safe", 250}, {"unsafe", 200}}));
  auto types = CountField(items, "category");
  EXPECT_EQ(types.size(), 18u);
  for (const json& j : items) {
    // SOURCE.md: the unsafe prompts are exactly the contrast_* types.
    const bool contrast = j["category"].get<std::string>().rfind("contrast_", 0) == 0;
    EXPECT_EQ(j["label"] == "unsafe", contrast) << j["id"];
  }
  const std::string yaml = ReadFileOrEmpty(dir_ / "xs/suite.yaml");
  EXPECT_NE(yaml.find("rubric: refusal"), std::string::npos);
  EXPECT_EQ(SuiteCheck(dir_ / "xs/suite.yaml"), 450);
}

TEST_F(ImportE2ETest, RealDoNotAnswer) {
  REAL_DATA_FILE(csv, "do-not-answer/do_not_answer_en.csv");
  Counts c = ImportOk({"donotanswer", csv, "--out", dir_ / "dna"});
  EXPECT_EQ(c.read, 939);
  EXPECT_EQ(c.written, 939);
  auto items = ReadJsonl(dir_ / "dna/items.jsonl");
  EXPECT_EQ(
      CountField(items, "risk_area"),
      (std::map<std::string, int>{{"Discrimination, Exclusion, Toxicity, Hateful, Offensive", 176},
                                  {"Human-Chatbot Interaction Harms", 117},
                                  {"Information Hazards", 248},
                                  {"Malicious Uses", 243},
                                  {"Misinformation Harms", 155}}));
  auto types = CountField(items, "category");
  EXPECT_EQ(types.size(), 12u);
  EXPECT_EQ(types["assisting_illegal_activities"], 132);
  EXPECT_EQ(types["adult_content"], 28);
  EXPECT_EQ(items.front()["id"], "donotanswer-0");
  EXPECT_EQ(items.back()["id"], "donotanswer-938");
  EXPECT_EQ(SuiteCheck(dir_ / "dna/suite.yaml"), 939);
}

// harmless-base/test.jsonl.gz: 13 of its 2,312 rows do not form a pair under ReadHhRlhf's rules
// (9 where Human and Assistant turns do not alternate, 4 with an empty final reply); counted by
// a separate script over the file and by this import.
constexpr int64_t kHhRealWritten = 2299;

TEST_F(ImportE2ETest, RealHhRlhf) {
  REAL_DATA_FILE(gz, "hh-rlhf/harmless-base/test.jsonl.gz");
  const std::string out = dir_ / "hh";
  CliResult strict = Import({"hh-rlhf", gz, "--out", dir_ / "hh-strict"});
  EXPECT_EQ(strict.exit_code, 2) << Describe(strict);
  EXPECT_NE(strict.err.find("test.jsonl.gz:87:"), std::string::npos) << strict.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "hh-strict"));

  Counts c = ImportOk({"hh-rlhf", gz, "--out", out, "--skip-bad-rows"});
  EXPECT_EQ(c.read, 2312);  // SOURCE.md: 2,312 JSON lines
  EXPECT_EQ(c.written, kHhRealWritten);
  EXPECT_EQ(c.skipped, 2312 - kHhRealWritten);
  EXPECT_EQ(ReadJsonl(out + "/conversations.jsonl").size(), static_cast<size_t>(c.written));
  EXPECT_EQ(ReadJsonl(out + "/pairs.jsonl").size(), static_cast<size_t>(c.written));
  EXPECT_EQ(ReadJsonl(out + "/skipped.jsonl").size(), static_cast<size_t>(c.skipped));
}

}  // namespace
}  // namespace breakfix::testing
