#include "dataset/jsonl_reader.h"

#include <gtest/gtest.h>

namespace breakfix::dataset {
namespace {

using Values = std::vector<std::optional<std::string>>;

struct Parsed {
  std::vector<Values> rows;
  std::vector<int64_t> lines;
  Status status;
};

Parsed ParseAll(const std::string& text, const std::vector<std::string>& keys) {
  auto in = ByteStream::FromString(text, "t.jsonl");
  JsonlReader reader(in.get());
  Parsed p;
  Values values;
  while (true) {
    auto r = reader.Next(keys, &values);
    if (!r.ok()) {
      p.status = r.status();
      return p;
    }
    if (!*r) return p;
    p.rows.push_back(values);
    p.lines.push_back(reader.line());
  }
}

TEST(JsonlReaderTest, ExtractsKeysAndDottedPaths) {
  Parsed p = ParseAll(
      "{\"prompt\": \"hi\", \"meta\": {\"src\": {\"title\": \"T\"}}, \"n\": 3, \"tags\": [\"a\", "
      "\"b\"], \"a.b\": \"literal\", \"z\": null}\n",
      {"prompt", "meta.src.title", "n", "tags", "tags.1", "a.b", "z", "missing", "meta.nope"});
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  ASSERT_EQ(p.rows.size(), 1u);
  const Values& v = p.rows[0];
  EXPECT_EQ(v[0], "hi");
  EXPECT_EQ(v[1], "T");
  EXPECT_EQ(v[2], "3");
  EXPECT_EQ(v[3], "[\"a\",\"b\"]");
  EXPECT_EQ(v[4], "b");
  EXPECT_EQ(v[5], "literal");  // a literal key with a dot wins over the path
  EXPECT_EQ(v[6], "");
  EXPECT_EQ(v[7], std::nullopt);
  EXPECT_EQ(v[8], std::nullopt);
}

TEST(JsonlReaderTest, SkipsBlankLinesAndHandlesCrlfAndBom) {
  Parsed p = ParseAll("\xEF\xBB\xBF{\"k\":\"1\"}\r\n\r\n   \n{\"k\":\"2\"}\r\n", {"k"});
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  ASSERT_EQ(p.rows.size(), 2u);
  EXPECT_EQ(p.rows[1][0], "2");
  EXPECT_EQ(p.lines, (std::vector<int64_t>{1, 4}));
}

// The column is that of the character at which the parser gave up (here the '}' that ends the
// bad literal "tru").
TEST(JsonlReaderTest, SyntaxErrorNamesLineAndColumn) {
  Parsed p = ParseAll("{\"k\": 1}\n{\"k\": tru}\n", {"k"});
  ASSERT_FALSE(p.status.ok());
  EXPECT_EQ(p.status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status.message(),
            "t.jsonl:2:10: invalid JSON: syntax error while parsing value - invalid literal; last "
            "read: '\"k\": tru}'; expected one complete JSON object per line");
}

TEST(JsonlReaderTest, TruncatedObject) {
  Parsed p = ParseAll("{\"k\": \"v\"\n", {"k"});
  ASSERT_FALSE(p.status.ok());
  EXPECT_EQ(p.status.message(),
            "t.jsonl:1:10: invalid JSON: syntax error while parsing object - unexpected end of "
            "input; expected '}'; expected one complete JSON object per line");
}

TEST(JsonlReaderTest, ColumnCountsCharacters) {
  // The parser stops at the 'x': byte 14, but character 12 (each "é" is two bytes).
  Parsed p = ParseAll("{\"k\": \"\xC3\xA9\xC3\xA9\" x}\n", {"k"});
  ASSERT_FALSE(p.status.ok());
  EXPECT_EQ(p.status.message().substr(0, 13), "t.jsonl:1:12:");
}

TEST(JsonlReaderTest, NonObjectLine) {
  Parsed p = ParseAll("  [1, 2]\n", {"k"});
  ASSERT_FALSE(p.status.ok());
  EXPECT_EQ(p.status.message(),
            "t.jsonl:1:3: a JSON array; expected a JSON object ({...}) on each line");
}

}  // namespace
}  // namespace breakfix::dataset
