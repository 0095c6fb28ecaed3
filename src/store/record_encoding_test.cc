#include "store/record_encoding.h"

#include <gtest/gtest.h>

#include <string>

namespace breakfix {
namespace store {
namespace {

TEST(RecordEncodingTest, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8(std::string("nul\0ok", 6)));
  EXPECT_TRUE(IsValidUtf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));                      // U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\x80"));                                 // lone continuation
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong, three bytes
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // UTF-16 surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("ok \xc3("));          // bad continuation
}

TEST(RecordEncodingTest, TurnScoresRoundTripAnyBytes) {
  std::vector<TurnScore> turns = {
      {1, 0, "refused politely"},
      {2, 7, std::string("nul \0 and \"quotes\" and \\", 24)},
      {3, 4, "bad \xff\xfe bytes"},
      {4, 1, ""},
  };
  std::string json = EncodeTurnScores(turns);
  EXPECT_NE(json.find("\"refused politely\""), std::string::npos)
      << json;  // readable when it can be
  EXPECT_NE(json.find("\"hex\""), std::string::npos) << json;
  Result<std::vector<TurnScore>> back = DecodeTurnScores(json, "annotation x");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), turns.size());
  for (size_t i = 0; i < turns.size(); ++i) {
    EXPECT_EQ((*back)[i].turn, turns[i].turn);
    EXPECT_EQ((*back)[i].score, turns[i].score);
    EXPECT_EQ((*back)[i].reason, turns[i].reason);
  }
  EXPECT_EQ(EncodeTurnScores({}), "[]");
  Result<std::vector<TurnScore>> empty = DecodeTurnScores("[]", "x");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(RecordEncodingTest, MalformedTurnScoresAreCorruptionNamingTheRow) {
  for (const char* bad : {"", "{", "{}", "[1]", R"([{"turn":1,"score":2}])",
                          R"([{"turn":"1","score":2,"reason":"r"}])",
                          R"([{"turn":1,"score":2,"reason":{"hex":"abc"}}])",
                          R"([{"turn":1,"score":2,"reason":{"hex":"zz"}}])",
                          R"([{"turn":1,"score":2,"reason":7}])"}) {
    Result<std::vector<TurnScore>> r = DecodeTurnScores(bad, "annotation k9");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << bad;
    EXPECT_NE(r.status().message().find("annotation k9"), std::string::npos)
        << r.status().message();
  }
}

TEST(RecordEncodingTest, StringListsRoundTripAnyBytes) {
  std::vector<std::string> items = {"phi3-mini", "", std::string("a\0b", 3), "\xc3\x28"};
  Result<std::vector<std::string>> back = DecodeStringList(EncodeStringList(items), "run 1");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, items);
  EXPECT_EQ(EncodeStringList({"a", "b"}), R"(["a","b"])");
  EXPECT_EQ(DecodeStringList("[\"a\", 3]", "run 1").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeStringList("{}", "run 1").status().code(), StatusCode::kCorruption);
}

TEST(RecordEncodingTest, EnumNamesRoundTrip) {
  for (Scale s : {Scale::kSeverity, Scale::kUngroundedness, Scale::kBinary}) {
    Result<Scale> back = ParseScaleText(ScaleName(s));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, s);
  }
  for (Outcome o : {Outcome::kScored, Outcome::kUnscorable}) {
    Result<Outcome> back = ParseOutcomeText(OutcomeName(o));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, o);
  }
  for (RunStatus s :
       {RunStatus::kRunning, RunStatus::kComplete, RunStatus::kFailed, RunStatus::kInterrupted}) {
    Result<RunStatus> back = ParseRunStatus(RunStatusName(s));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, s);
  }
  for (ConversationStatus s :
       {ConversationStatus::kRunning, ConversationStatus::kDone, ConversationStatus::kFailed}) {
    Result<ConversationStatus> back = ParseConversationStatus(ConversationStatusName(s));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, s);
  }
  EXPECT_STREQ(ScaleName(Scale::kUngroundedness), "ungroundedness");
  EXPECT_STREQ(OutcomeName(Outcome::kUnscorable), "unscorable");
  EXPECT_STREQ(RunStatusName(RunStatus::kInterrupted), "interrupted");
  EXPECT_STREQ(ConversationStatusName(ConversationStatus::kDone), "done");
  Result<Scale> bad = ParseScaleText("Severity");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kCorruption);
  EXPECT_NE(bad.status().message().find("severity, ungroundedness, binary"), std::string::npos);
  EXPECT_FALSE(ParseOutcomeText("pass").ok());
  EXPECT_FALSE(ParseRunStatus("").ok());
  EXPECT_FALSE(ParseConversationStatus("finished").ok());
}

}  // namespace
}  // namespace store
}  // namespace breakfix
