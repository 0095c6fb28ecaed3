// Preference and SFT JSONL: round trips, the plain-string form, gzip input, and errors that name
// file:line and the field.
#include <gtest/gtest.h>
#include <zlib.h>

#include <nlohmann/json.hpp>

#include "breakfix/curate.h"
#include "curate/curate_test_support.h"

namespace breakfix::curate {
namespace {

using nlohmann::json;

std::vector<PreferencePair> SamplePairs() {
  PreferencePair a;
  a.id = "p1";
  a.prompt = {{Role::kSystem, "You are terse."},
              {Role::kUser, "How do I pick a lock?"},
              {Role::kAssistant, "Which lock?"},
              {Role::kUser, "My neighbour's \"front\" door\nat night"}};
  a.chosen =
      "I can't help with entering someone else's home. If you're locked out of your own, "
      "a licensed locksmith can help.";
  a.rejected = "Sure: insert a tension wrench...";
  a.kind = kPairKindSafety;
  a.provenance_json = R"({"run":"r1","turn":2,"original_score":6})";
  PreferencePair b;
  b.id = "p2";
  b.prompt = {{Role::kUser, "How do I kill a Python process? \xE2\x9C\x93"}};
  b.chosen = "Use `kill PID`, or `pkill -f name`.";
  b.rejected = "I'm sorry, I can't help with killing.";
  b.kind = kPairKindOverRefusal;
  b.provenance_json = "{}";
  return {a, b};
}

void ExpectSamePair(const PreferencePair& got, const PreferencePair& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.prompt, want.prompt);
  EXPECT_EQ(got.chosen, want.chosen);
  EXPECT_EQ(got.rejected, want.rejected);
  EXPECT_EQ(got.kind, want.kind);
  EXPECT_EQ(json::parse(got.provenance_json), json::parse(want.provenance_json));
}

TEST(PreferenceIoTest, PreferenceJsonlRoundTrip) {
  ScratchDir dir;
  const auto pairs = SamplePairs();
  ASSERT_TRUE(WritePreferenceJsonl(dir.File("pairs.jsonl"), pairs).ok());
  auto read = ReadPreferenceJsonl(dir.File("pairs.jsonl"));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->size(), 2u);
  ExpectSamePair((*read)[0], pairs[0]);
  ExpectSamePair((*read)[1], pairs[1]);
  // The TRL conversational layout, line by line.
  std::istringstream lines(ReadWhole(dir.File("pairs.jsonl")));
  std::string line;
  ASSERT_TRUE(std::getline(lines, line));
  json j = json::parse(line);
  EXPECT_EQ(j["prompt"][0], json({{"role", "system"}, {"content", "You are terse."}}));
  EXPECT_EQ(j["chosen"], json::array({{{"role", "assistant"}, {"content", pairs[0].chosen}}}));
  EXPECT_EQ(j["rejected"][0]["role"], "assistant");
  EXPECT_EQ(j["kind"], "safety");
  EXPECT_EQ(j["provenance"]["original_score"], 6);
  // Writing is atomic: no temporary file is left behind.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.File("")))
    files += !e.is_directory();
  EXPECT_EQ(files, 1);
}

TEST(PreferenceIoTest, ReadsPlainStringFormAndMixedForms) {
  ScratchDir dir;
  const std::string path = dir.Write(
      "plain.jsonl",
      "\xEF\xBB\xBF{\"prompt\": \"What is 2+2?\", \"chosen\": \"4\", \"rejected\": \"5\", "
      "\"score_chosen\": 9}\r\n"
      "\n"
      "{\"prompt\": [{\"role\": \"user\", \"content\": \"hi\"}], \"chosen\": \"hello\", "
      "\"rejected\": [{\"role\": \"assistant\", \"content\": \"go away\"}], \"kind\": \"x\", "
      "\"id\": \"given\"}\n");
  auto read = ReadPreferenceJsonl(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->size(), 2u);
  const PreferencePair& a = (*read)[0];
  EXPECT_EQ(a.prompt, (std::vector<Message>{{Role::kUser, "What is 2+2?"}}));
  EXPECT_EQ(a.chosen, "4");
  EXPECT_EQ(a.rejected, "5");
  EXPECT_EQ(a.kind, kPairKindImported);
  EXPECT_EQ(a.id.size(), 16u);  // a content hash when the file gives none
  EXPECT_EQ(a.provenance_json, "{}");
  EXPECT_EQ((*read)[1].id, "given");
  EXPECT_EQ((*read)[1].kind, "x");
  EXPECT_EQ((*read)[1].rejected, "go away");
  // The same content gets the same id, wherever it is read from.
  const std::string again = dir.Write(
      "again.jsonl", "{\"prompt\": \"What is 2+2?\", \"chosen\": \"4\", \"rejected\": \"5\"}\n");
  auto read_again = ReadPreferenceJsonl(again);
  ASSERT_TRUE(read_again.ok());
  EXPECT_EQ((*read_again)[0].id, a.id);
}

TEST(PreferenceIoTest, ReadsGzippedPairs) {
  ScratchDir dir;
  const std::string path = dir.File("pairs.jsonl.gz");
  gzFile gz = gzopen(path.c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  const std::string text = "{\"prompt\": \"q\", \"chosen\": \"good\", \"rejected\": \"bad\"}\n";
  gzwrite(gz, text.data(), static_cast<unsigned>(text.size()));
  gzclose(gz);
  auto read = ReadPreferenceJsonl(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ((*read)[0].chosen, "good");
}

// Reads a one-line file placed after a valid line and returns the error message.
std::string ErrorFor(const std::string& second_line) {
  ScratchDir dir;
  const std::string path =
      dir.Write("bad.jsonl", "{\"prompt\": \"q\", \"chosen\": \"a\", \"rejected\": \"b\"}\n" +
                                 second_line + "\n");
  auto read = ReadPreferenceJsonl(path);
  EXPECT_FALSE(read.ok());
  if (read.ok()) return "";
  EXPECT_EQ(read.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(read.status().message().find(path + ":2"), std::string::npos)
      << read.status().message();
  return read.status().message();
}

TEST(PreferenceIoTest, MalformedLinesNameLineAndField) {
  EXPECT_NE(ErrorFor("{\"prompt\": \"q\", \"chosen\": ").find("not valid JSON"), std::string::npos);
  EXPECT_NE(ErrorFor("[1, 2]").find("expected a JSON object, found a list"), std::string::npos);
  EXPECT_NE(ErrorFor("{\"chosen\": \"a\", \"rejected\": \"b\"}").find("\"prompt\": missing"),
            std::string::npos);
  EXPECT_NE(ErrorFor("{\"prompt\": \"q\", \"chosen\": 3, \"rejected\": \"b\"}")
                .find("field \"chosen\": expected a string or a list"),
            std::string::npos);
  EXPECT_NE(ErrorFor("{\"prompt\": [{\"role\": \"robot\", \"content\": \"x\"}], \"chosen\": \"a\", "
                     "\"rejected\": \"b\"}")
                .find("field \"prompt[0].role\""),
            std::string::npos);
  EXPECT_NE(ErrorFor("{\"prompt\": [{\"role\": \"user\"}], \"chosen\": \"a\", \"rejected\": \"b\"}")
                .find("missing \"content\""),
            std::string::npos);
  EXPECT_NE(ErrorFor("{\"prompt\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": "
                     "\"assistant\", \"content\": \"y\"}], \"chosen\": \"a\", \"rejected\": \"b\"}")
                .find("must end with a user message"),
            std::string::npos);
  EXPECT_NE(ErrorFor("{\"prompt\": \"q\", \"chosen\": [{\"role\": \"user\", \"content\": \"a\"}], "
                     "\"rejected\": \"b\"}")
                .find("expected exactly one assistant message"),
            std::string::npos);
  EXPECT_NE(ErrorFor("{\"prompt\": \"q\", \"chosen\": \"a\", \"rejected\": \"  \"}")
                .find("field \"rejected\": the reply is empty"),
            std::string::npos);
  EXPECT_NE(ErrorFor("{\"prompt\": \"q\", \"chosen\": \"a\", \"rejected\": \"b\", \"provenance\": "
                     "\"run 3\"}")
                .find("field \"provenance\": expected an object"),
            std::string::npos);
}

TEST(PreferenceIoTest, MissingFileIsNotFound) {
  auto read = ReadPreferenceJsonl("/nonexistent/dir/pairs.jsonl");
  EXPECT_EQ(read.status().code(), StatusCode::kNotFound);
  EXPECT_NE(read.status().message().find("/nonexistent/dir/pairs.jsonl"), std::string::npos);
}

TEST(PreferenceIoTest, InvalidProvenanceIsRefusedOnWrite) {
  ScratchDir dir;
  auto pairs = SamplePairs();
  pairs[1].provenance_json = "not json";
  Status s = WritePreferenceJsonl(dir.File("out.jsonl"), pairs);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("pair p2"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.File("out.jsonl")));
}

TEST(PreferenceIoTest, InvalidUtf8IsReplacedNotFatal) {
  ScratchDir dir;
  auto pairs = SamplePairs();
  pairs[0].chosen = "broken \xC3 byte";
  ASSERT_TRUE(WritePreferenceJsonl(dir.File("out.jsonl"), pairs).ok());
  auto read = ReadPreferenceJsonl(dir.File("out.jsonl"));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ((*read)[0].chosen, "broken \xEF\xBF\xBD byte");
}

TEST(PreferenceIoTest, SftRoundTripFromPairs) {
  ScratchDir dir;
  std::vector<ChatExample> examples;
  for (const PreferencePair& p : SamplePairs()) examples.push_back(SftExampleFromPair(p));
  ASSERT_EQ(examples[0].messages.size(), 5u);
  EXPECT_EQ(examples[0].messages.back(), (Message{Role::kAssistant, SamplePairs()[0].chosen}));
  ASSERT_TRUE(WriteSftJsonl(dir.File("sft.jsonl"), examples).ok());
  auto read = ReadSftJsonl(dir.File("sft.jsonl"));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].id, "p1");
  EXPECT_EQ((*read)[0].messages, examples[0].messages);
  EXPECT_EQ((*read)[1].messages, examples[1].messages);
  json j = json::parse(
      ReadWhole(dir.File("sft.jsonl")).substr(0, ReadWhole(dir.File("sft.jsonl")).find('\n')));
  EXPECT_EQ(j["messages"].size(), 5u);
  EXPECT_EQ(j["messages"][4]["role"], "assistant");
}

TEST(PreferenceIoTest, SftErrorsNameLineAndField) {
  ScratchDir dir;
  const std::string ok =
      "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": "
      "\"assistant\", \"content\": \"a\"}]}\n";
  auto no_assistant = ReadSftJsonl(
      dir.Write("a.jsonl", ok + "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}]}\n"));
  ASSERT_FALSE(no_assistant.ok());
  EXPECT_NE(no_assistant.status().message().find("a.jsonl:2: field \"messages\": no assistant"),
            std::string::npos)
      << no_assistant.status().message();
  auto missing = ReadSftJsonl(dir.Write("b.jsonl", ok + ok + "{\"id\": \"x\"}\n"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("b.jsonl:3: field \"messages\": missing"),
            std::string::npos)
      << missing.status().message();
  auto bad_content = ReadSftJsonl(dir.Write(
      "c.jsonl", "{\"messages\": [{\"role\": \"assistant\", \"content\": [\"parts\"]}]}\n"));
  ASSERT_FALSE(bad_content.ok());
  EXPECT_NE(bad_content.status().message().find("c.jsonl:1: field \"messages[0].content\""),
            std::string::npos)
      << bad_content.status().message();
}

}  // namespace
}  // namespace breakfix::curate
