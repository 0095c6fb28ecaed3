// Conformance against real vocabularies in BREAKFIX_TEST_DATA (nothing is copied from there):
//
//   * llama.cpp's tokenizer test vectors: 46 strings (ggml-vocab-*.gguf.inp) and the ids
//     llama.cpp produces for them without BOS (.out), for the Llama-2 SentencePiece vocabulary
//     and the Phi-3 one. Our SentencePiece-style tokenizer must produce exactly those ids.
//   * the Llama 2 tokenizer.model through libsentencepiece, which must agree with them too
//     (it is the same vocabulary).
//   * round trips: decode(encode(s)) == s, and streaming TokenBytes concatenates to the same.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "breakfix/env.h"
#include "engine/gguf.h"
#include "engine/tokenizer_loader.h"

namespace breakfix::engine {
namespace {

std::optional<std::string> DataDir() { return Env::Default()->GetVar("BREAKFIX_TEST_DATA"); }

#define REQUIRE_DATA_DIR(dir)                                                           \
  const std::optional<std::string> dir = DataDir();                                     \
  if (!dir) {                                                                           \
    GTEST_SKIP() << "BREAKFIX_TEST_DATA is unset; set it to the data directory to run"; \
  }

// Fails the test when the variable is set but the file is missing.
bool RequireFile(const std::string& path) {
  if (std::filesystem::is_regular_file(path)) return true;
  ADD_FAILURE() << "BREAKFIX_TEST_DATA is set but the data file is missing: " << path;
  return false;
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

struct VocabCase {
  std::string text;
  std::vector<int32_t> ids;
};

// The .inp file is the strings, each followed by "\n__ggml_vocab_test__\n"; the .out file has
// one line of space-separated ids per string.
std::vector<VocabCase> ReadVocabCases(const std::string& inp_path, const std::string& out_path) {
  const std::string inp = ReadBytes(inp_path);
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<VocabCase> cases;
  size_t start = 0;
  for (size_t pos = inp.find(separator); pos != std::string::npos;
       pos = inp.find(separator, start)) {
    cases.push_back({inp.substr(start, pos - start), {}});
    start = pos + separator.size();
  }
  EXPECT_EQ(start, inp.size()) << inp_path << ": text after the last separator";
  std::istringstream out(ReadBytes(out_path));
  std::string line;
  size_t i = 0;
  while (std::getline(out, line)) {
    if (i >= cases.size()) {
      ADD_FAILURE() << out_path << ": more lines than " << inp_path << " has strings";
      break;
    }
    std::istringstream ids(line);
    int32_t id = 0;
    while (ids >> id) cases[i].ids.push_back(id);
    ++i;
  }
  EXPECT_EQ(i, cases.size()) << out_path << ": one line per string expected";
  return cases;
}

std::string Ids(const std::vector<int32_t>& ids) {
  std::string out;
  for (int32_t id : ids) out += " " + std::to_string(id);
  return out;
}

// Encodes every case without BOS and compares; then checks both round trips.
void ExpectConformance(const Tokenizer& tokenizer, const std::vector<VocabCase>& cases,
                       const std::string& what) {
  ASSERT_EQ(cases.size(), 46u) << what;
  for (size_t i = 0; i < cases.size(); ++i) {
    const VocabCase& c = cases[i];
    const std::vector<int32_t> ids = tokenizer.Encode(c.text, /*add_bos=*/false,
                                                      /*parse_special=*/false);
    EXPECT_EQ(Ids(ids), Ids(c.ids))
        << what << " case " << i << ": " << testing::PrintToString(c.text);
    // Every case round-trips: the vocabularies have all 256 byte tokens and no normalisation,
    // and the decoder removes exactly the one space the encoder put in front.
    EXPECT_EQ(tokenizer.Decode(ids, /*skip_special=*/false), c.text) << what << " case " << i;
    std::string streamed;
    for (size_t k = 0; k < ids.size(); ++k) streamed += tokenizer.TokenBytes(ids[k], k == 0);
    EXPECT_EQ(streamed, c.text) << what << " case " << i;
  }
}

Result<LoadedTokenizer> LoadGguf(const std::string& path) {
  BF_ASSIGN_OR_RETURN(auto gguf, GgufFile::Open(path));
  return TokenizerFromGguf(*gguf);
}

TEST(TokenizerConformanceTest, LlamaSpmGgufMatchesLlamaCpp) {
  REQUIRE_DATA_DIR(dir);
  const std::string base = *dir + "/llamacpp-vocab-gguf/ggml-vocab-llama-spm.gguf";
  if (!RequireFile(base) || !RequireFile(base + ".inp") || !RequireFile(base + ".out")) return;
  auto loaded = LoadGguf(base);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& t = *loaded->tokenizer;
  EXPECT_EQ(t.kind(), "spm");
  EXPECT_EQ(t.vocab_size(), 32000);
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(loaded->bos_text, "<s>");
  EXPECT_EQ(loaded->eos_text, "</s>");
  EXPECT_TRUE(loaded->chat_template.empty());
  EXPECT_EQ(t.stop_ids(), std::vector<int32_t>{2});
  ExpectConformance(t, ReadVocabCases(base + ".inp", base + ".out"), "llama-spm");

  // BOS is added when asked for (the vocabulary wants it), and never rendered.
  const std::vector<int32_t> with_bos = t.Encode("Hello world", true, false);
  EXPECT_EQ(Ids(with_bos), " 1 15043 3186");
  EXPECT_EQ(t.Decode(with_bos, false), "Hello world");
  // With parse_special the textual <s> becomes the control token; without, it is text.
  EXPECT_EQ(Ids(t.Encode("<s>Hi", false, true)), Ids({1}) + Ids(t.Encode("Hi", false, false)));
  EXPECT_NE(t.Encode("<s>Hi", false, false).front(), 1);
  EXPECT_TRUE(t.IsSpecial(1));
  EXPECT_FALSE(t.IsSpecial(15043));
  EXPECT_EQ(t.Piece(15043), "\xE2\x96\x81Hello");
  EXPECT_EQ(t.Piece(13), "<0x0A>");
  EXPECT_EQ(t.Piece(-1), "");
  EXPECT_EQ(t.Piece(32000), "");
}

TEST(TokenizerConformanceTest, Phi3GgufMatchesLlamaCpp) {
  REQUIRE_DATA_DIR(dir);
  const std::string base = *dir + "/llamacpp-vocab-gguf/ggml-vocab-phi-3.gguf";
  if (!RequireFile(base) || !RequireFile(base + ".inp") || !RequireFile(base + ".out")) return;
  auto loaded = LoadGguf(base);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& t = *loaded->tokenizer;
  EXPECT_EQ(t.vocab_size(), 32064);
  EXPECT_EQ(t.eos_id(), 32000);
  ExpectConformance(t, ReadVocabCases(base + ".inp", base + ".out"), "phi-3");

  // EOS (<|endoftext|>), then the end-of-turn tokens the vocabulary has: <|end|> and </s>.
  EXPECT_EQ(t.stop_ids(), (std::vector<int32_t>{32000, 32007, 2}));
  // Control tokens are parsed only on request; a space prefix follows each of them.
  EXPECT_EQ(Ids(t.Encode("<|user|>\nHi<|end|>", false, true)),
            Ids({32010}) + Ids(t.Encode("\nHi", false, false)) + Ids({32007}));
  EXPECT_EQ(t.Decode(t.Encode("<|user|>Hi<|end|>", false, true), /*skip_special=*/true), "Hi");
  EXPECT_EQ(t.Decode(t.Encode("<|user|>Hi<|end|>", false, true), /*skip_special=*/false),
            "<|user|> Hi<|end|>");
  EXPECT_EQ(t.TokenBytes(32007, false), "<|end|>");
  EXPECT_EQ(t.TokenBytes(32000, false), "");  // EOS is never rendered
}

TEST(TokenizerConformanceTest, SentencePieceModelAgreesWithLlamaCpp) {
  REQUIRE_DATA_DIR(dir);
  const std::string model_dir = *dir + "/llama2-tokenizer";
  const std::string base = *dir + "/llamacpp-vocab-gguf/ggml-vocab-llama-spm.gguf";
  if (!RequireFile(model_dir + "/tokenizer.model") || !RequireFile(base + ".inp") ||
      !RequireFile(base + ".out")) {
    return;
  }
  auto loaded = TokenizerFromHfDir(model_dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& t = *loaded->tokenizer;
  EXPECT_EQ(t.kind(), "sentencepiece");
  EXPECT_EQ(t.vocab_size(), 32000);
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_TRUE(t.add_bos_default());
  ExpectConformance(t, ReadVocabCases(base + ".inp", base + ".out"), "tokenizer.model");
  EXPECT_EQ(Ids(t.Encode("Hello world", true, false)), " 1 15043 3186");
  EXPECT_EQ(Ids(t.Encode("</s>x", false, true)), Ids({2}) + Ids(t.Encode("x", false, false)));
}

// The tiny random Llama-2 GGUF carries the same 32,000-token vocabulary.
TEST(TokenizerConformanceTest, TinyRandomLlamaGgufHasTheLlama2Vocabulary) {
  REQUIRE_DATA_DIR(dir);
  const std::string model = *dir + "/llama-2-tiny-random-gguf/llama-2-tiny-random.gguf";
  const std::string base = *dir + "/llamacpp-vocab-gguf/ggml-vocab-llama-spm.gguf";
  if (!RequireFile(model) || !RequireFile(base + ".inp") || !RequireFile(base + ".out")) return;
  auto loaded = LoadGguf(model);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ExpectConformance(*loaded->tokenizer, ReadVocabCases(base + ".inp", base + ".out"),
                    "llama-2-tiny-random");
}

// stories260K: a 512-piece vocabulary (most words spelled from pieces and byte tokens).
TEST(TokenizerConformanceTest, Stories260KVocabularyRoundTrips) {
  REQUIRE_DATA_DIR(dir);
  const std::string model = *dir + "/tinyllamas-stories260K/stories260K.gguf";
  if (!RequireFile(model)) return;
  auto loaded = LoadGguf(model);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& t = *loaded->tokenizer;
  EXPECT_EQ(t.vocab_size(), 512);
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  for (const std::string text : {"Once upon a time, there was a little girl named Lily.",
                                 "  Zebra! \xE2\x9C\x85 \xE4\xB8\xAD\n\tend"}) {
    const std::vector<int32_t> ids = t.Encode(text, true, false);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids.front(), 1);
    for (int32_t id : ids) EXPECT_LT(id, 512);
    EXPECT_EQ(t.Decode(ids, false), text);
  }
}

}  // namespace
}  // namespace breakfix::engine
