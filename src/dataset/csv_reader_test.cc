#include "dataset/csv_reader.h"

#include <gtest/gtest.h>

namespace breakfix::dataset {
namespace {

struct Parsed {
  std::vector<std::string> header;
  std::vector<std::vector<CsvField>> rows;
  Status status;
};

Parsed ParseAll(const std::string& text) {
  auto in = ByteStream::FromString(text, "t.csv");
  CsvReader reader(in.get());
  Parsed p;
  p.status = reader.ReadHeader();
  if (!p.status.ok()) return p;
  p.header = reader.header();
  std::vector<CsvField> fields;
  while (true) {
    auto r = reader.Next(&fields);
    if (!r.ok()) {
      p.status = r.status();
      return p;
    }
    if (!*r) break;
    p.rows.push_back(fields);
  }
  return p;
}

std::vector<std::string> Values(const std::vector<CsvField>& fields) {
  std::vector<std::string> out;
  for (const auto& f : fields) out.push_back(f.value);
  return out;
}

TEST(CsvReaderTest, ReadsHeaderAndRows) {
  Parsed p = ParseAll("a,b,c\n1,2,3\n4,,6\n");
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_EQ(p.header, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(p.rows.size(), 2u);
  EXPECT_EQ(Values(p.rows[0]), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(Values(p.rows[1]), (std::vector<std::string>{"4", "", "6"}));
  EXPECT_EQ(p.rows[1][2].line, 3);
  EXPECT_EQ(p.rows[1][2].column, 4);
}

TEST(CsvReaderTest, LastRowWithoutNewline) {
  Parsed p = ParseAll("a,b\nx,y");
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  ASSERT_EQ(p.rows.size(), 1u);
  EXPECT_EQ(Values(p.rows[0]), (std::vector<std::string>{"x", "y"}));
}

TEST(CsvReaderTest, QuotedFieldsWithCommasQuotesAndNewlines) {
  Parsed p = ParseAll("id,text\n1,\"hello, \"\"world\"\"\nsecond line\"\n2,plain\n");
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  ASSERT_EQ(p.rows.size(), 2u);
  EXPECT_EQ(p.rows[0][1].value, "hello, \"world\"\nsecond line");
  EXPECT_EQ(p.rows[1][0].value, "2");
  EXPECT_EQ(p.rows[1][0].line, 4);  // physical line, after the embedded newline
}

TEST(CsvReaderTest, CrlfLineEndsAndCrlfInsideQuotes) {
  Parsed p = ParseAll("a,b\r\n\"x\r\ny\",z\r\nq,\"\"\r\n");
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_EQ(p.header, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(p.rows.size(), 2u);
  EXPECT_EQ(p.rows[0][0].value, "x\r\ny");  // kept as written inside quotes
  EXPECT_EQ(p.rows[0][1].value, "z");
  EXPECT_EQ(p.rows[1][1].value, "");
  EXPECT_EQ(p.rows[1][0].line, 4);
}

TEST(CsvReaderTest, LoneCarriageReturnIsData) {
  Parsed p = ParseAll("a\nx\ry\n");
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  ASSERT_EQ(p.rows.size(), 1u);
  EXPECT_EQ(p.rows[0][0].value, "x\ry");
}

TEST(CsvReaderTest, StripsByteOrderMark) {
  Parsed p = ParseAll("\xEF\xBB\xBFname,v\nx,1\n");
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_EQ(p.header[0], "name");
  EXPECT_EQ(p.rows[0][1].column, 3);  // the BOM does not shift columns
}

TEST(CsvReaderTest, SkipsEmptyLinesButNotEmptyQuotedRecords) {
  Parsed p = ParseAll("a\n\nx\n\r\n\"\"\n\n");
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  ASSERT_EQ(p.rows.size(), 2u);
  EXPECT_EQ(p.rows[0][0].value, "x");
  EXPECT_EQ(p.rows[1][0].value, "");
  EXPECT_EQ(p.rows[1][0].line, 5);
}

TEST(CsvReaderTest, ColumnsCountCharactersNotBytes) {
  // "é" is two bytes, one character: the field after it starts at column 4.
  Parsed p = ParseAll("a,b\n\xC3\xA9x,y,z\n");
  ASSERT_FALSE(p.status.ok());
  EXPECT_EQ(p.status.message(),
            "t.csv:2:6: a row with 3 fields; expected 2 fields as in the header (a, b)");
}

TEST(CsvReaderTest, QuoteInsideUnquotedFieldIsLiteral) {
  Parsed p = ParseAll("a,b\n5\" screen,ok\n");
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_EQ(p.rows[0][0].value, "5\" screen");
}

TEST(CsvReaderTest, UnterminatedQuoteNamesWhereTheFieldStarts) {
  Parsed p = ParseAll("a,b\n1,2\n3,\"never\nclosed\n");
  ASSERT_FALSE(p.status.ok());
  EXPECT_EQ(p.status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status.message(),
            "t.csv:3:3: quoted field is never closed (reached the end of the file); expected a "
            "closing '\"'");
}

TEST(CsvReaderTest, TooFewFieldsPointsAtTheLineEnd) {
  Parsed p = ParseAll("a,b,c\n1,2\n");
  ASSERT_FALSE(p.status.ok());
  EXPECT_EQ(p.status.message(),
            "t.csv:2:4: a row with 2 fields; expected 3 fields as in the header (a, b, c)");
}

TEST(CsvReaderTest, TooManyFieldsPointsAtTheFirstExtraField) {
  Parsed p = ParseAll("a,b\n1,2\n3,4,five\n");
  ASSERT_FALSE(p.status.ok());
  EXPECT_EQ(p.status.message(),
            "t.csv:3:5: a row with 3 fields; expected 2 fields as in the header (a, b)");
}

TEST(CsvReaderTest, StrayCharacterAfterClosingQuote) {
  Parsed p = ParseAll("a,b\n\"ok\"x,2\n");
  ASSERT_FALSE(p.status.ok());
  EXPECT_EQ(p.status.message(),
            "t.csv:2:5: 'x' after the closing quote of the field that starts at 2:1; expected ',' "
            "or the end of the line (a quote inside a quoted field is written twice: \"\")");
}

TEST(CsvReaderTest, EmptyFileHasNoHeader) {
  Parsed p = ParseAll("");
  ASSERT_FALSE(p.status.ok());
  EXPECT_EQ(p.status.message(),
            "t.csv:1:1: the file is empty; expected a header row naming the columns");
  p = ParseAll("\n\n");
  EXPECT_FALSE(p.status.ok());
}

TEST(CsvReaderTest, HashCoversEveryByte) {
  const std::string text = "a,b\n1,2\n";
  auto in = ByteStream::FromString(text, "t.csv");
  CsvReader reader(in.get());
  ASSERT_TRUE(reader.ReadHeader().ok());
  in->Drain();
  EXPECT_EQ(in->HexDigest(), Sha256Hex(text));
}

}  // namespace
}  // namespace breakfix::dataset
