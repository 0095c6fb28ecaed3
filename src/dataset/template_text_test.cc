#include "dataset/template_text.h"

#include <gtest/gtest.h>

namespace breakfix::dataset {
namespace {

const Location kWhere{"s.yaml", 4, 9};

TEST(TemplateTextTest, RendersPlaceholders) {
  auto t = TemplateText::Parse("Hi {{name}}, about {{ topic }}: {{name}}!", kWhere);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->placeholders(), (std::vector<std::string>{"name", "topic"}));
  EXPECT_EQ(t->Render({{"name", "Ann"}, {"topic", "tea"}}), "Hi Ann, about tea: Ann!");
}

TEST(TemplateTextTest, ValuesAreNotExpandedAgain) {
  auto t = TemplateText::Parse("{{a}}", kWhere);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->Render({{"a", "{{b}}"}, {"b", "no"}}), "{{b}}");
}

TEST(TemplateTextTest, SingleBracesAndClosingBracesAreLiteral) {
  auto t = TemplateText::Parse("{a} }} {", kWhere);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->placeholders().empty());
  EXPECT_EQ(t->Render({}), "{a} }} {");
}

TEST(TemplateTextTest, EmptyText) {
  auto t = TemplateText::Parse("", kWhere);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->empty());
  EXPECT_EQ(t->Render({}), "");
}

TEST(TemplateTextTest, MalformedPlaceholdersAreErrors) {
  for (const char* bad : {"{{", "x {{name", "{{na me}}", "{{}}", "{{name}"}) {
    auto t = TemplateText::Parse(bad, kWhere);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(t.status().message().rfind("s.yaml:4:9: malformed placeholder", 0), 0u)
        << t.status().message();
  }
}

}  // namespace
}  // namespace breakfix::dataset
