// Loading tokenizers from GGUF metadata and Hugging Face directories: what each source says
// (special ids, BOS, space prefix, chat template in its several forms) and the errors that
// name the file and the field when it says something wrong.

#include "engine/tokenizer_loader.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "breakfix/env.h"
#include "engine/gguf.h"
#include "engine/gguf_writer.h"
#include "testing/scratch_dir.h"

namespace breakfix::engine {
namespace {

const std::string kSp = "\xE2\x96\x81";  // ▁

using test_support::ScratchDir;

// ---------------------------------------------------------------------------------------------
// GGUF

// A SentencePiece-style vocabulary: <unk> <s> </s> <|end|> ▁ a ▁a.
std::map<std::string, GgufValue> LlamaMetadata() {
  return {
      {"general.architecture", GgufString("llama")},
      {"tokenizer.ggml.model", GgufString("llama")},
      {"tokenizer.ggml.tokens",
       GgufStringArray({"<unk>", "<s>", "</s>", "<|end|>", kSp, "a", kSp + "a"})},
      {"tokenizer.ggml.scores", GgufFloatArray({0, 0, 0, 0, -1, -1, -2})},
      {"tokenizer.ggml.token_type", GgufIntArray({2, 3, 3, 3, 1, 1, 1})},
      {"tokenizer.ggml.bos_token_id", GgufUint32(1)},
      {"tokenizer.ggml.eos_token_id", GgufUint32(2)},
      {"tokenizer.ggml.unknown_token_id", GgufUint32(0)},
      {"tokenizer.chat_template", GgufString("{{ '<|user|>' }}{{ '<|end|>' }}")},
  };
}

struct Loaded {
  std::string bytes;
  std::unique_ptr<GgufFile> file;
  Result<LoadedTokenizer> result = Status::Internal("not loaded");
};

std::unique_ptr<Loaded> Load(const std::map<std::string, GgufValue>& metadata) {
  auto out = std::make_unique<Loaded>();
  auto bytes = SerializeGguf(metadata, {});
  if (!bytes.ok()) {
    out->result = bytes.status();
    return out;
  }
  out->bytes = std::move(bytes).value();
  auto file = GgufFile::Parse(reinterpret_cast<const uint8_t*>(out->bytes.data()),
                              out->bytes.size(), "model.gguf");
  if (!file.ok()) {
    out->result = file.status();
    return out;
  }
  out->file = std::move(file).value();
  out->result = TokenizerFromGguf(*out->file);
  return out;
}

TEST(TokenizerLoaderTest, GgufSentencePieceVocabulary) {
  auto loaded = Load(LlamaMetadata());
  ASSERT_TRUE(loaded->result.ok()) << loaded->result.status().ToString();
  const LoadedTokenizer& l = *loaded->result;
  EXPECT_EQ(l.tokenizer->kind(), "spm");
  EXPECT_EQ(l.bos_text, "<s>");
  EXPECT_EQ(l.eos_text, "</s>");
  EXPECT_EQ(l.chat_template, "{{ '<|user|>' }}{{ '<|end|>' }}");
  EXPECT_TRUE(l.tokenizer->add_bos_default());  // the default when the key is absent
  EXPECT_EQ(l.tokenizer->Encode("a", true, false), (std::vector<int32_t>{1, 6}));
  EXPECT_EQ(l.tokenizer->stop_ids(), (std::vector<int32_t>{2, 3}));
}

TEST(TokenizerLoaderTest, GgufOptionalKeys) {
  auto metadata = LlamaMetadata();
  metadata["tokenizer.ggml.add_bos_token"] = GgufBool(false);
  metadata["tokenizer.ggml.add_space_prefix"] = GgufBool(false);
  metadata["tokenizer.ggml.eot_token_id"] = GgufUint32(3);
  metadata["tokenizer.ggml.bos_token_id"] = GgufUint32(0xFFFFFFFFu);  // "none"
  metadata.erase("tokenizer.chat_template");
  auto loaded = Load(metadata);
  ASSERT_TRUE(loaded->result.ok()) << loaded->result.status().ToString();
  const Tokenizer& t = *loaded->result->tokenizer;
  EXPECT_FALSE(t.add_bos_default());
  EXPECT_EQ(t.bos_id(), -1);
  EXPECT_EQ(loaded->result->bos_text, "");
  EXPECT_EQ(loaded->result->chat_template, "");
  EXPECT_EQ(t.Encode("a", true, false), (std::vector<int32_t>{5}));  // no ▁ prefix, no BOS
  EXPECT_EQ(t.stop_ids(), (std::vector<int32_t>{2, 3}));
}

TEST(TokenizerLoaderTest, GgufErrorsNameTheKey) {
  struct Case {
    const char* name;
    std::function<void(std::map<std::string, GgufValue>&)> edit;
    const char* expected;
  };
  const Case cases[] = {
      {"no tokenizer", [](auto& m) { m.erase("tokenizer.ggml.model"); },
       "model.gguf: metadata key 'tokenizer.ggml.model' not found"},
      {"unknown model", [](auto& m) { m["tokenizer.ggml.model"] = GgufString("bert"); },
       "'tokenizer.ggml.model' is \"bert\"; supported are \"llama\""},
      {"model not a string", [](auto& m) { m["tokenizer.ggml.model"] = GgufUint32(7); },
       "'tokenizer.ggml.model'"},
      {"no tokens", [](auto& m) { m.erase("tokenizer.ggml.tokens"); },
       "'tokenizer.ggml.tokens' not found"},
      {"empty tokens", [](auto& m) { m["tokenizer.ggml.tokens"] = GgufStringArray({}); },
       "'tokenizer.ggml.tokens' is empty"},
      {"short types",
       [](auto& m) {
         m["tokenizer.ggml.token_type"] = GgufIntArray({1, 1});
       },
       "'tokenizer.ggml.token_type' has 2 entries, expected 7"},
      {"bad type",
       [](auto& m) {
         m["tokenizer.ggml.token_type"] = GgufIntArray({2, 3, 3, 3, 1, 9, 1});
       },
       "'tokenizer.ggml.token_type' entry 5 is 9"},
      {"short scores", [](auto& m) { m["tokenizer.ggml.scores"] = GgufFloatArray({0}); },
       "'tokenizer.ggml.scores' has 1 entries, expected 7"},
      {"scores of strings", [](auto& m) { m["tokenizer.ggml.scores"] = GgufStringArray({"x"}); },
       "'tokenizer.ggml.scores'"},
      {"bos out of range", [](auto& m) { m["tokenizer.ggml.bos_token_id"] = GgufUint32(40000); },
       "'tokenizer.ggml.bos_token_id' is 40000, outside the vocabulary of 7 tokens"},
      {"add_bos not a bool", [](auto& m) { m["tokenizer.ggml.add_bos_token"] = GgufUint32(1); },
       "'tokenizer.ggml.add_bos_token'"},
      {"template not a string", [](auto& m) { m["tokenizer.chat_template"] = GgufUint32(1); },
       "'tokenizer.chat_template'"},
  };
  for (const Case& c : cases) {
    auto metadata = LlamaMetadata();
    c.edit(metadata);
    auto loaded = Load(metadata);
    ASSERT_FALSE(loaded->result.ok()) << c.name;
    EXPECT_NE(loaded->result.status().message().find(c.expected), std::string::npos)
        << c.name << ": " << loaded->result.status().message();
    EXPECT_NE(loaded->result.status().message().find("model.gguf"), std::string::npos) << c.name;
  }
}

// ---------------------------------------------------------------------------------------------
// Hugging Face directories

// A minimal SentencePiece-style tokenizer.json (no merges needed for the configuration tests).
const char kTokenizerJson[] = R"({
  "added_tokens": [
    {"id": 0, "content": "<unk>", "special": true},
    {"id": 1, "content": "<s>", "special": true},
    {"id": 2, "content": "</s>", "special": true},
    {"id": 5, "content": "<|end|>", "special": true}
  ],
  "normalizer": {"type": "Sequence", "normalizers": [
    {"type": "Prepend", "prepend": "\u2581"},
    {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
  "pre_tokenizer": null,
  "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true,
            "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "\u2581": 3, "a": 4},
            "merges": []}
})";

TEST(TokenizerLoaderTest, HfConfigFields) {
  ScratchDir dir;
  dir.Write("tokenizer.json", kTokenizerJson);
  dir.Write("tokenizer_config.json", R"({
    "bos_token": {"content": "<s>", "lstrip": false},
    "eos_token": "<|end|>",
    "add_bos_token": false,
    "chat_template": [
      {"name": "tool_use", "template": "{{ 'tools' }}"},
      {"name": "default", "template": "{{ '<|im_start|>' }}"}
    ]
  })");
  auto loaded = TokenizerFromHfDir(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->bos_text, "<s>");
  EXPECT_EQ(loaded->eos_text, "<|end|>");
  EXPECT_EQ(loaded->chat_template, "{{ '<|im_start|>' }}");
  EXPECT_FALSE(loaded->tokenizer->add_bos_default());
  EXPECT_EQ(loaded->tokenizer->eos_id(), 5);
  EXPECT_EQ(loaded->tokenizer->stop_ids(), (std::vector<int32_t>{5, 2}));
  EXPECT_EQ(loaded->tokenizer->Encode("a a<|end|>", true, true),
            (std::vector<int32_t>{3, 4, 3, 4, 5}));
}

TEST(TokenizerLoaderTest, HfTemplateListWithoutDefaultAndSeparateTemplateFile) {
  ScratchDir dir;
  dir.Write("tokenizer.json", kTokenizerJson);
  dir.Write("tokenizer_config.json",
            R"({"chat_template": [{"name": "rag", "template": "{{ 'rag' }}"}]})");
  auto loaded = TokenizerFromHfDir(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->chat_template, "");
  EXPECT_TRUE(loaded->tokenizer->add_bos_default());  // SentencePiece-style default

  dir.Write("chat_template.jinja", "{{ '<|start_header_id|>' }}");
  auto with_file = TokenizerFromHfDir(dir.path());
  ASSERT_TRUE(with_file.ok()) << with_file.status().ToString();
  EXPECT_EQ(with_file->chat_template, "{{ '<|start_header_id|>' }}");
}

TEST(TokenizerLoaderTest, HfErrorsNameTheFileAndField) {
  struct Case {
    const char* config;
    const char* expected;
  };
  const Case cases[] = {
      {"{\n  \"bos_token\": \"<s>\",\n  oops\n}", "line 3"},
      {"[1, 2]", "the top level is array, expected an object"},
      {R"({"chat_template": 7})", "field 'chat_template' is number"},
      {R"({"chat_template": [{"name": "default"}]})", "chat_template[0] is not an object"},
      {R"({"bos_token": 3})", "field 'bos_token' is number"},
      {R"({"eos_token": {"text": "</s>"}})", "field 'eos_token' is object"},
      {R"({"add_bos_token": "yes"})", "field 'add_bos_token' is string"},
      {R"({"added_tokens_decoder": {"x1": {"content": "<a>"}}})",
       "added_tokens_decoder[\"x1\"]: the key is not a token id"},
      {R"({"added_tokens_decoder": {"7": {"special": true}}})",
       "added_tokens_decoder[\"7\"]: field 'content'"},
      {R"({"added_tokens_decoder": {"7": {"content": "<a>", "special": "no"}}})",
       "field 'special' is string"},
      {R"({"eos_token": "<nope>"})", "eos_token \"<nope>\" is not a token"},
  };
  for (const Case& c : cases) {
    ScratchDir dir;
    dir.Write("tokenizer.json", kTokenizerJson);
    dir.Write("tokenizer_config.json", c.config);
    auto loaded = TokenizerFromHfDir(dir.path());
    ASSERT_FALSE(loaded.ok()) << c.config;
    EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument) << c.config;
    EXPECT_NE(loaded.status().message().find(c.expected), std::string::npos)
        << c.config << " -> " << loaded.status().message();
    EXPECT_NE(loaded.status().message().find("tokenizer_config.json"), std::string::npos)
        << loaded.status().message();
  }
}

TEST(TokenizerLoaderTest, HfDirectoryProblems) {
  auto missing = TokenizerFromHfDir("/nonexistent/breakfix/model");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/breakfix/model"), std::string::npos);

  ScratchDir empty;
  auto none = TokenizerFromHfDir(empty.path());
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("neither tokenizer.json nor tokenizer.model"),
            std::string::npos);

  ScratchDir broken;
  broken.Write("tokenizer.json", "{\"model\": ");
  auto bad = TokenizerFromHfDir(broken.path());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("tokenizer.json: not valid JSON"), std::string::npos)
      << bad.status().message();

  ScratchDir shapeless;
  shapeless.Write("tokenizer.json", "{\"model\": 3}");
  auto shape = TokenizerFromHfDir(shapeless.path());
  ASSERT_FALSE(shape.ok());
  EXPECT_NE(shape.status().message().find("expected an object with a \"model\" object"),
            std::string::npos);

  ScratchDir model_only;
  model_only.Write("tokenizer.model", "not a protobuf at all");
  auto proto = TokenizerFromHfDir(model_only.path());
  ASSERT_FALSE(proto.ok());
  EXPECT_NE(proto.status().message().find("tokenizer.model"), std::string::npos)
      << proto.status().message();
}

// A Phi-3-like directory without tokenizer.json: the real Llama 2 tokenizer.model (linked, not
// copied) with the added tokens and template in tokenizer_config.json.
TEST(TokenizerLoaderTest, HfDirectoryWithTokenizerModel) {
  const std::optional<std::string> data = Env::Default()->GetVar("BREAKFIX_TEST_DATA");
  if (!data) GTEST_SKIP() << "BREAKFIX_TEST_DATA is unset; set it to the data directory to run";
  const std::string model = *data + "/llama2-tokenizer/tokenizer.model";
  ASSERT_TRUE(std::filesystem::is_regular_file(model))
      << "BREAKFIX_TEST_DATA is set but the data file is missing: " << model;
  ScratchDir dir;
  std::error_code ec;
  std::filesystem::create_symlink(model, dir.path() + "/tokenizer.model", ec);
  ASSERT_FALSE(ec) << ec.message();
  dir.Write("tokenizer_config.json", R"({
    "add_bos_token": true,
    "bos_token": "<s>",
    "eos_token": "<|endoftext|>",
    "added_tokens_decoder": {
      "32000": {"content": "<|endoftext|>", "special": true},
      "32001": {"content": "<|assistant|>", "special": true, "rstrip": true},
      "32007": {"content": "<|end|>", "special": true, "rstrip": true},
      "32010": {"content": "<|user|>", "special": true, "rstrip": true}
    },
    "chat_template": "{% for m in messages %}{{'<|user|>\n' + m['content'] + '<|end|>\n'}}{% endfor %}"
  })");
  auto loaded = TokenizerFromHfDir(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& t = *loaded->tokenizer;
  EXPECT_EQ(t.kind(), "sentencepiece");
  EXPECT_EQ(loaded->eos_text, "<|endoftext|>");
  EXPECT_EQ(loaded->bos_text, "<s>");
  auto kind = DetectChatTemplate(loaded->chat_template);
  ASSERT_TRUE(kind.ok()) << kind.status().ToString();
  EXPECT_EQ(*kind, ChatTemplateKind::kPhi3);
  // rstrip: the newline after <|user|> is swallowed, as the Hugging Face tokenizer does.
  const std::vector<int32_t> ids = t.Encode("<|user|>\nHello<|end|>\n<|assistant|>\n", true, true);
  const std::vector<int32_t> hello = t.Encode("Hello", false, false);
  std::vector<int32_t> expected = {1, 32010};
  expected.insert(expected.end(), hello.begin(), hello.end());
  expected.push_back(32007);
  expected.push_back(32001);
  EXPECT_EQ(ids, expected);
}

}  // namespace
}  // namespace breakfix::engine
