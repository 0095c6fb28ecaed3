// UTF-8 decoding, the generated Unicode tables, special-token splitting and the GPT-2 /
// Llama 3 / Qwen2 pre-tokenizer scanners on tricky text.

#include "engine/pretokenizer.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "engine/unicode_tables.h"

namespace breakfix::engine {
namespace {

using Pieces = std::vector<std::string>;

Pieces Split(PretokenizerPattern pattern, std::string_view text) {
  Pieces out;
  for (std::string_view piece : SplitPretokens(pattern, text)) out.emplace_back(piece);
  return out;
}

// ---------------------------------------------------------------------------------------------
// UTF-8

TEST(Utf8Test, DecodesCodePointsWithTheirByteSpans) {
  const std::string text = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";  // a é € 😀
  const std::vector<CodePoint> cps = DecodeUtf8(text);
  ASSERT_EQ(cps.size(), 4u);
  EXPECT_EQ(cps[0].value, U'a');
  EXPECT_EQ(cps[1].value, U'\u00E9');
  EXPECT_EQ(cps[2].value, U'\u20AC');
  EXPECT_EQ(cps[3].value, U'\U0001F600');
  EXPECT_EQ(cps[1].offset, 1u);
  EXPECT_EQ(cps[2].offset, 3u);
  EXPECT_EQ(cps[3].offset, 6u);
  EXPECT_EQ(cps[3].length, 4u);
  EXPECT_TRUE(IsValidUtf8(text));
}

TEST(Utf8Test, MalformedBytesDecodeOneByOne) {
  struct Case {
    std::string bytes;
    size_t invalid;  // code points that come out as kInvalidCodePoint
  };
  const Case cases[] = {
      {"\xFF", 1},              // never valid
      {"\xC3", 1},              // truncated two-byte sequence
      {"\xC0\xAF", 2},          // overlong '/'
      {"\xED\xA0\x80", 3},      // a UTF-16 surrogate
      {"\xF4\x90\x80\x80", 4},  // above U+10FFFF
      {"\xE2\x82", 2},          // truncated three-byte sequence
      {"\x80", 1},              // a lone continuation byte
  };
  for (const Case& c : cases) {
    const std::vector<CodePoint> cps = DecodeUtf8("x" + c.bytes + "y");
    ASSERT_EQ(cps.size(), c.invalid + 2) << testing::PrintToString(c.bytes);
    for (size_t i = 1; i <= c.invalid; ++i) {
      EXPECT_EQ(cps[i].value, kInvalidCodePoint);
      EXPECT_EQ(cps[i].length, 1u);
    }
    EXPECT_EQ(cps.back().value, U'y');
    EXPECT_FALSE(IsValidUtf8(c.bytes));
  }
}

TEST(Utf8Test, AppendRoundTrips) {
  for (char32_t cp : {U'\0', U'A', U'\u007F', U'\u0080', U'\u07FF', U'\u0800', U'\uFFFF',
                      U'\U00010000', U'\U0010FFFF'}) {
    std::string s;
    AppendUtf8(cp, &s);
    const std::vector<CodePoint> cps = DecodeUtf8(s);
    ASSERT_EQ(cps.size(), 1u);
    EXPECT_EQ(cps[0].value, cp);
    EXPECT_EQ(cps[0].length, s.size());
  }
}

TEST(Utf8Test, SequenceLengthFromLeadByte) {
  EXPECT_EQ(Utf8SequenceLength('a'), 1);
  EXPECT_EQ(Utf8SequenceLength(0x80), 1);
  EXPECT_EQ(Utf8SequenceLength(0xC3), 2);
  EXPECT_EQ(Utf8SequenceLength(0xE2), 3);
  EXPECT_EQ(Utf8SequenceLength(0xF0), 4);
  EXPECT_EQ(Utf8SequenceLength(0xFF), 1);
}

// ---------------------------------------------------------------------------------------------
// Unicode tables

TEST(UnicodeTablesTest, Categories) {
  EXPECT_EQ(CategoryOf(U'A'), UnicodeCategory::kLetter);
  EXPECT_EQ(CategoryOf(U'\u4E2D'), UnicodeCategory::kLetter);  // 中
  EXPECT_EQ(CategoryOf(U'\u17A0'), UnicodeCategory::kLetter);  // Khmer letter
  EXPECT_EQ(CategoryOf(U'\u02B0'), UnicodeCategory::kLetter);  // modifier letter (Lm)
  EXPECT_EQ(CategoryOf(U'7'), UnicodeCategory::kNumber);
  EXPECT_EQ(CategoryOf(U'\u0663'), UnicodeCategory::kNumber);  // Arabic-Indic three
  EXPECT_EQ(CategoryOf(U'\u00BD'), UnicodeCategory::kNumber);  // ½ (No)
  EXPECT_EQ(CategoryOf(U'\u2167'), UnicodeCategory::kNumber);  // Roman numeral (Nl)
  EXPECT_EQ(CategoryOf(U'\u0301'), UnicodeCategory::kMark);    // combining acute
  EXPECT_EQ(CategoryOf(U'!'), UnicodeCategory::kPunctuation);
  EXPECT_EQ(CategoryOf(U'$'), UnicodeCategory::kSymbol);
  EXPECT_EQ(CategoryOf(U'\U0001F600'), UnicodeCategory::kSymbol);  // 😀
  EXPECT_EQ(CategoryOf(U'\u00A0'), UnicodeCategory::kSeparator);
  EXPECT_EQ(CategoryOf(U'\n'), UnicodeCategory::kOther);          // Cc
  EXPECT_EQ(CategoryOf(U'\u200D'), UnicodeCategory::kOther);      // ZWJ (Cf)
  EXPECT_EQ(CategoryOf(U'\U000E0001'), UnicodeCategory::kOther);  // tag (Cf)
  EXPECT_EQ(CategoryOf(U'\U0010FFFF'), UnicodeCategory::kOther);  // unassigned
  EXPECT_EQ(CategoryOf(kInvalidCodePoint), UnicodeCategory::kOther);
  EXPECT_STRNE(kUnicodeTablesVersion, "");
}

TEST(UnicodeTablesTest, WhiteSpaceIsTheUnicodeProperty) {
  for (char32_t cp :
       {U'\t', U'\n', U'\v', U'\f', U'\r', U' ', U'\u0085', U'\u00A0', U'\u1680', U'\u2000',
        U'\u200A', U'\u2028', U'\u2029', U'\u202F', U'\u205F', U'\u3000'}) {
    EXPECT_TRUE(IsUnicodeWhitespace(cp)) << static_cast<uint32_t>(cp);
  }
  // Python's isspace() counts U+001C..U+001F; White_Space does not. Nor zero-width space.
  for (char32_t cp : {U'\u001C', U'\u001F', U'\u200B', U'a', U'\u180E', kInvalidCodePoint}) {
    EXPECT_FALSE(IsUnicodeWhitespace(cp)) << static_cast<uint32_t>(cp);
  }
}

// ---------------------------------------------------------------------------------------------
// Special tokens

TEST(SpecialTokenMatcherTest, SplitsOnTokensLongestFirst) {
  const SpecialTokenMatcher matcher({{"<|end|>", 10, true},
                                     {"<|endoftext|>", 11, true},
                                     {"<|end", 12, true},
                                     {"<s>", 1, true},
                                     {"[X]", 5, false}});
  const auto frags = matcher.Split("a<|endoftext|>b<|end|><|end c", /*parse_special=*/true);
  ASSERT_EQ(frags.size(), 6u);
  EXPECT_EQ(frags[0].text, "a");
  EXPECT_EQ(frags[1].id, 11);
  EXPECT_EQ(frags[2].text, "b");
  EXPECT_EQ(frags[3].id, 10);
  EXPECT_EQ(frags[4].id, 12);
  EXPECT_EQ(frags[5].text, " c");
  for (const auto& f : frags) EXPECT_EQ(f.id < 0, !f.text.empty());
}

TEST(SpecialTokenMatcherTest, UserDefinedTokensSplitEvenWithoutParseSpecial) {
  const SpecialTokenMatcher matcher({{"<s>", 1, true}, {"[X]", 5, false}});
  const auto frags = matcher.Split("x[X]y<s>", /*parse_special=*/false);
  ASSERT_EQ(frags.size(), 3u);
  EXPECT_EQ(frags[0].text, "x");
  EXPECT_EQ(frags[1].id, 5);
  EXPECT_EQ(frags[2].text, "y<s>");
}

TEST(SpecialTokenMatcherTest, StripsWhiteSpaceAroundTokensThatAskForIt) {
  AddedToken mask{"<mask>", 7, true, /*lstrip=*/true, /*rstrip=*/true};
  AddedToken end{"<|end|>", 8, true, /*lstrip=*/false, /*rstrip=*/true};
  const SpecialTokenMatcher matcher({mask, end});
  const auto frags = matcher.Split("a \xE3\x80\x80 <mask>\n b<|end|>\n\nc  ", true);
  ASSERT_EQ(frags.size(), 5u);
  EXPECT_EQ(frags[0].text, "a");
  EXPECT_EQ(frags[1].id, 7);
  EXPECT_EQ(frags[2].text, "b");
  EXPECT_EQ(frags[3].id, 8);
  EXPECT_EQ(frags[4].text, "c  ");
}

TEST(SpecialTokenMatcherTest, EdgeCases) {
  const SpecialTokenMatcher matcher({{"", 3, true}, {"<a>", 4, true}, {"<a>", 9, true}});
  EXPECT_TRUE(matcher.Split("", true).empty());
  const auto only = matcher.Split("<a>", true);
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(only[0].id, 4);  // the first of two tokens with the same text
  const auto plain = SpecialTokenMatcher().Split("<a> b", true);
  ASSERT_EQ(plain.size(), 1u);
  EXPECT_EQ(plain[0].text, "<a> b");
}

TEST(StopIdsTest, EosThenEndOfTurnTokensWithoutDuplicates) {
  const std::map<std::string, int32_t> vocab = {
      {"</s>", 2}, {"<|end|>", 32007}, {"<|endoftext|>", 32000}, {"<|im_end|>", 7}};
  const auto find = [&](std::string_view text) {
    auto it = vocab.find(std::string(text));
    return it == vocab.end() ? -1 : it->second;
  };
  EXPECT_EQ(CollectStopIds(32000, -1, find), (std::vector<int32_t>{32000, 32007, 7, 2}));
  EXPECT_EQ(CollectStopIds(-1, 99, find), (std::vector<int32_t>{99, 32007, 7, 32000, 2}));
}

// ---------------------------------------------------------------------------------------------
// Pre-tokenizer patterns

TEST(PretokenizerTest, Gpt2) {
  const auto p = PretokenizerPattern::kGpt2;
  EXPECT_EQ(Split(p, "Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(Split(p, "I'm sure they're here, we've seen it's fine"),
            (Pieces{"I", "'m", " sure", " they", "'re", " here", ",", " we", "'ve", " seen", " it",
                    "'s", " fine"}));
  // Case-sensitive contractions: 'S is punctuation then a letter.
  EXPECT_EQ(Split(p, "IT'S"), (Pieces{"IT", "'", "S"}));
  EXPECT_EQ(Split(p, "abc 12345 x"), (Pieces{"abc", " 12345", " x"}));
  EXPECT_EQ(Split(p, "a   b"), (Pieces{"a", "  ", " b"}));
  EXPECT_EQ(Split(p, "a \n\n b"), (Pieces{"a", " \n\n", " b"}));
  EXPECT_EQ(Split(p, "a\tb"), (Pieces{"a", "\t", "b"}));
  EXPECT_EQ(Split(p, "end  "), (Pieces{"end", "  "}));
  EXPECT_EQ(Split(p, "Hi!!! ok?!"), (Pieces{"Hi", "!!!", " ok", "?!"}));
  EXPECT_EQ(Split(p,
                  "\xE6\x88\x91\xE6\x83\xB3"
                  "apple"),
            (Pieces{"\xE6\x88\x91\xE6\x83\xB3"
                    "apple"}));
  EXPECT_EQ(Split(p, "hi \xF0\x9F\x98\x80\xF0\x9F\x98\x80 there"),
            (Pieces{"hi", " \xF0\x9F\x98\x80\xF0\x9F\x98\x80", " there"}));
  // A combining mark is not \p{L}: decomposed "é" splits.
  EXPECT_EQ(Split(p, "e\xCC\x81t"), (Pieces{"e", "\xCC\x81", "t"}));
  EXPECT_EQ(Split(p, " "), (Pieces{" "}));
  EXPECT_TRUE(Split(p, "").empty());
}

TEST(PretokenizerTest, Llama3) {
  const auto p = PretokenizerPattern::kLlama3;
  EXPECT_EQ(Split(p, "Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(Split(p, "IT'S ok, you'LL see"),
            (Pieces{"IT", "'S", " ok", ",", " you", "'LL", " see"}));
  // Numbers in groups of one to three, never with a leading space.
  EXPECT_EQ(Split(p, "1234567"), (Pieces{"123", "456", "7"}));
  EXPECT_EQ(Split(p, "x12345"), (Pieces{"x", "123", "45"}));
  EXPECT_EQ(Split(p, "a 123"), (Pieces{"a", " ", "123"}));
  // One non-letter, non-newline character may lead a word.
  EXPECT_EQ(Split(p, "(hello)"), (Pieces{"(hello", ")"}));
  EXPECT_EQ(Split(p, "\tword"), (Pieces{"\tword"}));
  EXPECT_EQ(Split(p, "  word"), (Pieces{" ", " word"}));
  // Line breaks: white space up to the last line break is one piece.
  EXPECT_EQ(Split(p, "hello\n\nworld"), (Pieces{"hello", "\n\n", "world"}));
  EXPECT_EQ(Split(p, "hello \n  world"), (Pieces{"hello", " \n", " ", " world"}));
  EXPECT_EQ(Split(p, "x.\n\ny"), (Pieces{"x", ".\n\n", "y"}));
  EXPECT_EQ(Split(p, "\r\n"), (Pieces{"\r\n"}));
  EXPECT_EQ(Split(p, "!!! "), (Pieces{"!!!", " "}));
  EXPECT_EQ(Split(p, "\xE6\x88\x91\xE6\x83\xB3 \xF0\x9F\x98\x80!"),
            (Pieces{"\xE6\x88\x91\xE6\x83\xB3", " \xF0\x9F\x98\x80!"}));
  EXPECT_EQ(Split(p, "e\xCC\x81t"), (Pieces{"e", "\xCC\x81t"}));
}

TEST(PretokenizerTest, Qwen2SplitsDigitsOneByOne) {
  const auto p = PretokenizerPattern::kQwen2;
  EXPECT_EQ(Split(p, "1234"), (Pieces{"1", "2", "3", "4"}));
  EXPECT_EQ(Split(p, "v2.10 it's"), (Pieces{"v", "2", ".", "1", "0", " it", "'s"}));
  EXPECT_EQ(Split(p, "hello\n\nworld"), (Pieces{"hello", "\n\n", "world"}));
}

TEST(PretokenizerTest, PiecesTileTheTextForEveryPattern) {
  const std::vector<std::string> corpus = {
      "plain ascii text, with punctuation!",
      "  leading and trailing  \n\n",
      "mixed 中文 русский عربي हिन्दी 日本語 한국어",
      "emoji \xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD zwj \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9",
      "bad bytes \xFF\xFE \xC3 and \xED\xA0\x80 surrogates",
      "tabs\t\tand\r\nCRLF\r\n\r\n",
      "numbers 3.14159 1,000,000 \xD9\xA3\xD9\xA4",
      "'s's 're'VE 'll'd '",
  };
  for (auto pattern :
       {PretokenizerPattern::kGpt2, PretokenizerPattern::kLlama3, PretokenizerPattern::kQwen2}) {
    for (const std::string& text : corpus) {
      std::string joined;
      for (std::string_view piece : SplitPretokens(pattern, text)) {
        EXPECT_FALSE(piece.empty());
        joined += piece;
      }
      EXPECT_EQ(joined, text) << PretokenizerPatternName(pattern);
    }
  }
}

TEST(PretokenizerTest, PatternsByRegexAndGgufName) {
  auto gpt2 = PatternFromRegex(
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)");
  ASSERT_TRUE(gpt2.ok());
  EXPECT_EQ(*gpt2, PretokenizerPattern::kGpt2);
  auto llama3 = PatternFromRegex(
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)");
  ASSERT_TRUE(llama3.ok());
  EXPECT_EQ(*llama3, PretokenizerPattern::kLlama3);
  auto qwen2 = PatternFromRegex(
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)");
  ASSERT_TRUE(qwen2.ok());
  EXPECT_EQ(*qwen2, PretokenizerPattern::kQwen2);

  auto unknown = PatternFromRegex(R"(\w+|\s+)");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find(R"(\w+|\s+)"), std::string::npos);
  EXPECT_NE(unknown.status().message().find("Llama 3"), std::string::npos);

  EXPECT_EQ(*PatternFromGgufPre("llama-bpe"), PretokenizerPattern::kLlama3);
  EXPECT_EQ(*PatternFromGgufPre("llama3"), PretokenizerPattern::kLlama3);
  EXPECT_EQ(*PatternFromGgufPre("qwen2"), PretokenizerPattern::kQwen2);
  EXPECT_EQ(*PatternFromGgufPre("gpt2"), PretokenizerPattern::kGpt2);
  EXPECT_EQ(*PatternFromGgufPre("default"), PretokenizerPattern::kGpt2);
  auto smaug = PatternFromGgufPre("smaug-bpe");
  ASSERT_FALSE(smaug.ok());
  EXPECT_NE(smaug.status().message().find("smaug-bpe"), std::string::npos);
  EXPECT_NE(smaug.status().message().find("gpt2, default, llama3, llama-bpe, qwen2"),
            std::string::npos);
}

}  // namespace
}  // namespace breakfix::engine
