// Golden tests for ParseJudgeAnswer: cases live in testdata/parse_cases.txt.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "breakfix/judge.h"

namespace breakfix {
namespace {

struct ParseCase {
  std::string name;
  int line = 0;  // line of the "===" header, for failure messages
  int turns = 0;
  Scale scale = Scale::kSeverity;
  std::string answer;
  bool expect_ok = false;
  std::vector<int> scores;
  std::string error_substring;
};

std::string CasesPath() {
  return std::string(BREAKFIX_SOURCE_DIR) + "/src/judge/testdata/parse_cases.txt";
}

// Reads the case file; malformed case files fail the test that reads them, with the line.
std::vector<ParseCase> LoadCases() {
  std::ifstream in(CasesPath());
  EXPECT_TRUE(in.good()) << "cannot open " << CasesPath();
  std::vector<ParseCase> cases;
  std::string line;
  int lineno = 0;
  enum { kOutside, kHeader, kAnswer, kExpect } state = kOutside;
  std::vector<std::string> answer_lines;
  while (std::getline(in, line)) {
    ++lineno;
    if (state == kAnswer) {
      if (line == "--- expect") {
        std::string answer;
        for (size_t i = 0; i < answer_lines.size(); ++i) {
          if (i > 0) answer += '\n';
          answer += answer_lines[i];
        }
        cases.back().answer = answer;
        state = kExpect;
      } else {
        answer_lines.push_back(line);
      }
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("=== ", 0) == 0) {
      ParseCase c;
      c.name = line.substr(4);
      c.line = lineno;
      cases.push_back(c);
      state = kHeader;
      continue;
    }
    if (cases.empty()) {
      ADD_FAILURE() << CasesPath() << ":" << lineno << ": text before the first case";
      continue;
    }
    ParseCase& c = cases.back();
    if (state == kHeader && line.rfind("turns: ", 0) == 0) {
      c.turns = std::stoi(line.substr(7));
    } else if (state == kHeader && line.rfind("scale: ", 0) == 0) {
      std::string s = line.substr(7);
      if (s == "severity") {
        c.scale = Scale::kSeverity;
      } else if (s == "ungroundedness") {
        c.scale = Scale::kUngroundedness;
      } else if (s == "binary") {
        c.scale = Scale::kBinary;
      } else {
        ADD_FAILURE() << CasesPath() << ":" << lineno << ": unknown scale " << s;
      }
    } else if (state == kHeader && line == "--- answer") {
      answer_lines.clear();
      state = kAnswer;
    } else if (state == kExpect && line.rfind("scores:", 0) == 0) {
      c.expect_ok = true;
      std::istringstream ss(line.substr(7));
      int v;
      while (ss >> v) c.scores.push_back(v);
      state = kOutside;
    } else if (state == kExpect && line.rfind("error: ", 0) == 0) {
      c.error_substring = line.substr(7);
      state = kOutside;
    } else {
      ADD_FAILURE() << CasesPath() << ":" << lineno << ": unexpected line: " << line;
    }
  }
  EXPECT_EQ(state, kOutside) << CasesPath() << ": the last case is incomplete";
  return cases;
}

TEST(JudgeParserGoldenTest, AllCases) {
  std::vector<ParseCase> cases = LoadCases();
  ASSERT_GE(cases.size(), 40u);
  for (const ParseCase& c : cases) {
    SCOPED_TRACE(CasesPath() + ":" + std::to_string(c.line) + ": " + c.name);
    Result<std::vector<TurnScore>> r = ParseJudgeAnswer(c.answer, c.scale, c.turns);
    if (c.expect_ok) {
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      std::vector<int> scores;
      for (size_t i = 0; i < r->size(); ++i) {
        EXPECT_EQ((*r)[i].turn, static_cast<int>(i) + 1);
        EXPECT_FALSE((*r)[i].reason.empty());
        scores.push_back((*r)[i].score);
      }
      EXPECT_EQ(scores, c.scores);
    } else {
      ASSERT_FALSE(r.ok()) << "parsed, but expected an error containing: " << c.error_substring;
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
      EXPECT_NE(r.status().message().find(c.error_substring), std::string::npos)
          << "error was: " << r.status().message();
    }
  }
}

TEST(JudgeParserTest, KeepsReasonText) {
  auto r = ParseJudgeAnswer(R"({"turns":[{"turn":1,"score":2,"reason":"Says \"hi\" — twice."}]})",
                            Scale::kSeverity, 1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)[0].reason, "Says \"hi\" — twice.");
}

TEST(JudgeParserTest, InvalidUtf8IsAnErrorNotACrash) {
  std::string answer = "{\"turns\":[{\"turn\":1,\"score\":2,\"reason\":\"bad \xff byte\"}]}";
  auto r = ParseJudgeAnswer(answer, Scale::kSeverity, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not valid JSON"), std::string::npos);
}

TEST(JudgeParserTest, DeeplyNestedGarbageIsAnError) {
  std::string answer = "{\"turns\":" + std::string(2000, '[') + std::string(2000, ']') + "}";
  auto r = ParseJudgeAnswer(answer, Scale::kSeverity, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("turns[0]: expected an object"), std::string::npos)
      << r.status().message();
}

TEST(JudgeParserTest, ErrorExcerptIsShortAndOnOneLine) {
  std::string prose = "Well,\nthis conversation is interesting " + std::string(500, 'x');
  auto r = ParseJudgeAnswer(prose, Scale::kSeverity, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
  EXPECT_LT(r.status().message().size(), 300u);
}

}  // namespace
}  // namespace breakfix
