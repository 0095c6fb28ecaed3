// The SentencePiece-style tokenizer on small hand-built vocabularies: merge order by score,
// ties, byte fallback, the space prefix, special tokens, decoding and construction errors.
// (The real vocabularies are in tokenizer_conformance_test.cc.)

#include "engine/spm_tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace breakfix::engine {
namespace {

const std::string kSp = "\xE2\x96\x81";  // ▁

class VocabBuilder {
 public:
  explicit VocabBuilder(bool byte_tokens = true) {
    Add("<unk>", 0, TokenType::kUnknown);
    Add("<s>", 0, TokenType::kControl);
    Add("</s>", 0, TokenType::kControl);
    vocab_.unk_id = 0;
    vocab_.bos_id = 1;
    vocab_.eos_id = 2;
    if (byte_tokens) {
      for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", b);
        Add(name, 0, TokenType::kByte);
      }
    }
  }
  VocabBuilder& Add(const std::string& piece, float score, TokenType type = TokenType::kNormal) {
    vocab_.tokens.push_back(piece);
    vocab_.scores.push_back(score);
    vocab_.types.push_back(type);
    return *this;
  }
  SpmVocabulary& vocab() { return vocab_; }
  std::unique_ptr<SpmTokenizer> Build() {
    auto made = SpmTokenizer::Create(vocab_);
    EXPECT_TRUE(made.ok()) << made.status().ToString();
    return made.ok() ? std::move(made).value() : nullptr;
  }

 private:
  SpmVocabulary vocab_;
};

std::vector<std::string> Pieces(const Tokenizer& t, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(t.Piece(id));
  return out;
}

using Strings = std::vector<std::string>;

TEST(SpmTokenizerTest, MergesTheHighestScoringPairFirst) {
  VocabBuilder b;
  b.Add("a", -1).Add("b", -1).Add("c", -1).Add("ab", -3).Add("bc", -2);
  b.vocab().add_space_prefix = false;
  auto t = b.Build();
  ASSERT_NE(t, nullptr);
  // "bc" outscores "ab"; "abc" is no piece, so "a" stays alone.
  EXPECT_EQ(Pieces(*t, t->Encode("abc", false, false)), (Strings{"a", "bc"}));
}

TEST(SpmTokenizerTest, EqualScoresMergeLeftmostFirst) {
  VocabBuilder b;
  b.Add("a", -1).Add("aa", -2);
  b.vocab().add_space_prefix = false;
  auto t = b.Build();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(Pieces(*t, t->Encode("aaa", false, false)), (Strings{"aa", "a"}));
  EXPECT_EQ(Pieces(*t, t->Encode("aaaa", false, false)), (Strings{"aa", "aa"}));
}

TEST(SpmTokenizerTest, MergesOnlyIntoVocabularyPieces) {
  VocabBuilder b;
  // "abc" is reachable only through "ab" (no "bc"), however low its score.
  b.Add("a", -1).Add("b", -1).Add("c", -1).Add("ab", -5).Add("abc", -9);
  b.vocab().add_space_prefix = false;
  auto t = b.Build();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(Pieces(*t, t->Encode("abc", false, false)), (Strings{"abc"}));
  EXPECT_EQ(Pieces(*t, t->Encode("cab", false, false)), (Strings{"c", "ab"}));
}

TEST(SpmTokenizerTest, SpacesBecomeMetaspaceWithAPrefix) {
  VocabBuilder b;
  b.Add(kSp, -1).Add("a", -1).Add(kSp + "a", -2).Add("b", -1);
  auto t = b.Build();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(Pieces(*t, t->Encode("a b", false, false)), (Strings{kSp + "a", kSp, "b"}));
  // A leading space gives a second ▁ (the prefix is always added).
  EXPECT_EQ(Pieces(*t, t->Encode(" a", false, false)), (Strings{kSp, kSp + "a"}));
  EXPECT_TRUE(t->Encode("", false, false).empty());
  // Decoding drops exactly the prefix.
  EXPECT_EQ(t->Decode(t->Encode(" a", false, false), false), " a");
  EXPECT_EQ(t->Decode(t->Encode("a b", false, false), false), "a b");
}

TEST(SpmTokenizerTest, UnknownCharactersFallBackToBytes) {
  VocabBuilder b;
  b.Add(kSp, -1).Add("a", -1);
  auto t = b.Build();
  ASSERT_NE(t, nullptr);
  // "é" is no piece: its two UTF-8 bytes are spelled as byte tokens.
  EXPECT_EQ(Pieces(*t, t->Encode("\xC3\xA9"
                                 "a",
                                 false, false)),
            (Strings{kSp, "<0xC3>", "<0xA9>", "a"}));
  const std::vector<int32_t> ids = t->Encode("\xC3\xA9", false, false);
  EXPECT_EQ(t->Decode(ids, false), "\xC3\xA9");
  // Streaming: each byte token contributes its raw byte, so a character spans two tokens.
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(t->TokenBytes(ids[0], true), "");
  EXPECT_EQ(t->TokenBytes(ids[1], false), "\xC3");
  EXPECT_EQ(t->TokenBytes(ids[2], false), "\xA9");
  // A stray byte that is not valid UTF-8 still round-trips.
  EXPECT_EQ(t->Decode(t->Encode("a\xFF", false, false), false), "a\xFF");
}

TEST(SpmTokenizerTest, WithoutByteTokensUnknownCharactersAreUnk) {
  VocabBuilder b(/*byte_tokens=*/false);
  b.Add(kSp, -1).Add("a", -1);
  auto t = b.Build();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(Pieces(*t, t->Encode("a\xC3\xA9", false, false)),
            (Strings{kSp, "a", "<unk>", "<unk>"}));
  EXPECT_EQ(t->Decode(t->Encode("a\xC3\xA9", false, false), /*skip_special=*/true), "a");
}

TEST(SpmTokenizerTest, BosFollowsTheRequestAndTheVocabulary) {
  VocabBuilder b;
  b.Add(kSp + "a", -1);
  auto t = b.Build();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(Pieces(*t, t->Encode("a", true, false)), (Strings{"<s>", kSp + "a"}));
  EXPECT_EQ(Pieces(*t, t->Encode("a", false, false)), (Strings{kSp + "a"}));
  EXPECT_TRUE(t->add_bos_default());

  b.vocab().add_bos = false;
  auto no_bos = b.Build();
  ASSERT_NE(no_bos, nullptr);
  EXPECT_FALSE(no_bos->add_bos_default());
  EXPECT_EQ(Pieces(*no_bos, no_bos->Encode("a", true, false)), (Strings{kSp + "a"}));
}

TEST(SpmTokenizerTest, SpecialTokensSplitTheText) {
  VocabBuilder b;
  b.Add(kSp, -1).Add("a", -1).Add(kSp + "a", -2);
  b.Add("<|end|>", 0, TokenType::kControl);
  b.Add("[PIN]", 0, TokenType::kUserDefined);
  auto t = b.Build();
  ASSERT_NE(t, nullptr);
  const int32_t end = t->Find("<|end|>");
  const int32_t pin = t->Find("[PIN]");
  // A fragment after a special token gets the space prefix again, as in llama.cpp.
  EXPECT_EQ(Pieces(*t, t->Encode("a<|end|>a", false, true)),
            (Strings{kSp + "a", "<|end|>", kSp + "a"}));
  // Without parse_special the control token is text; user-defined tokens always split.
  const std::vector<int32_t> literal = t->Encode("a<|end|>", false, false);
  EXPECT_EQ(std::count(literal.begin(), literal.end(), end), 0);
  EXPECT_EQ(t->Decode(literal, false), "a<|end|>");
  const std::vector<int32_t> pinned = t->Encode("a[PIN]", false, false);
  EXPECT_EQ(std::count(pinned.begin(), pinned.end(), pin), 1);

  // Decoding: BOS/EOS never, control tokens unless skipped, user-defined always.
  const std::vector<int32_t> ids = {1, t->Find(kSp + "a"), end, pin, 2};
  EXPECT_EQ(t->Decode(ids, false), "a<|end|>[PIN]");
  EXPECT_EQ(t->Decode(ids, true), "a[PIN]");
  EXPECT_TRUE(t->IsSpecial(end));
  EXPECT_FALSE(t->IsSpecial(pin));
  EXPECT_TRUE(t->IsSpecial(0));
  EXPECT_FALSE(t->IsSpecial(-1));
}

TEST(SpmTokenizerTest, StopIdsAreEosEotAndEndOfTurnTokens) {
  VocabBuilder b;
  b.Add("<|end|>", 0, TokenType::kControl).Add("<|im_end|>", 0, TokenType::kControl);
  b.Add("<|mine|>", 0, TokenType::kControl);
  b.vocab().eot_id = static_cast<int32_t>(b.vocab().tokens.size()) - 1;
  auto t = b.Build();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(Pieces(*t, t->stop_ids()), (Strings{"</s>", "<|mine|>", "<|end|>", "<|im_end|>"}));
}

TEST(SpmTokenizerTest, DecodingSkipsInvalidIdsAndTokenBytesHandlesFirst) {
  VocabBuilder b;
  b.Add(kSp + "Hi", -1).Add(kSp + "there", -1);
  auto t = b.Build();
  ASSERT_NE(t, nullptr);
  const int32_t hi = t->Find(kSp + "Hi");
  const int32_t there = t->Find(kSp + "there");
  EXPECT_EQ(t->Decode(std::vector<int32_t>{-5, hi, 999999, there}, false), "Hi there");
  EXPECT_EQ(t->TokenBytes(hi, /*first=*/true), "Hi");
  EXPECT_EQ(t->TokenBytes(hi, /*first=*/false), " Hi");
  EXPECT_EQ(t->TokenBytes(1, false), "");  // BOS
  EXPECT_EQ(t->TokenBytes(-1, false), "");
  EXPECT_EQ(t->Piece(hi), kSp + "Hi");
  EXPECT_EQ(t->kind(), "spm");

  b.vocab().add_space_prefix = false;  // then nothing is stripped either
  auto raw = b.Build();
  ASSERT_NE(raw, nullptr);
  EXPECT_EQ(raw->TokenBytes(hi, true), " Hi");
}

TEST(SpmTokenizerTest, CreateRejectsInconsistentVocabularies) {
  {
    SpmVocabulary v;
    auto made = SpmTokenizer::Create(v);
    ASSERT_FALSE(made.ok());
    EXPECT_NE(made.status().message().find("no tokens"), std::string::npos);
  }
  {
    SpmVocabulary v;
    v.tokens = {"a", "b"};
    v.scores = {0.0f};
    auto made = SpmTokenizer::Create(v);
    ASSERT_FALSE(made.ok());
    EXPECT_NE(made.status().message().find("scores has 1 entries"), std::string::npos)
        << made.status().message();
  }
  {
    SpmVocabulary v;
    v.tokens = {"a", "b"};
    v.types = {TokenType::kNormal, static_cast<TokenType>(9)};
    auto made = SpmTokenizer::Create(v);
    ASSERT_FALSE(made.ok());
    EXPECT_NE(made.status().message().find("token 1 has type 9"), std::string::npos);
  }
  {
    SpmVocabulary v;
    v.tokens = {"a", "b"};
    v.eos_id = 2;
    auto made = SpmTokenizer::Create(v);
    ASSERT_FALSE(made.ok());
    EXPECT_EQ(made.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(made.status().message().find("eos id 2 is outside the vocabulary of 2 tokens"),
              std::string::npos)
        << made.status().message();
  }
}

TEST(SpmTokenizerTest, HelpersParseBytesAndUnescape) {
  EXPECT_EQ(ParseByteToken("<0x0A>"), 10);
  EXPECT_EQ(ParseByteToken("<0xff>"), 255);
  EXPECT_EQ(ParseByteToken("<0xG0>"), -1);
  EXPECT_EQ(ParseByteToken("<0x0A"), -1);
  EXPECT_EQ(ParseByteToken("x"), -1);
  EXPECT_EQ(SpmUnescape(kSp + "a" + kSp + kSp + "b"), " a  b");
}

}  // namespace
}  // namespace breakfix::engine
