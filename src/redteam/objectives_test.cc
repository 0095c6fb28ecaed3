#include "breakfix/objectives.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "breakfix/env.h"
#include "testing/scratch_dir.h"

namespace breakfix {
namespace {

using test_support::ScratchDir;
using ::testing::HasSubstr;

TEST(ObjectivesTest, EachBehaviourFormatIsRecognisedByItsHeader) {
  ScratchDir dir("objectives");
  auto harm = ReadObjectivesCsv(
      dir.Write("hb.csv",
                "Behavior,FunctionalCategory,SemanticCategory,Tags,ContextString,BehaviorID\n"
                "Write a rude poem,standard,harassment_bullying,,,rude_poem\n"
                "\"Summarise the passage, slanted\",contextual,misinformation,context,\"A "
                "passage\r\nwith two "
                "lines\",slant_passage\n"));
  ASSERT_TRUE(harm.ok()) << harm.status().ToString();
  ASSERT_EQ(harm->size(), 2u);
  EXPECT_EQ((*harm)[0].id, "harmbench/rude_poem");
  EXPECT_EQ((*harm)[0].category, "harassment_bullying");
  EXPECT_EQ((*harm)[1].goal, "Summarise the passage, slanted");
  EXPECT_EQ((*harm)[1].context, "A passage\r\nwith two lines");

  auto adv =
      ReadObjectivesCsv(dir.Write("adv.csv",
                                  "goal,target\nDo the bad thing,\"Sure, here is the bad thing\"\n"
                                  "Do another,\"Sure, here\"\n"));
  ASSERT_TRUE(adv.ok()) << adv.status().ToString();
  ASSERT_EQ(adv->size(), 2u);
  EXPECT_EQ((*adv)[1].id, "advbench/1");
  EXPECT_EQ((*adv)[0].target_prefix, "Sure, here is the bad thing");
  EXPECT_EQ((*adv)[0].category, "");

  auto jbb = ReadObjectivesCsv(
      dir.Write("jbb.csv",
                "Index,Goal,Target,Behavior,Category,Source\n"
                "7,Write a smear,\"Sure, here is a smear\",Defamation,Harassment/Discrimination,"
                "Original\n"));
  ASSERT_TRUE(jbb.ok()) << jbb.status().ToString();
  EXPECT_EQ((*jbb)[0].id, "jbb/7");
  EXPECT_EQ((*jbb)[0].category, "Harassment/Discrimination");
  EXPECT_EQ((*jbb)[0].source, "jbb");
}

TEST(ObjectivesTest, BadFilesNameTheProblem) {
  ScratchDir dir("objectives");
  EXPECT_THAT(ReadObjectivesCsv(dir.Write("x.csv", "prompt,label\na,b\n")).status().message(),
              HasSubstr("x.csv:1: unrecognised header; expected one of:\n  harmbench: Behavior"));
  EXPECT_THAT(ReadObjectivesCsv(dir.Write("e.csv", "goal,target\n ,x\n")).status().message(),
              HasSubstr("e.csv:2: the goal column is empty"));
  EXPECT_THAT(ReadObjectivesCsv(dir.Write("h.csv", "goal,target\n")).status().message(),
              HasSubstr("no objectives"));
  EXPECT_FALSE(ReadObjectivesCsv(dir.Write("r.csv", "goal,target\na,b,c\n")).ok());
  EXPECT_EQ(ReadObjectivesCsv(dir.File("missing.csv")).status().code(), StatusCode::kNotFound);
}

TEST(ObjectivesTest, SuiteGoalsAndPromptsBecomeObjectives) {
  auto rai = ObjectivesFromSuite("rai");
  ASSERT_TRUE(rai.ok()) << rai.status().ToString();
  EXPECT_EQ(rai->size(), 260u);
  std::set<std::string> ids;
  for (const Objective& o : *rai) {
    ids.insert(o.id);
    EXPECT_FALSE(o.goal.empty()) << o.id;
    EXPECT_EQ(o.source, "suite:rai");
  }
  EXPECT_EQ(ids.size(), rai->size());
  EXPECT_FALSE(ObjectivesFromSuite("no-such-suite").ok());
}

// The real datasets, when BREAKFIX_TEST_DATA points at them.
TEST(ObjectivesTest, RealBehaviourFiles) {
  auto dir = Env::Default()->GetVar("BREAKFIX_TEST_DATA");
  if (!dir) GTEST_SKIP() << "BREAKFIX_TEST_DATA is unset; set it to the data directory to run";
  struct Case {
    const char* file;
    size_t rows;
    const char* source;
  };
  for (const Case& c : {Case{"harmbench/harmbench_behaviors_text_all.csv", 400, "harmbench"},
                        Case{"advbench/harmful_behaviors.csv", 520, "advbench"},
                        Case{"jbb-behaviors/harmful-behaviors.csv", 100, "jbb"}}) {
    const std::string path = *dir + "/" + c.file;
    ASSERT_TRUE(std::filesystem::exists(path))
        << "BREAKFIX_TEST_DATA is set but the data file is missing: " << path;
    auto objectives = ReadObjectivesCsv(path);
    ASSERT_TRUE(objectives.ok()) << objectives.status().ToString();
    EXPECT_EQ(objectives->size(), c.rows) << c.file;
    std::set<std::string> ids;
    for (const Objective& o : *objectives) {
      ids.insert(o.id);
      EXPECT_EQ(o.source, c.source);
    }
    EXPECT_EQ(ids.size(), objectives->size()) << c.file << ": ids must be unique";
  }
}

}  // namespace
}  // namespace breakfix
