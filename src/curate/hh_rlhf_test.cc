// HH-RLHF import: transcript splitting, the shared prefix as the prompt, malformed rows reported
// by line (or refused in strict mode), gzip input, and the real harmless-base test split.
#include <gtest/gtest.h>
#include <zlib.h>

#include <nlohmann/json.hpp>

#include "breakfix/curate.h"
#include "curate/curate_test_support.h"
#include "curate/line_reader.h"

namespace breakfix::curate {
namespace {

using nlohmann::json;

std::string Row(const std::string& chosen, const std::string& rejected) {
  return json({{"chosen", chosen}, {"rejected", rejected}}).dump() + "\n";
}

std::string WriteGz(const ScratchDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.File(name);
  gzFile gz = gzopen(path.c_str(), "wb");
  EXPECT_NE(gz, nullptr);
  gzwrite(gz, text.data(), static_cast<unsigned>(text.size()));
  gzclose(gz);
  return path;
}

TEST(HhRlhfTest, SplitsTranscriptIntoAlternatingTurns) {
  auto turns = ParseHhTranscript(
      "\n\nHuman: What is a pen?\n\nAssistant:  A writing tool.\n\nHuman: and a pencil? \n\n"
      "Assistant: Also one.\nIt uses graphite.");
  ASSERT_TRUE(turns.ok()) << turns.status().ToString();
  const std::vector<Message> want = {{Role::kUser, "What is a pen?"},
                                     {Role::kAssistant, "A writing tool."},
                                     {Role::kUser, "and a pencil?"},
                                     {Role::kAssistant, "Also one.\nIt uses graphite."}};
  EXPECT_EQ(*turns, want);
  // An empty final reply is a turn with empty content.
  auto empty = ParseHhTranscript("\n\nHuman: hi\n\nAssistant:");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->back(), (Message{Role::kAssistant, ""}));
  // "Human:" inside a turn without the blank line is text, not a new turn.
  auto inline_marker = ParseHhTranscript("\n\nHuman: q\n\nAssistant: a Human: b");
  ASSERT_TRUE(inline_marker.ok());
  EXPECT_EQ(inline_marker->back().content, "a Human: b");
}

TEST(HhRlhfTest, RejectsTranscriptsThatDoNotAlternate) {
  auto twice = ParseHhTranscript("\n\nHuman: a\n\nHuman: b\n\nAssistant: c");
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("turn 2 (Human) follows another Human turn"),
            std::string::npos)
      << twice.status().message();
  auto no_human = ParseHhTranscript("\n\nAssistant: hello");
  ASSERT_FALSE(no_human.ok());
  EXPECT_NE(no_human.status().message().find("does not start with \"Human:\""), std::string::npos);
  EXPECT_FALSE(ParseHhTranscript("   ").ok());
}

TEST(HhRlhfTest, SharedPrefixIsThePromptAndFinalRepliesThePair) {
  ScratchDir dir;
  const std::string prefix =
      "\n\nHuman: how do I hotwire a car?\n\nAssistant: Why?\n\nHuman: "
      "it is mine, lost keys";
  const std::string path = dir.Write(
      "hh.jsonl", Row(prefix + "\n\nAssistant: Call a locksmith or your dealer.",
                      prefix + "\n\nAssistant: Strip the ignition wires and touch them."));
  auto data = ReadHhRlhf(path);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  ASSERT_EQ(data->pairs.size(), 1u);
  EXPECT_TRUE(data->skipped.empty());
  const PreferencePair& p = data->pairs[0];
  const std::vector<Message> want = {{Role::kUser, "how do I hotwire a car?"},
                                     {Role::kAssistant, "Why?"},
                                     {Role::kUser, "it is mine, lost keys"}};
  EXPECT_EQ(p.prompt, want);
  EXPECT_EQ(p.chosen, "Call a locksmith or your dealer.");
  EXPECT_EQ(p.rejected, "Strip the ignition wires and touch them.");
  EXPECT_EQ(p.kind, kPairKindImported);
  EXPECT_EQ(p.id, "hh.jsonl:1");
  EXPECT_EQ(json::parse(p.provenance_json),
            json({{"source", "hh-rlhf"}, {"file", "hh.jsonl"}, {"line", 1}}));
}

TEST(HhRlhfTest, MalformedRowsAreReportedByLineOrRefusedWhenStrict) {
  ScratchDir dir;
  const std::string good = Row("\n\nHuman: q\n\nAssistant: good", "\n\nHuman: q\n\nAssistant: bad");
  const std::string text =
      good +                                                                       // 1
      "{\"chosen\": \"\\n\\nHuman: q\"\n" +                                        // 2: bad JSON
      Row("\n\nHuman: q\n\nAssistant: a", "\n\nHuman: other\n\nAssistant: b") +    // 3: differ
      Row("\n\nHuman: q\n\nAssistant:  ", "\n\nHuman: q\n\nAssistant: b") +        // 4: empty
      "\n" +                                                                       // blank
      json({{"chosen", "\n\nHuman: q\n\nAssistant: a"}}).dump() + "\n" +           // 6: missing
      Row("\n\nHuman: q\n\nAssistant: same", "\n\nHuman: q\n\nAssistant: same") +  // 7: identical
      Row("\n\nHuman: q", "\n\nHuman: q") +                                        // 8: no reply
      good;                                                                        // 9
  const std::string path = dir.Write("hh.jsonl", text);
  auto data = ReadHhRlhf(path);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->lines_read, 8);
  ASSERT_EQ(data->pairs.size(), 2u);
  EXPECT_EQ(data->pairs[1].id, "hh.jsonl:9");
  ASSERT_EQ(data->skipped.size(), 6u);
  const std::vector<int64_t> lines = {2, 3, 4, 6, 7, 8};
  const std::vector<std::string> what = {"not valid JSON",
                                         "differ at turn 1",
                                         "\"chosen\": the final Assistant turn is empty",
                                         "missing field \"rejected\"",
                                         "identical",
                                         "ends with a Human turn"};
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(data->skipped[i].line, lines[i]);
    EXPECT_NE(data->skipped[i].message.find(what[i]), std::string::npos)
        << data->skipped[i].message;
    EXPECT_NE(data->skipped[i].message.find("hh.jsonl:" + std::to_string(lines[i])),
              std::string::npos)
        << data->skipped[i].message;
  }

  HhRlhfOptions strict;
  strict.strict = true;
  auto refused = ReadHhRlhf(path, strict);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("hh.jsonl:2"), std::string::npos)
      << refused.status().message();

  HhRlhfOptions limited;
  limited.limit = 1;
  auto one = ReadHhRlhf(path, limited);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->pairs.size(), 1u);
  EXPECT_EQ(one->lines_read, 1);
}

TEST(HhRlhfTest, ReadsGzipAndReportsATruncatedStream) {
  ScratchDir dir;
  std::string text;
  for (int i = 0; i < 200; ++i) {
    text += Row("\n\nHuman: q" + std::to_string(i) + "\n\nAssistant: good",
                "\n\nHuman: q" + std::to_string(i) + "\n\nAssistant: bad");
  }
  const std::string path = WriteGz(dir, "hh.jsonl.gz", text);
  auto data = ReadHhRlhf(path);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->pairs.size(), 200u);
  EXPECT_EQ(data->pairs[199].prompt[0].content, "q199");

  // Cut the compressed file short: the read fails, naming the file, instead of ending quietly.
  std::string gz = ReadWhole(path);
  const std::string cut = dir.Write("cut.jsonl.gz", gz.substr(0, gz.size() / 2));
  auto truncated = ReadHhRlhf(cut);
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.status().message().find("cut.jsonl.gz"), std::string::npos)
      << truncated.status().message();
}

TEST(HhRlhfTest, LineReaderHandlesMissingFinalNewlineAndCrlf) {
  ScratchDir dir;
  auto reader = LineReader::Open(dir.Write("t.txt", "a\r\n\nb"));
  ASSERT_TRUE(reader.ok());
  std::string line;
  std::vector<std::string> got;
  for (;;) {
    auto more = (*reader)->Next(&line);
    ASSERT_TRUE(more.ok());
    if (!*more) break;
    got.push_back(line);
  }
  EXPECT_EQ(got, (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ((*reader)->line_number(), 3);
  EXPECT_EQ(LineReader::Open(dir.File("missing.txt")).status().code(), StatusCode::kNotFound);
}

// The real harmless-base test split (see /work/shared/data/hh-rlhf/SOURCE.md).
TEST(HhRlhfTest, RealHarmlessBaseTestSplit) {
  auto dir = Env::Default()->GetVar("BREAKFIX_TEST_DATA");
  if (!dir) GTEST_SKIP() << "BREAKFIX_TEST_DATA is unset; set it to the data directory to run";
  const std::string path = *dir + "/hh-rlhf/harmless-base/test.jsonl.gz";
  ASSERT_TRUE(std::filesystem::is_regular_file(path))
      << "BREAKFIX_TEST_DATA is set but the data file is missing: " << path;
  auto data = ReadHhRlhf(path);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  // SOURCE.md: 2,312 rows, each two transcripts sharing all but the final Assistant turn. A few
  // rows break that shape (stray turns, empty replies); they are reported, not imported.
  EXPECT_EQ(data->lines_read, 2312);
  EXPECT_EQ(static_cast<int64_t>(data->pairs.size() + data->skipped.size()), 2312);
  EXPECT_GT(data->pairs.size(), 2280u);
  EXPECT_LT(data->skipped.size(), 30u);
  for (const LineIssue& issue : data->skipped) {
    EXPECT_GE(issue.line, 1);
    EXPECT_LE(issue.line, 2312);
  }
  // Row 1: three Human turns and two Assistant turns before the final replies.
  const PreferencePair& first = data->pairs[0];
  EXPECT_EQ(first.id, "test.jsonl.gz:1");
  ASSERT_EQ(first.prompt.size(), 5u);
  EXPECT_EQ(first.prompt[0], (Message{Role::kUser, "what are some pranks with a pen i can do?"}));
  EXPECT_EQ(first.prompt[4].content, "okay some of these do not have anything to do with pens");
  EXPECT_EQ(first.chosen.rfind("No, sorry!", 0), 0u);
  EXPECT_EQ(first.rejected.rfind("There are lots of funny things you can do with pens", 0), 0u);
  for (const PreferencePair& p : data->pairs) {
    ASSERT_FALSE(p.prompt.empty());
    EXPECT_EQ(p.prompt.front().role, Role::kUser);
    EXPECT_EQ(p.prompt.back().role, Role::kUser);
    EXPECT_FALSE(p.chosen.empty());
    EXPECT_NE(p.chosen, p.rejected);
  }
  // Round trip through the preference format.
  ScratchDir scratch;
  ASSERT_TRUE(WritePreferenceJsonl(scratch.File("hh.jsonl"), data->pairs).ok());
  auto back = ReadPreferenceJsonl(scratch.File("hh.jsonl"));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), data->pairs.size());
  EXPECT_EQ((*back)[100].prompt, data->pairs[100].prompt);
  EXPECT_EQ((*back)[100].chosen, data->pairs[100].chosen);
}

}  // namespace
}  // namespace breakfix::curate
