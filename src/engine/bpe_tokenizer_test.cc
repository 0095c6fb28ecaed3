// Byte-level and SentencePiece-style BPE on small hand-built vocabularies with known merges,
// written as tokenizer.json files (loaded through TokenizerFromHfDir) and as GGUF "gpt2"
// metadata: merge order, the pre-tokenizer patterns, ignore_merges, special tokens, byte
// fallback, round trips over mixed-script text, and the errors malformed files give.

#include "engine/bpe_tokenizer.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "engine/gguf.h"
#include "engine/gguf_writer.h"
#include "engine/tokenizer_loader.h"
#include "testing/scratch_dir.h"

namespace breakfix::engine {
namespace {

using nlohmann::json;
using Strings = std::vector<std::string>;
using Merges = std::vector<std::pair<std::string, std::string>>;

const std::string kSp = "\xE2\x96\x81";  // ▁

using test_support::ScratchDir;

// Text spelled in GPT-2's byte alphabet (" the" -> "Ġthe").
std::string Spell(std::string_view bytes) {
  std::string out;
  for (char c : bytes) AppendUtf8(ByteLevelChar(static_cast<uint8_t>(c)), &out);
  return out;
}

// A byte-level vocabulary: the 256 byte tokens in byte order, then each merge's result in merge
// order. Merges are given as plain text and spelled here.
struct Fixture {
  Strings tokens;
  Merges merges;
};

Fixture ByteLevelFixture(const std::vector<std::pair<std::string, std::string>>& plain_merges) {
  Fixture f;
  for (int b = 0; b < 256; ++b) f.tokens.push_back(Spell(std::string(1, static_cast<char>(b))));
  for (const auto& [a, b] : plain_merges) {
    f.merges.emplace_back(Spell(a), Spell(b));
    const std::string joined = Spell(a + b);
    if (std::find(f.tokens.begin(), f.tokens.end(), joined) == f.tokens.end()) {
      f.tokens.push_back(joined);
    }
  }
  return f;
}

json Vocab(const Strings& tokens) {
  json v = json::object();
  for (size_t i = 0; i < tokens.size(); ++i) v[tokens[i]] = i;
  return v;
}

json MergesJson(const Merges& merges, bool as_pairs) {
  json m = json::array();
  for (const auto& [a, b] : merges) {
    if (as_pairs) {
      m.push_back(json::array({a, b}));
    } else {
      m.push_back(a + " " + b);
    }
  }
  return m;
}

json ByteLevelJson(const Fixture& f, json pre_tokenizer, json added, bool ignore_merges = false,
                   bool pairs = false) {
  return {
      {"version", "1.0"},
      {"added_tokens", std::move(added)},
      {"normalizer", nullptr},
      {"pre_tokenizer", std::move(pre_tokenizer)},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", ignore_merges},
        {"vocab", Vocab(f.tokens)},
        {"merges", MergesJson(f.merges, pairs)}}},
  };
}

json Gpt2PreTokenizer(bool add_prefix_space = false) {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", add_prefix_space},
          {"trim_offsets", true},
          {"use_regex", true}};
}

json SplitPreTokenizer(const std::string& regex) {
  return {{"type", "Sequence"},
          {"pretokenizers", json::array({{{"type", "Split"},
                                          {"pattern", {{"Regex", regex}}},
                                          {"behavior", "Isolated"},
                                          {"invert", false}},
                                         {{"type", "ByteLevel"},
                                          {"add_prefix_space", false},
                                          {"trim_offsets", true},
                                          {"use_regex", false}}})}};
}

const char kLlama3Regex[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

json Added(int64_t id, const std::string& text, bool special) {
  return {{"id", id},        {"content", text},     {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", false}, {"special", special}};
}

// Loads tokenizer.json (+ tokenizer_config.json when given) from a scratch directory.
Result<LoadedTokenizer> LoadJson(const ScratchDir& dir, const json& tokenizer,
                                 const json& config = nullptr) {
  dir.Write("tokenizer.json", tokenizer.dump(2));
  if (!config.is_null()) dir.Write("tokenizer_config.json", config.dump(2));
  return TokenizerFromHfDir(dir.path());
}

Strings Pieces(const Tokenizer& t, const std::vector<int32_t>& ids) {
  Strings out;
  for (int32_t id : ids) out.push_back(t.Piece(id));
  return out;
}

// Merges of "the", " the", "me" and "is": enough to watch rank order work.
Fixture TheFixture() {
  return ByteLevelFixture(
      {{" ", "t"}, {"h", "e"}, {" t", "he"}, {"t", "he"}, {"m", "e"}, {"i", "s"}, {" ", "is"}});
}

TEST(BpeTokenizerTest, MergesByRankInsideEachPretoken) {
  ScratchDir dir;
  auto loaded = LoadJson(dir, ByteLevelJson(TheFixture(), Gpt2PreTokenizer(), json::array()));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& t = *loaded->tokenizer;
  EXPECT_EQ(t.kind(), "bpe");
  EXPECT_EQ(Pieces(t, t.Encode("the theme is", false, false)),
            (Strings{"the", Spell(" the"), "me", Spell(" is")}));
  // No merge crosses a pre-token boundary: "e" and " t" stay apart in "he the".
  EXPECT_EQ(Pieces(t, t.Encode("he the", false, false)), (Strings{"he", Spell(" the")}));
  // Nothing merges "mt": plain byte tokens.
  EXPECT_EQ(Pieces(t, t.Encode("mt", false, false)), (Strings{"m", "t"}));
  EXPECT_FALSE(t.add_bos_default());
  EXPECT_EQ(t.bos_id(), -1);
}

TEST(BpeTokenizerTest, LowerRankWinsOverPosition) {
  // "b c" ranks before "a b": in "abc" the right pair merges first and blocks "ab".
  ScratchDir dir;
  const Fixture f = ByteLevelFixture({{"b", "c"}, {"a", "b"}});
  auto loaded = LoadJson(dir, ByteLevelJson(f, Gpt2PreTokenizer(), json::array()));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(Pieces(*loaded->tokenizer, loaded->tokenizer->Encode("abc", false, false)),
            (Strings{"a", "bc"}));
  EXPECT_EQ(Pieces(*loaded->tokenizer, loaded->tokenizer->Encode("abab", false, false)),
            (Strings{"ab", "ab"}));
}

TEST(BpeTokenizerTest, MergesMayBeWrittenAsPairs) {
  ScratchDir dir;
  auto loaded = LoadJson(dir, ByteLevelJson(TheFixture(), Gpt2PreTokenizer(), json::array(),
                                            /*ignore_merges=*/false, /*pairs=*/true));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(Pieces(*loaded->tokenizer, loaded->tokenizer->Encode("the", false, false)),
            (Strings{"the"}));
}

TEST(BpeTokenizerTest, RoundTripsMixedScriptText) {
  ScratchDir dir;
  auto loaded = LoadJson(dir, ByteLevelJson(TheFixture(), Gpt2PreTokenizer(), json::array()));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& t = *loaded->tokenizer;
  const Strings corpus = {
      "",
      "the theme is the theme",
      "  leading, trailing  \n\n\ttabs\r\n",
      "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C",  // 你好，世界
      "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xD0\xBC\xD0\xB8\xD1\x80",  // Привет мир
      "\xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7",                                   // مرحبا
      "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9 ok",
      "e\xCC\x81t\xC3\xA9",  // combining
      "stray \xFF\xFE bytes \xC3",
      "<|endoftext|> is only text here",
  };
  for (const std::string& text : corpus) {
    const std::vector<int32_t> ids = t.Encode(text, false, false);
    EXPECT_EQ(t.Decode(ids, false), text);
    std::string streamed;
    for (size_t i = 0; i < ids.size(); ++i) streamed += t.TokenBytes(ids[i], i == 0);
    EXPECT_EQ(streamed, text);
  }
}

TEST(BpeTokenizerTest, AddedTokensAndStopIds) {
  ScratchDir dir;
  const Fixture f = TheFixture();
  const auto n = static_cast<int64_t>(f.tokens.size());
  const json added = json::array({Added(n, "<|endoftext|>", true), Added(n + 1, "<|im_end|>", true),
                                  Added(n + 2, "<tool>", false)});
  const json config = {{"eos_token", {{"content", "<|endoftext|>"}}},
                       {"bos_token", nullptr},
                       {"chat_template", "{{ '<|im_start|>' }}"}};
  auto loaded = LoadJson(dir, ByteLevelJson(f, Gpt2PreTokenizer(), added), config);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& t = *loaded->tokenizer;
  EXPECT_EQ(t.vocab_size(), n + 3);
  EXPECT_EQ(t.eos_id(), n);
  EXPECT_EQ(loaded->eos_text, "<|endoftext|>");
  EXPECT_EQ(loaded->bos_text, "");
  EXPECT_EQ(loaded->chat_template, "{{ '<|im_start|>' }}");
  EXPECT_EQ(t.stop_ids(),
            (std::vector<int32_t>{static_cast<int32_t>(n), static_cast<int32_t>(n + 1)}));
  EXPECT_EQ(Pieces(t, t.Encode("the<|im_end|>the", false, true)),
            (Strings{"the", "<|im_end|>", "the"}));
  // Without parse_special the control token is spelled out; the non-special one still splits.
  const std::vector<int32_t> plain = t.Encode("<|im_end|><tool>", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), n + 1), 0);
  EXPECT_EQ(plain.back(), n + 2);
  EXPECT_EQ(t.Decode(plain, false), "<|im_end|><tool>");
  EXPECT_TRUE(t.IsSpecial(static_cast<int32_t>(n + 1)));
  EXPECT_FALSE(t.IsSpecial(static_cast<int32_t>(n + 2)));
  const std::vector<int32_t> ids = t.Encode("the<|im_end|><tool><|endoftext|>", false, true);
  EXPECT_EQ(t.Decode(ids, false), "the<|im_end|><tool>");  // EOS is never rendered
  EXPECT_EQ(t.Decode(ids, true), "the<tool>");
}

TEST(BpeTokenizerTest, Llama3PatternAndIgnoreMerges) {
  ScratchDir dir;
  Fixture f = ByteLevelFixture({{"1", "2"}, {"12", "3"}, {"4", "5"}});
  f.tokens.push_back(Spell(" hello"));  // reachable only as a whole word
  const json added =
      json::array({Added(static_cast<int64_t>(f.tokens.size()), "<|begin_of_text|>", true)});
  json tokenizer = ByteLevelJson(f, SplitPreTokenizer(kLlama3Regex), added,
                                 /*ignore_merges=*/true);
  tokenizer["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})}};
  auto loaded = LoadJson(dir, tokenizer);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& t = *loaded->tokenizer;
  EXPECT_EQ(Pieces(t, t.Encode("say hello", false, false)),
            (Strings{"s", "a", "y", Spell(" hello")}));
  // Digits go in groups of three at most, then merge inside each group.
  EXPECT_EQ(Pieces(t, t.Encode("12345", false, false)), (Strings{"123", "45"}));
  // The TemplateProcessing special token is the BOS the model wants.
  EXPECT_TRUE(t.add_bos_default());
  EXPECT_EQ(loaded->bos_text, "<|begin_of_text|>");
  EXPECT_EQ(t.Encode("12", true, false).front(), t.bos_id());

  // Without ignore_merges the whole-word token is out of reach.
  ScratchDir dir2;
  auto merged = LoadJson(dir2, ByteLevelJson(f, SplitPreTokenizer(kLlama3Regex), json::array()));
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_EQ(merged->tokenizer->Encode(" hello", false, false).size(), 6u);
}

TEST(BpeTokenizerTest, ByteLevelPrefixSpace) {
  ScratchDir dir;
  auto loaded = LoadJson(
      dir, ByteLevelJson(TheFixture(), Gpt2PreTokenizer(/*add_prefix_space=*/true), json::array()));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& t = *loaded->tokenizer;
  EXPECT_EQ(Pieces(t, t.Encode("the", false, false)), (Strings{Spell(" the")}));
  EXPECT_EQ(Pieces(t, t.Encode(" the", false, false)), (Strings{Spell(" the")}));
}

// A SentencePiece model converted to tokenizer.json the legacy way (Llama 2): Prepend("▁") and
// Replace(" ", "▁") normalizers, merges over characters, byte fallback.
json MetaspaceJson(json normalizer, json pre_tokenizer) {
  Strings tokens = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    tokens.push_back(name);
  }
  for (const std::string& piece : {kSp, std::string("h"), std::string("i"), std::string("a"),
                                   kSp + "h", kSp + "hi", std::string("hi")}) {
    tokens.push_back(piece);
  }
  const Merges merges = {{kSp, "h"}, {kSp + "h", "i"}, {"h", "i"}};
  return {{"added_tokens",
           json::array({Added(0, "<unk>", true), Added(1, "<s>", true), Added(2, "</s>", true)})},
          {"normalizer", std::move(normalizer)},
          {"pre_tokenizer", std::move(pre_tokenizer)},
          {"decoder", nullptr},
          {"model",
           {{"type", "BPE"},
            {"unk_token", "<unk>"},
            {"fuse_unk", true},
            {"byte_fallback", true},
            {"vocab", Vocab(tokens)},
            {"merges", MergesJson(merges, false)}}}};
}

json LegacyNormalizer() {
  return {{"type", "Sequence"},
          {"normalizers",
           json::array({{{"type", "Prepend"}, {"prepend", kSp}},
                        {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSp}}})}};
}

TEST(BpeTokenizerTest, SentencePieceStyleTokenizerJson) {
  ScratchDir dir;
  const json config = {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"add_bos_token", true}};
  auto loaded = LoadJson(dir, MetaspaceJson(LegacyNormalizer(), nullptr), config);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& t = *loaded->tokenizer;
  EXPECT_EQ(Pieces(t, t.Encode("hi", true, false)), (Strings{"<s>", kSp + "hi"}));
  EXPECT_EQ(Pieces(t, t.Encode(" hi", false, false)), (Strings{kSp, kSp + "hi"}));
  // "é" is no token: its bytes. "a" follows as itself.
  EXPECT_EQ(Pieces(t, t.Encode("hi\xC3\xA9"
                               "a",
                               false, false)),
            (Strings{kSp + "hi", "<0xC3>", "<0xA9>", "a"}));
  for (const std::string& text : Strings{"hi", " hi", "hi hi  a", "\xC3\xA9\xE4\xB8\xAD\n", ""}) {
    EXPECT_EQ(t.Decode(t.Encode(text, true, false), false), text);
  }
  // The Prepend normalizer runs on every fragment between special tokens.
  EXPECT_EQ(Pieces(t, t.Encode("hi</s>hi", false, true)),
            (Strings{kSp + "hi", "</s>", kSp + "hi"}));
}

TEST(BpeTokenizerTest, MetaspacePreTokenizerSchemes) {
  const json first = {
      {"type", "Metaspace"}, {"replacement", kSp}, {"prepend_scheme", "first"}, {"split", false}};
  ScratchDir dir;
  auto loaded = LoadJson(dir, MetaspaceJson(nullptr, first));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& t = *loaded->tokenizer;
  // Only the text's start gets the ▁, and not when a space is already there.
  EXPECT_EQ(Pieces(t, t.Encode("hi</s>hi", false, true)), (Strings{kSp + "hi", "</s>", "hi"}));
  EXPECT_EQ(Pieces(t, t.Encode(" hi", false, false)), (Strings{kSp + "hi"}));

  const json always = {{"type", "Metaspace"}, {"replacement", kSp}, {"prepend_scheme", "always"}};
  ScratchDir dir2;
  auto split = LoadJson(dir2, MetaspaceJson(nullptr, always));
  ASSERT_TRUE(split.ok()) << split.status().ToString();
  EXPECT_EQ(Pieces(*split->tokenizer, split->tokenizer->Encode("hi</s>hi", false, true)),
            (Strings{kSp + "hi", "</s>", kSp + "hi"}));
}

TEST(BpeTokenizerTest, MalformedTokenizerJsonIsAnErrorNamingTheField) {
  struct Case {
    const char* name;
    std::function<void(json&)> edit;
    const char* expected;
  };
  const Case cases[] = {
      {"merge of unknown tokens", [](json& j) { j["model"]["merges"].push_back("q zz"); },
       "merge 7 (\"q\" + \"zz\"): its second part is not a token"},
      {"merge without a space", [](json& j) { j["model"]["merges"].push_back("abc"); },
       "model.merges[7] is \"abc\""},
      {"vocab id not a number", [](json& j) { j["model"]["vocab"]["x"] = "seven"; },
       "model.vocab[\"x\"] is \"seven\""},
      {"unsupported regex", [](json& j) { j["pre_tokenizer"] = SplitPreTokenizer(R"(\w+)"); },
       "unsupported pre-tokenizer regular expression"},
      {"unsupported normalizer",
       [](json& j) {
         j["normalizer"] = {{"type", "Lowercase"}};
       },
       "normalizer \"Lowercase\" is not supported"},
      {"unsupported pre-tokenizer",
       [](json& j) {
         j["pre_tokenizer"] = {{"type", "Digits"}};
       },
       "pre_tokenizer \"Digits\" is not supported"},
      {"word suffix", [](json& j) { j["model"]["end_of_word_suffix"] = "</w>"; },
       "model.end_of_word_suffix"},
      {"Unigram model", [](json& j) { j["model"]["type"] = "Unigram"; },
       "only \"BPE\" is supported"},
      {"added token without content",
       [](json& j) {
         j["added_tokens"] = json::array({{{"id", 3}}});
       },
       "added_tokens[0]: field 'content'"},
  };
  for (const Case& c : cases) {
    ScratchDir dir;
    json j = ByteLevelJson(TheFixture(), Gpt2PreTokenizer(), json::array());
    c.edit(j);
    auto loaded = LoadJson(dir, j);
    ASSERT_FALSE(loaded.ok()) << c.name;
    EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(loaded.status().message().find(c.expected), std::string::npos)
        << c.name << ": " << loaded.status().message();
    EXPECT_NE(loaded.status().message().find("tokenizer.json"), std::string::npos) << c.name;
  }
}

TEST(BpeTokenizerTest, BosNamedInTheConfigMustExist) {
  ScratchDir dir;
  auto loaded = LoadJson(dir, ByteLevelJson(TheFixture(), Gpt2PreTokenizer(), json::array()),
                         {{"bos_token", "<|nope|>"}});
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("bos_token \"<|nope|>\" is not a token"),
            std::string::npos)
      << loaded.status().message();
}

// ---------------------------------------------------------------------------------------------
// GGUF "gpt2" vocabularies

struct GgufImage {
  std::string bytes;
  std::unique_ptr<GgufFile> file;
};

std::map<std::string, GgufValue> Gpt2Metadata(const Fixture& f, const std::string& pre) {
  std::vector<std::string> merges;
  for (const auto& [a, b] : f.merges) merges.push_back(a + " " + b);
  std::vector<std::string> tokens = f.tokens;
  std::vector<int64_t> types(tokens.size(), 1);
  tokens.push_back("<|begin_of_text|>");
  types.push_back(3);
  tokens.push_back("<|eot_id|>");
  types.push_back(3);
  const auto n = static_cast<uint32_t>(tokens.size());
  return {
      {"general.architecture", GgufString("llama")},
      {"tokenizer.ggml.model", GgufString("gpt2")},
      {"tokenizer.ggml.pre", GgufString(pre)},
      {"tokenizer.ggml.tokens", GgufStringArray(tokens)},
      {"tokenizer.ggml.token_type", GgufIntArray(types)},
      {"tokenizer.ggml.merges", GgufStringArray(merges)},
      {"tokenizer.ggml.bos_token_id", GgufUint32(n - 2)},
      {"tokenizer.ggml.eos_token_id", GgufUint32(n - 1)},
      {"tokenizer.ggml.add_bos_token", GgufBool(true)},
  };
}

Result<LoadedTokenizer> LoadGguf(const std::map<std::string, GgufValue>& metadata,
                                 GgufImage* image) {
  BF_ASSIGN_OR_RETURN(image->bytes, SerializeGguf(metadata, {}));
  BF_ASSIGN_OR_RETURN(image->file,
                      GgufFile::Parse(reinterpret_cast<const uint8_t*>(image->bytes.data()),
                                      image->bytes.size(), "vocab.gguf"));
  return TokenizerFromGguf(*image->file);
}

TEST(BpeTokenizerTest, GgufGpt2Vocabulary) {
  const Fixture f =
      ByteLevelFixture({{"1", "2"}, {"12", "3"}, {" ", "t"}, {"h", "e"}, {" t", "he"}});
  GgufImage image;
  auto loaded = LoadGguf(Gpt2Metadata(f, "llama-bpe"), &image);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& t = *loaded->tokenizer;
  EXPECT_EQ(t.kind(), "bpe");
  EXPECT_EQ(loaded->bos_text, "<|begin_of_text|>");
  EXPECT_EQ(loaded->eos_text, "<|eot_id|>");
  EXPECT_TRUE(t.add_bos_default());
  const std::vector<int32_t> ids = t.Encode("<|begin_of_text|>12345 the", false, true);
  EXPECT_EQ(Pieces(t, ids), (Strings{"<|begin_of_text|>", "123", "4", "5", Spell(" the")}));
  EXPECT_EQ(t.Decode(ids, false), "12345 the");  // BOS is not rendered
  EXPECT_EQ(t.stop_ids(), (std::vector<int32_t>{t.eos_id()}));
}

TEST(BpeTokenizerTest, GgufGpt2Errors) {
  const Fixture f = ByteLevelFixture({{"1", "2"}});
  {
    GgufImage image;
    auto loaded = LoadGguf(Gpt2Metadata(f, "smaug-bpe"), &image);
    ASSERT_FALSE(loaded.ok());
    EXPECT_NE(loaded.status().message().find("vocab.gguf: metadata key 'tokenizer.ggml.pre'"),
              std::string::npos)
        << loaded.status().message();
    EXPECT_NE(loaded.status().message().find("gpt2, default, llama3, llama-bpe, qwen2"),
              std::string::npos);
  }
  {
    auto metadata = Gpt2Metadata(f, "gpt2");
    metadata.erase("tokenizer.ggml.merges");
    GgufImage image;
    auto loaded = LoadGguf(metadata, &image);
    ASSERT_FALSE(loaded.ok());
    EXPECT_NE(loaded.status().message().find("'tokenizer.ggml.merges' not found"),
              std::string::npos);
  }
  {
    auto metadata = Gpt2Metadata(f, "gpt2");
    metadata["tokenizer.ggml.merges"] = GgufStringArray({"12"});
    GgufImage image;
    auto loaded = LoadGguf(metadata, &image);
    ASSERT_FALSE(loaded.ok());
    EXPECT_NE(loaded.status().message().find("entry 0 is \"12\""), std::string::npos)
        << loaded.status().message();
  }
}

}  // namespace
}  // namespace breakfix::engine
