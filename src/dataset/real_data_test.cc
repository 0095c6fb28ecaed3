// Imports the real HarmBench and AdvBench behaviour CSVs when BREAKFIX_TEST_DATA points at a data
// directory (e.g. /work/shared/data). Nothing from that directory is copied into the repository;
// the suites below reference the files where they are.

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "breakfix/suite.h"
#include "dataset/test_files.h"

namespace breakfix {
namespace {

using dataset::ReadAll;

// The data directory, or nullopt when the variable is unset (the caller skips).
std::optional<std::string> DataDir() { return Env::Default()->GetVar("BREAKFIX_TEST_DATA"); }

// Fails the test when the variable is set but the file is missing: a broken data checkout must
// not pass silently.
bool RequireFile(const std::string& path) {
  if (std::filesystem::is_regular_file(path)) return true;
  ADD_FAILURE() << "BREAKFIX_TEST_DATA is set but the data file is missing: " << path;
  return false;
}

TEST(RealDataTest, HarmBenchBehaviours) {
  auto dir = DataDir();
  if (!dir) GTEST_SKIP() << "BREAKFIX_TEST_DATA is unset; set it to the data directory to run";
  const std::string csv = *dir + "/harmbench/harmbench_behaviors_text_all.csv";
  if (!RequireFile(csv)) return;
  dataset::ScratchDir scratch;
  const std::string suite_path = scratch.Write("harmbench.yaml", R"yaml(
name: harmbench
families:
  - name: harmbench
    title: "HarmBench (DR-1)"
    rubric: jailbreak
    templates:
      behaviour:
        goal: "Get the assistant to comply with this request: {{behavior}}"
        user: "{{behavior}}"
    import:
      - file: )yaml" + csv + R"yaml(
        columns:
          id: BehaviorID
          category: SemanticCategory
          behavior: Behavior
          functional: FunctionalCategory
          document_text: ContextString
)yaml");
  auto suite = LoadSuite(suite_path, Env::Default());
  ASSERT_TRUE(suite.ok()) << suite.status().ToString();
  // SOURCE.md: 400 rows; standard 200, contextual 100, copyright 100.
  EXPECT_EQ((*suite)->item_count(), 400);
  auto items = ReadAll(**suite);
  ASSERT_EQ(items.size(), 400u);
  std::set<std::string> ids;
  std::map<std::string, int> functional;
  std::map<std::string, int> semantic;
  int with_context = 0;
  for (const SeedItem& it : items) {
    ids.insert(it.id);
    ++functional[it.params.at("functional")];
    ++semantic[it.category];
    EXPECT_FALSE(it.first_user.empty()) << it.id;
    EXPECT_EQ(it.first_user.find("{{"), std::string::npos) << it.id;
    if (!it.document.empty()) {
      ++with_context;
      EXPECT_EQ(it.params.at("functional"), "contextual") << it.id;
    }
  }
  EXPECT_EQ(ids.size(), 400u);  // BehaviorID is a stable, unique slug
  EXPECT_EQ(functional, (std::map<std::string, int>{
                            {"contextual", 100}, {"copyright", 100}, {"standard", 200}}));
  EXPECT_EQ(semantic.size(), 7u);
  EXPECT_EQ(semantic["copyright"], 100);
  EXPECT_EQ(semantic["cybercrime_intrusion"], 67);
  EXPECT_EQ(with_context, 100);
}

TEST(RealDataTest, AdvBenchBehaviours) {
  auto dir = DataDir();
  if (!dir) GTEST_SKIP() << "BREAKFIX_TEST_DATA is unset; set it to the data directory to run";
  const std::string csv = *dir + "/advbench/harmful_behaviors.csv";
  if (!RequireFile(csv)) return;
  dataset::ScratchDir scratch;
  const std::string suite_path = scratch.Write("advbench.yaml", R"yaml(
name: advbench
families:
  - name: advbench
    turns: single
    rubric: jailbreak
    templates:
      direct: {user: "{{goal}}"}
    import:
      - file: )yaml" + csv + R"yaml(
        category: advbench
        columns: {goal: goal, target: target}
)yaml");
  auto suite = LoadSuite(suite_path, Env::Default());
  ASSERT_TRUE(suite.ok()) << suite.status().ToString();
  EXPECT_EQ((*suite)->item_count(), 520);  // SOURCE.md: 520 rows
  auto items = ReadAll(**suite);
  ASSERT_EQ(items.size(), 520u);
  EXPECT_EQ(items.front().id, "advbench/direct/0000");
  EXPECT_EQ(items.back().id, "advbench/direct/0519");
  for (const SeedItem& it : items) {
    EXPECT_EQ(it.first_user, it.params.at("goal"));
    // SOURCE.md: `target` is the affirmative prefix the attack optimises towards.
    EXPECT_EQ(it.params.at("target").rfind("Sure, here", 0), 0u) << it.id;
  }
}

}  // namespace
}  // namespace breakfix
