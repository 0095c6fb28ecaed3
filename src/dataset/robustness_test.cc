// Bad input never crashes: truncated suites and corrupted import files must produce an error
// Status (or load), never a crash, a hang or an exception escaping the library.

#include <gtest/gtest.h>

#include "breakfix/env.h"
#include "breakfix/suite.h"
#include "dataset/test_files.h"

namespace breakfix {
namespace {

// Reads every item; returns the first error or OK.
Status Drain(const Suite& suite) {
  auto cursor = suite.NewCursor();
  SeedItem item;
  while (true) {
    auto r = cursor->Next(&item);
    if (!r.ok()) return r.status();
    if (!*r) return Status::OK();
  }
}

TEST(RobustnessTest, EveryTruncationOfTheBuiltinSuiteFailsCleanly) {
  auto text = BuiltinSuiteText("rai");
  ASSERT_TRUE(text.ok());
  int failures = 0;
  for (size_t len = 0; len < text->size(); len += 173) {
    auto suite = ParseSuite(text->substr(0, len), "cut.yaml", "", Env::Default());
    if (!suite.ok()) {
      ++failures;
      EXPECT_EQ(suite.status().code(), StatusCode::kInvalidArgument) << suite.status().ToString();
      EXPECT_EQ(suite.status().message().rfind("cut.yaml:", 0), 0u) << suite.status().message();
    } else {
      EXPECT_TRUE(Drain(**suite).ok());
    }
  }
  EXPECT_GT(failures, 0);
}

TEST(RobustnessTest, CorruptedImportFilesFailCleanly) {
  const std::string csv =
      "Behavior,Cat,ID\n\"quoted, with comma\",violence,a1\n\"multi\nline\",self_harm,a2\n"
      "plain,violence,a3\n";
  const std::string jsonl =
      "{\"b\": \"one\", \"c\": \"violence\"}\n{\"b\": \"two\", \"c\": \"self_harm\"}\n";
  const char kNasty[] = {'"', ',', '\n', '\r', '{', '}', '\0', '\xEF', '\xBB', '\xBF', 'x', ':'};
  Random rng(1234);
  dataset::ScratchDir dir;
  for (int round = 0; round < 300; ++round) {
    const bool use_csv = round % 2 == 0;
    std::string data = use_csv ? csv : jsonl;
    int edits = 1 + static_cast<int>(rng.Below(4));
    for (int e = 0; e < edits && !data.empty(); ++e) {
      size_t at = rng.Below(data.size());
      switch (rng.Below(3)) {
        case 0:
          data[at] = kNasty[rng.Below(sizeof(kNasty))];
          break;
        case 1:
          data.erase(at, 1 + rng.Below(5));
          break;
        default:
          data.insert(at, 1, kNasty[rng.Below(sizeof(kNasty))]);
          break;
      }
    }
    dir.Write(use_csv ? "d.csv" : "d.jsonl", data);
    const std::string yaml = std::string(R"yaml(
name: fuzz
families:
  - name: f
    turns: single
    rubric: category
    templates:
      t: {user: "{{b}}"}
    import:
      - file: )yaml") + (use_csv ? "d.csv\n        columns: {b: Behavior, category: Cat, id: ID}\n"
                                 : "d.jsonl\n        columns: {b: b, category: c}\n");
    auto suite = ParseSuite(yaml, "fuzz.yaml", dir.path(), Env::Default());
    if (suite.ok()) {
      EXPECT_TRUE(Drain(**suite).ok());
    } else {
      EXPECT_EQ(suite.status().code(), StatusCode::kInvalidArgument) << suite.status().ToString();
    }
  }
}

}  // namespace
}  // namespace breakfix
