#include "dataset/encoding.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace breakfix::dataset {
namespace {

std::string Transcode(const std::string& bytes, TextEncoding from) {
  std::string out;
  AppendAsUtf8(bytes, from, &out);
  return out;
}

// Bytes 0x80..0xFF of `encoding`, transcoded one at a time.
std::string UpperHalf(TextEncoding encoding) {
  std::string out;
  for (int b = 0x80; b <= 0xFF; ++b) AppendUtf8(SingleByteCodePoint(encoding, b), &out);
  return out;
}

TEST(EncodingTest, ParsesNamesCaseInsensitively) {
  EXPECT_EQ(*ParseTextEncoding("utf-8"), TextEncoding::kUtf8);
  EXPECT_EQ(*ParseTextEncoding("UTF8"), TextEncoding::kUtf8);
  EXPECT_EQ(*ParseTextEncoding("Latin1"), TextEncoding::kLatin1);
  EXPECT_EQ(*ParseTextEncoding("ISO-8859-1"), TextEncoding::kLatin1);
  EXPECT_EQ(*ParseTextEncoding("cp1252"), TextEncoding::kCp1252);
  EXPECT_EQ(*ParseTextEncoding("Windows-1252"), TextEncoding::kCp1252);
  EXPECT_EQ(*ParseTextEncoding("MacRoman"), TextEncoding::kMacRoman);
  EXPECT_EQ(*ParseTextEncoding("macintosh"), TextEncoding::kMacRoman);
  for (const std::string& name : TextEncodingNames()) {
    auto parsed = ParseTextEncoding(name);
    ASSERT_TRUE(parsed.ok()) << name;
    EXPECT_EQ(TextEncodingName(*parsed), name);
  }
}

TEST(EncodingTest, UnknownNameListsTheAcceptedOnes) {
  auto parsed = ParseTextEncoding("ebcdic");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(parsed.status().message().find("'ebcdic'"), std::string::npos);
  EXPECT_NE(parsed.status().message().find("macroman"), std::string::npos);
  EXPECT_NE(parsed.status().message().find("cp1252"), std::string::npos);
}

TEST(EncodingTest, Latin1IsTheFirst256CodePoints) {
  for (int b = 0; b <= 0xFF; ++b) {
    EXPECT_EQ(SingleByteCodePoint(TextEncoding::kLatin1, b), static_cast<char32_t>(b)) << b;
  }
  EXPECT_EQ(Transcode("caf\xE9 na\xEFve \xA3"
                      "5",
                      TextEncoding::kLatin1),
            "café naïve £5");
}

TEST(EncodingTest, Cp1252HasPrintableCharactersWhereLatin1HasControls) {
  EXPECT_EQ(Transcode("\x80 \x96 \x97 \x93hi\x94 \x91x\x92 \x85 \x99 \x8A\x9A \x9F",
                      TextEncoding::kCp1252),
            "€ – — “hi” ‘x’ … ™ Šš Ÿ");
  // The undefined bytes keep their C1 control code points, so nothing is lost or replaced.
  for (int b : {0x81, 0x8D, 0x8F, 0x90, 0x9D}) {
    EXPECT_EQ(SingleByteCodePoint(TextEncoding::kCp1252, b), static_cast<char32_t>(b)) << b;
  }
  for (int b = 0xA0; b <= 0xFF; ++b) {
    EXPECT_EQ(SingleByteCodePoint(TextEncoding::kCp1252, b), static_cast<char32_t>(b)) << b;
  }
}

TEST(EncodingTest, MacRomanUpperHalfMatchesApplesTable) {
  // Apple's ROMAN.TXT, bytes 0x80..0xFF in order, written out as text (0xCA is a no-break space
  // and 0xF0 the Apple logo in the private use area).
  const std::string expected =
      "ÄÅÇÉÑÖÜáàâäãåçéè"        // 0x80
      "êëíìîïñóòôöõúùûü"        // 0x90
      "†°¢£§•¶ß®©™´¨≠ÆØ"        // 0xA0
      "∞±≤≥¥µ∂∑∏π∫ªºΩæø"        // 0xB0
      "¿¡¬√ƒ≈∆«»…\u00A0ÀÃÕŒœ"   // 0xC0
      "–—“”‘’÷◊ÿŸ⁄€‹›ﬁﬂ"        // 0xD0
      "‡·‚„‰ÂÊÁËÈÍÎÏÌÓÔ"        // 0xE0
      "\uF8FFÒÚÛÙıˆ˜¯˘˙˚¸˝˛ˇ";  // 0xF0
  EXPECT_EQ(UpperHalf(TextEncoding::kMacRoman), expected);
  EXPECT_EQ(SingleByteCodePoint(TextEncoding::kMacRoman, 0xDB), U'\u20AC');
  EXPECT_EQ(SingleByteCodePoint(TextEncoding::kMacRoman, 0xF0), U'\uF8FF');
  EXPECT_EQ(Transcode("caf\x8E na\x95ve \xD0 \xDB", TextEncoding::kMacRoman), "café naïve – €");
}

TEST(EncodingTest, EachUpperHalfIsOneToOne) {
  for (TextEncoding e : {TextEncoding::kLatin1, TextEncoding::kCp1252, TextEncoding::kMacRoman}) {
    std::set<char32_t> seen;
    for (int b = 0x80; b <= 0xFF; ++b) {
      const char32_t cp = SingleByteCodePoint(e, b);
      EXPECT_GE(cp, 0x80u) << TextEncodingName(e) << " byte " << b;
      EXPECT_TRUE(seen.insert(cp).second) << TextEncodingName(e) << " byte " << b;
    }
  }
}

TEST(EncodingTest, AsciiAndNewlinesPassThroughUnchanged) {
  const std::string ascii = "id,prompt\r\n1,\"a, b\"\n\t~\x7F";
  for (TextEncoding e : {TextEncoding::kUtf8, TextEncoding::kLatin1, TextEncoding::kCp1252,
                         TextEncoding::kMacRoman}) {
    EXPECT_EQ(Transcode(ascii, e), ascii) << TextEncodingName(e);
  }
}

TEST(EncodingTest, ChunkedTranscodingEqualsWholeFile) {
  std::string bytes;
  for (int i = 0; i < 3; ++i) {
    for (int b = 0; b <= 0xFF; ++b) bytes.push_back(static_cast<char>(b));
  }
  for (TextEncoding e : {TextEncoding::kLatin1, TextEncoding::kCp1252, TextEncoding::kMacRoman}) {
    const std::string whole = Transcode(bytes, e);
    std::string chunked;
    for (size_t at = 0; at < bytes.size(); at += 7) {
      AppendAsUtf8(std::string_view(bytes).substr(at, 7), e, &chunked);
    }
    EXPECT_EQ(chunked, whole);
    EXPECT_EQ(FindInvalidUtf8(whole), std::string::npos);
  }
}

TEST(EncodingTest, AppendUtf8EncodesEveryLength) {
  std::string out;
  AppendUtf8(U'A', &out);
  AppendUtf8(U'\u00E9', &out);
  AppendUtf8(U'\u07FF', &out);
  AppendUtf8(U'\u0800', &out);
  AppendUtf8(U'\u20AC', &out);
  AppendUtf8(U'\uFFFD', &out);
  AppendUtf8(U'\U00010000', &out);
  AppendUtf8(U'\U0010FFFF', &out);
  EXPECT_EQ(out,
            "A\xC3\xA9\xDF\xBF\xE0\xA0\x80\xE2\x82\xAC\xEF\xBF\xBD\xF0\x90\x80\x80"
            "\xF4\x8F\xBF\xBF");
  EXPECT_EQ(FindInvalidUtf8(out), std::string::npos);
}

TEST(EncodingTest, FindsIllFormedUtf8) {
  EXPECT_EQ(FindInvalidUtf8(""), std::string::npos);
  EXPECT_EQ(FindInvalidUtf8("plain ascii"), std::string::npos);
  EXPECT_EQ(FindInvalidUtf8("café – € 😀"), std::string::npos);
  EXPECT_EQ(FindInvalidUtf8("caf\xE9!"), 3u);          // a Latin-1 byte
  EXPECT_EQ(FindInvalidUtf8("ab\x80"), 2u);            // a stray continuation byte
  EXPECT_EQ(FindInvalidUtf8("ab\xE2\x82"), 2u);        // truncated at the end
  EXPECT_EQ(FindInvalidUtf8("\xE2\x82x"), 0u);         // truncated before ASCII
  EXPECT_EQ(FindInvalidUtf8("\xC0\x80"), 0u);          // overlong NUL
  EXPECT_EQ(FindInvalidUtf8("\xC1\xBF"), 0u);          // overlong two-byte form
  EXPECT_EQ(FindInvalidUtf8("\xE0\x80\xAF"), 0u);      // overlong three-byte form
  EXPECT_EQ(FindInvalidUtf8("\xF0\x80\x80\xAF"), 0u);  // overlong four-byte form
  EXPECT_EQ(FindInvalidUtf8("x\xED\xA0\x80"), 1u);     // a surrogate (U+D800)
  EXPECT_EQ(FindInvalidUtf8("\xF4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(FindInvalidUtf8("\xF5\x80\x80\x80"), 0u);
  EXPECT_EQ(FindInvalidUtf8("\xFF"), 0u);
  EXPECT_EQ(FindInvalidUtf8("\xED\x9F\xBF"), std::string::npos);  // U+D7FF is fine
}

TEST(EncodingTest, DescribesTheBadBytes) {
  EXPECT_EQ(DescribeInvalidUtf8("caf\xE9!", 3), "byte 0xE9");
  EXPECT_EQ(DescribeInvalidUtf8("ab\xE2\x82", 2), "bytes 0xE2 0x82");
  EXPECT_EQ(DescribeInvalidUtf8("\xC0\x80z", 0), "bytes 0xC0 0x80");
}

TEST(EncodingTest, NamesByteOrderMarks) {
  EXPECT_EQ(ByteOrderMarkName("\xEF\xBB\xBFid"), "UTF-8");
  EXPECT_EQ(ByteOrderMarkName("\xFF\xFEi\0"), "UTF-16LE");
  EXPECT_EQ(ByteOrderMarkName("\xFE\xFF\0i"), "UTF-16BE");
  EXPECT_EQ(ByteOrderMarkName(std::string("\xFF\xFE\0\0", 4)), "UTF-32LE");
  EXPECT_EQ(ByteOrderMarkName(std::string("\0\0\xFE\xFF", 4)), "UTF-32BE");
  EXPECT_EQ(ByteOrderMarkName("id,prompt"), "");
  EXPECT_EQ(ByteOrderMarkName(""), "");
}

}  // namespace
}  // namespace breakfix::dataset
