// tokenizer.model reading: the ModelProto reader on hand-encoded protobuf bytes (well-formed
// and hostile), the settings it refuses, and the real Llama 2 model with Phi-3's added tokens.

#include "engine/sentencepiece_tokenizer.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "breakfix/env.h"
#include "testing/scratch_dir.h"

namespace breakfix::engine {
namespace {

const std::string kSp = "\xE2\x96\x81";  // ▁

// A protobuf encoder just big enough to write ModelProto test inputs.
std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
std::string Key(int field, int wire) { return Varint(static_cast<uint64_t>(field) << 3 | wire); }
std::string VarintField(int field, int64_t v) {
  return Key(field, 0) + Varint(static_cast<uint64_t>(v));
}
std::string BytesField(int field, const std::string& payload) {
  return Key(field, 2) + Varint(payload.size()) + payload;
}
std::string FloatField(int field, float f) {
  std::string bytes(4, '\0');
  std::memcpy(bytes.data(), &f, 4);
  return Key(field, 5) + bytes;
}
std::string PieceField(const std::string& piece, std::optional<float> score = std::nullopt,
                       std::optional<int> type = std::nullopt) {
  std::string body = BytesField(1, piece);
  if (score) body += FloatField(2, *score);
  if (type) body += VarintField(3, *type);
  return BytesField(1, body);
}

// A small BPE model: <unk> <s> </s>, byte tokens for 'h' and 'i' only, and "▁", "▁h", "▁hi".
std::string SmallModel(bool add_dummy_prefix = true, int model_type = 2,
                       const std::string& normalizer_name = "identity",
                       bool remove_extra_whitespaces = false) {
  std::string model;
  model += PieceField("<unk>", 0.0f, 2);
  model += PieceField("<s>", 0.0f, 3);
  model += PieceField("</s>", 0.0f, 3);
  model += PieceField("<0x0A>", 0.0f, 6);
  model += PieceField(kSp, -1.0f);  // type omitted: normal
  model += PieceField("h");         // score omitted: 0
  model += PieceField("i", -2.0f, 1);
  model += PieceField(kSp + "h", -3.0f);
  model += PieceField(kSp + "hi", -4.0f);
  std::string trainer = VarintField(3, model_type) + VarintField(35, 1) + VarintField(40, 0) +
                        VarintField(41, 1) + VarintField(42, 2) + VarintField(43, -1) +
                        BytesField(45, "<unk>");
  model += BytesField(2, trainer);
  std::string normalizer = BytesField(1, normalizer_name) + BytesField(2, "") +
                           VarintField(3, add_dummy_prefix ? 1 : 0) +
                           VarintField(4, remove_extra_whitespaces ? 1 : 0);
  model += BytesField(3, normalizer);
  return model;
}

using test_support::ScratchDir;

std::vector<std::string> Pieces(const Tokenizer& t, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(t.Piece(id));
  return out;
}

TEST(SentencePieceModelTest, ParsesPiecesTrainerAndNormalizerSpecs) {
  auto model = ParseSentencePieceModel(SmallModel(), "small.model");
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  ASSERT_EQ(model->pieces.size(), 9u);
  EXPECT_EQ(model->pieces[4], kSp);
  EXPECT_EQ(model->types[0], TokenType::kUnknown);
  EXPECT_EQ(model->types[3], TokenType::kByte);
  EXPECT_EQ(model->types[4], TokenType::kNormal);
  EXPECT_FLOAT_EQ(model->scores[4], -1.0f);
  EXPECT_FLOAT_EQ(model->scores[5], 0.0f);
  EXPECT_EQ(model->model_type, 2);
  EXPECT_TRUE(model->byte_fallback);
  EXPECT_EQ(model->unk_id, 0);
  EXPECT_EQ(model->bos_id, 1);
  EXPECT_EQ(model->eos_id, 2);
  EXPECT_EQ(model->normalizer_name, "identity");
  EXPECT_FALSE(model->has_charsmap);
  EXPECT_TRUE(model->add_dummy_prefix);
  EXPECT_FALSE(model->remove_extra_whitespaces);
}

TEST(SentencePieceModelTest, TokenizesWithTheModelsPieces) {
  ScratchDir dir;
  const std::string path = dir.Write("tokenizer.model", SmallModel());
  auto t = OpenSentencePieceModel(path, {});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((*t)->kind(), "sentencepiece");
  EXPECT_EQ(Pieces(**t, (*t)->Encode("hi\nhi", true, false)),
            (std::vector<std::string>{"<s>", kSp + "hi", "<0x0A>", "h", "i"}));
  EXPECT_EQ((*t)->Decode((*t)->Encode("hi\nhi", true, false), false), "hi\nhi");

  const std::string raw = dir.Write("raw.model", SmallModel(/*add_dummy_prefix=*/false));
  auto no_prefix = OpenSentencePieceModel(raw, {});
  ASSERT_TRUE(no_prefix.ok()) << no_prefix.status().ToString();
  EXPECT_EQ(Pieces(**no_prefix, (*no_prefix)->Encode("hi", false, false)),
            (std::vector<std::string>{"h", "i"}));
}

TEST(SentencePieceModelTest, AddedTokensExtendTheVocabulary) {
  ScratchDir dir;
  const std::string path = dir.Write("tokenizer.model", SmallModel());
  SentencePieceOptions options;
  options.added_tokens = {
      {"<|end|>", 12, true}, {"<|user|>", 11, true, false, /*rstrip=*/true}, {"[T]", 10, false}};
  options.eos_text = "<|end|>";
  auto t = OpenSentencePieceModel(path, options);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((*t)->vocab_size(), 13);
  EXPECT_EQ((*t)->eos_id(), 12);
  EXPECT_EQ((*t)->Piece(9), "");  // the hole between the model's pieces and the added ids
  EXPECT_EQ(Pieces(**t, (*t)->Encode("<|user|>\n hi<|end|>", false, true)),
            (std::vector<std::string>{"<|user|>", kSp + "hi", "<|end|>"}));
  EXPECT_EQ((*t)->stop_ids(), (std::vector<int32_t>{12, 2}));

  options.bos_text = "<|nope|>";
  auto bad = OpenSentencePieceModel(path, options);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bos_token \"<|nope|>\""), std::string::npos);

  options.bos_text.clear();
  options.added_tokens = {{"<|far|>", 1 << 30, true}};
  auto far = OpenSentencePieceModel(path, options);
  ASSERT_FALSE(far.ok());
  EXPECT_NE(far.status().message().find("has id 1073741824"), std::string::npos);
}

TEST(SentencePieceModelTest, UnsupportedSettingsAreNamed) {
  ScratchDir dir;
  struct Case {
    std::string bytes;
    const char* expected;
  };
  const Case cases[] = {
      {SmallModel(true, /*model_type=*/1), "model_type is 1 (Unigram)"},
      {SmallModel(true, 2, "nmt_nfkc"), "normalizer \"nmt_nfkc\""},
      {SmallModel(true, 2, "identity", /*remove_extra_whitespaces=*/true),
       "remove_extra_whitespaces"},
  };
  for (const Case& c : cases) {
    const std::string path = dir.Write("tokenizer.model", c.bytes);
    auto t = OpenSentencePieceModel(path, {});
    ASSERT_FALSE(t.ok()) << c.expected;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(t.status().message().find(c.expected), std::string::npos) << t.status().message();
    EXPECT_NE(t.status().message().find(path), std::string::npos);
  }
  // remove_extra_whitespaces defaults to true when the field is absent.
  std::string no_flag =
      PieceField("a") + BytesField(2, VarintField(3, 2)) + BytesField(3, BytesField(1, "identity"));
  auto t = OpenSentencePieceModel(dir.Write("tokenizer.model", no_flag), {});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("remove_extra_whitespaces"), std::string::npos);
}

TEST(SentencePieceModelTest, HostileBytesAreErrorsWithOffsets) {
  struct Case {
    std::string bytes;
    const char* expected;
  };
  const std::string good = SmallModel();
  const Case cases[] = {
      {"", "it has no pieces"},
      {"\x0A", "byte 1: not a SentencePiece model: truncated varint"},
      {"\x0A\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", "varint longer than 10 bytes"},
      {"\x0A\x7F"
       "abc",
       "field 1 claims 127 bytes but only 3 remain"},
      {"\x0B", "has wire type 3"},
      {std::string("\x00", 1), "invalid field number"},
      {"\x08\x01", "ModelProto.pieces has wire type 0, expected 2"},
      {PieceField("a", std::nullopt, 9), "piece 0 has type 9 (expected 1..6)"},
      {BytesField(1, BytesField(1, "a") + Key(2, 5) + "\x01\x02"), "truncated 32-bit field"},
      {good.substr(0, good.size() - 3), "not a SentencePiece model"},
      {"hello, this is plainly not a protobuf", "not a SentencePiece model"},
  };
  for (const Case& c : cases) {
    auto model = ParseSentencePieceModel(c.bytes, "bad.model");
    ASSERT_FALSE(model.ok()) << c.expected;
    EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(model.status().message().find(c.expected), std::string::npos)
        << model.status().message();
    EXPECT_NE(model.status().message().find("bad.model"), std::string::npos);
  }
  // Every truncation of a good model is an error or a smaller valid model, never a crash.
  for (size_t n = 0; n < good.size(); ++n) {
    auto model = ParseSentencePieceModel(good.substr(0, n), "cut.model");
    if (model.ok()) {
      EXPECT_LE(model->pieces.size(), 9u);
    }
  }
}

TEST(SentencePieceModelTest, MissingFileNamesThePath) {
  auto t = OpenSentencePieceModel("/nonexistent/breakfix/tokenizer.model", {});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("/nonexistent/breakfix/tokenizer.model"), std::string::npos);
}

// The real Llama 2 tokenizer.model with Phi-3's added tokens, as a Phi-3 Hugging Face directory
// without tokenizer.json would give them.
TEST(SentencePieceModelTest, Llama2ModelWithPhi3AddedTokens) {
  const std::optional<std::string> data = Env::Default()->GetVar("BREAKFIX_TEST_DATA");
  if (!data) GTEST_SKIP() << "BREAKFIX_TEST_DATA is unset; set it to the data directory to run";
  const std::string path = *data + "/llama2-tokenizer/tokenizer.model";
  ASSERT_TRUE(std::filesystem::is_regular_file(path))
      << "BREAKFIX_TEST_DATA is set but the data file is missing: " << path;
  SentencePieceOptions options;
  options.added_tokens = {{"<|endoftext|>", 32000, true},
                          {"<|assistant|>", 32001, true},
                          {"<|end|>", 32007, true},
                          {"<|user|>", 32010, true}};
  options.eos_text = "<|endoftext|>";
  auto t = OpenSentencePieceModel(path, options);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((*t)->vocab_size(), 32011);
  EXPECT_EQ((*t)->eos_id(), 32000);
  EXPECT_EQ((*t)->bos_id(), 1);
  EXPECT_EQ((*t)->stop_ids(), (std::vector<int32_t>{32000, 32007, 2}));
  const std::vector<int32_t> ids =
      (*t)->Encode("<|user|>\nHello<|end|>\n<|assistant|>", true, true);
  ASSERT_GE(ids.size(), 5u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 32010);
  EXPECT_EQ(ids.back(), 32001);
  EXPECT_EQ((*t)->Decode(ids, /*skip_special=*/true), "\nHello \n");
}

}  // namespace
}  // namespace breakfix::engine
