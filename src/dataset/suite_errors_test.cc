// Golden error messages. Each testdata/errors/*.yaml is one malformed suite (some import a
// malformed CSV or JSONL file beside it); its first line reads "# expect: <message>", where
// {dir} stands for the testdata directory. Adding a case needs no C++.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "breakfix/suite.h"

namespace breakfix {
namespace {

const std::string kErrorsDir = std::string(BREAKFIX_SOURCE_DIR) + "/src/dataset/testdata/errors";

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Expand(std::string text) {
  for (size_t at; (at = text.find("{dir}")) != std::string::npos;) text.replace(at, 5, kErrorsDir);
  return text;
}

TEST(SuiteErrorsTest, GoldenMessages) {
  std::vector<std::string> cases;
  for (const auto& entry : std::filesystem::directory_iterator(kErrorsDir)) {
    if (entry.path().extension() == ".yaml") cases.push_back(entry.path().filename().string());
  }
  std::sort(cases.begin(), cases.end());
  ASSERT_GE(cases.size(), 30u) << "golden cases missing from " << kErrorsDir;
  for (const std::string& name : cases) {
    SCOPED_TRACE(name);
    const std::string text = ReadText(kErrorsDir + "/" + name);
    const std::string prefix = "# expect: ";
    ASSERT_EQ(text.rfind(prefix, 0), 0u) << "first line must be \"# expect: <message>\"";
    const std::string expected =
        Expand(text.substr(prefix.size(), text.find('\n') - prefix.size()));
    auto suite = ParseSuite(text, name, kErrorsDir, Env::Default());
    ASSERT_FALSE(suite.ok()) << "loaded without error";
    EXPECT_EQ(suite.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(suite.status().message(), expected);
  }
}

}  // namespace
}  // namespace breakfix
