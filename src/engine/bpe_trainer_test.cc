// The byte-level BPE trainer: what it writes loads through the engine's own tokenizer loader,
// round-trips any bytes, learns merges in frequency order with the documented tie-breaking,
// respects the vocabulary size and min_frequency, is deterministic, makes special tokens single
// ids, and writes a chat template that is recognised as the one asked for.
#include "engine/bpe_trainer.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "breakfix/engine.h"
#include "breakfix/env.h"
#include "engine/bpe_tokenizer.h"
#include "engine/tokenizer_loader.h"
#include "testing/scratch_dir.h"

namespace breakfix::engine {
namespace {

using nlohmann::json;
using Strings = std::vector<std::string>;

using test_support::ScratchDir;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Text spelled in GPT-2's byte alphabet (" the" -> "Ġthe").
std::string Spell(std::string_view bytes) {
  std::string out;
  for (char c : bytes) AppendUtf8(ByteLevelChar(static_cast<uint8_t>(c)), &out);
  return out;
}

// A small corpus with a skewed word distribution, so that "the" and "and" dominate.
Strings Corpus() {
  const Strings subjects = {"the cat", "the dog", "a bird", "the old man", "my sister"};
  const Strings verbs = {"sat on", "ran to", "looked at", "jumped over", "talked to"};
  const Strings objects = {"the mat", "the house", "the river", "a tree", "the garden"};
  Strings texts;
  for (const std::string& s : subjects) {
    for (const std::string& v : verbs) {
      for (const std::string& o : objects) {
        texts.push_back("Once upon a time " + s + " " + v + " " + o + " and the sun was warm.");
      }
    }
  }
  texts.push_back("Numbers like 12345 and 2024, symbols like $%& and caf\xC3\xA9 na\xC3\xAFve.");
  return texts;
}

Result<LoadedTokenizer> TrainAndLoad(const Strings& texts, const BpeTrainOptions& options,
                                     const std::string& dir) {
  BF_RETURN_IF_ERROR(TrainBpeTokenizer(texts, options, dir));
  return TokenizerFromHfDir(dir);
}

Strings Pieces(const Tokenizer& t, const std::vector<int32_t>& ids) {
  Strings out;
  for (int32_t id : ids) out.push_back(t.Piece(id));
  return out;
}

// The corpus above has pairs seen twice or more for about 90 merges; 340 stays below that.
BpeTrainOptions SmallOptions() {
  BpeTrainOptions o;
  o.vocab_size = 340;
  return o;
}

TEST(BpeTrainerTest, LoaderLoadsTheOutputUnchanged) {
  ScratchDir dir;
  auto loaded = TrainAndLoad(Corpus(), SmallOptions(), dir.File("tok"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& t = *loaded->tokenizer;
  EXPECT_EQ(t.kind(), "bpe");
  EXPECT_EQ(t.vocab_size(), 340);
  // Ids: <|endoftext|>, then chatml's markers, then the 256 bytes, then merges.
  EXPECT_EQ(t.Piece(0), "<|endoftext|>");
  EXPECT_EQ(t.Piece(1), "<|im_start|>");
  EXPECT_EQ(t.Piece(2), "<|im_end|>");
  EXPECT_EQ(t.Piece(3), Spell(std::string(1, '\0')));
  EXPECT_EQ(t.Piece(3 + ' '), Spell(" "));
  EXPECT_EQ(t.eos_id(), 0);
  EXPECT_EQ(t.bos_id(), -1);
  EXPECT_FALSE(t.add_bos_default());
  EXPECT_EQ(loaded->eos_text, "<|endoftext|>");
  // Every merge joins two tokens into one (the loader checked that) and made one new token.
  const json j = json::parse(ReadAll(dir.File("tok/tokenizer.json")));
  EXPECT_EQ(j["model"]["type"], "BPE");
  EXPECT_EQ(j["model"]["merges"].size(), 340u - 3 - 256);
}

TEST(BpeTrainerTest, RoundTripsArbitraryBytes) {
  ScratchDir dir;
  auto loaded = TrainAndLoad(Corpus(), SmallOptions(), dir.File("tok"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& t = *loaded->tokenizer;
  const Strings samples = {
      "",
      "the cat sat on the mat",
      "  leading, trailing  \n\n\ttabs\r\n",
      "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C",  // 你好，世界
      "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9",  // emoji
      "stray \xFF\xFE bytes and a cut sequence \xC3",
      "overlong \xC0\xAF and surrogate \xED\xA0\x80 and NUL \0 inside",
      "<|endoftext|> only text without parse_special",
  };
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  Strings cases = samples;
  cases.push_back(all_bytes);
  cases.push_back(std::string("NUL \0 inside", 12));
  for (const std::string& text : cases) {
    const std::vector<int32_t> ids = t.Encode(text, false, false);
    EXPECT_EQ(t.Decode(ids, false), text);
    std::string streamed;
    for (size_t i = 0; i < ids.size(); ++i) streamed += t.TokenBytes(ids[i], i == 0);
    EXPECT_EQ(streamed, text);
  }
}

TEST(BpeTrainerTest, FrequentWordsBecomeSingleTokens) {
  ScratchDir dir;
  auto loaded = TrainAndLoad(Corpus(), SmallOptions(), dir.File("tok"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& t = *loaded->tokenizer;
  for (const std::string word : {" the", " and", "Once", " upon", " time", " sun"}) {
    EXPECT_EQ(Pieces(t, t.Encode(word, false, false)), Strings{Spell(word)}) << word;
  }
  // A word seen once stays in pieces.
  EXPECT_GT(t.Encode(" na\xC3\xAFve", false, false).size(), 1u);
}

TEST(BpeTrainerTest, MergesFollowPairFrequency) {
  // The classic example: hug x10, pug x5, pun x12, bun x4, hugs x5. Pair counts: u+g 20,
  // p+u 17, u+n 16, h+u 15, ... so u+g merges first, then u+n (16; p+u fell to 12 once "ug"
  // took pug's u), then h+ug (15).
  Strings texts;
  const std::vector<std::pair<std::string, int>> words = {
      {"hug", 10}, {"pug", 5}, {"pun", 12}, {"bun", 4}, {"hugs", 5}};
  for (const auto& [w, n] : words) texts.insert(texts.end(), n, w);  // one word per text
  ScratchDir dir;
  BpeTrainOptions o;
  o.vocab_size = 1000;
  o.min_frequency = 1;
  ASSERT_TRUE(TrainBpeTokenizer(texts, o, dir.File("tok")).ok());
  const json merges = json::parse(ReadAll(dir.File("tok/tokenizer.json")))["model"]["merges"];
  ASSERT_GE(merges.size(), 3u);
  EXPECT_EQ(merges[0], "u g");
  EXPECT_EQ(merges[1], "u n");
  EXPECT_EQ(merges[2], "h ug");
  // Merging stops when every piece is one token: hug, pug, pun, bun, hugs need few merges.
  EXPECT_LE(merges.size(), 8u);
}

// The obvious quadratic algorithm: recount every pair after every merge. The trainer keeps
// counts incrementally; both must give the same merges.
Strings NaiveMerges(const Strings& words, int first_byte, int vocab_size, int min_frequency) {
  std::vector<std::string> tokens(static_cast<size_t>(first_byte));
  for (int b = 0; b < 256; ++b) tokens.push_back(Spell(std::string(1, static_cast<char>(b))));
  std::map<std::string, int> id_of;
  for (size_t i = static_cast<size_t>(first_byte); i < tokens.size(); ++i) {
    id_of[tokens[i]] = static_cast<int>(i);
  }
  std::map<std::vector<int>, int64_t> counts;
  for (const std::string& w : words) {
    std::vector<int> s;
    for (char c : w) s.push_back(first_byte + static_cast<uint8_t>(c));
    ++counts[s];
  }
  Strings merges;
  std::set<std::pair<int, int>> seen;
  while (static_cast<int>(tokens.size()) < vocab_size) {
    std::map<std::pair<int, int>, int64_t> pairs;
    for (const auto& [s, n] : counts) {
      for (size_t i = 0; i + 1 < s.size(); ++i) pairs[{s[i], s[i + 1]}] += n;
    }
    if (pairs.empty()) break;
    auto best = pairs.begin();  // map order: ties go to the smallest pair
    for (auto it = pairs.begin(); it != pairs.end(); ++it) {
      if (it->second > best->second) best = it;
    }
    if (best->second < min_frequency) break;
    const auto [a, b] = best->first;
    const std::string text = tokens[static_cast<size_t>(a)] + tokens[static_cast<size_t>(b)];
    if (!id_of.count(text)) {
      id_of[text] = static_cast<int>(tokens.size());
      tokens.push_back(text);
    }
    const int merged = id_of[text];
    if (seen.insert(best->first).second) {
      merges.push_back(tokens[static_cast<size_t>(a)] + " " + tokens[static_cast<size_t>(b)]);
    }
    std::map<std::vector<int>, int64_t> next;
    for (const auto& [s, n] : counts) {
      std::vector<int> out;
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          out.push_back(merged);
          ++i;
        } else {
          out.push_back(s[i]);
        }
      }
      next[out] += n;
    }
    counts = std::move(next);
  }
  return merges;
}

TEST(BpeTrainerTest, MatchesTheNaiveAlgorithmOnRandomWords) {
  // Words of letters only: the GPT-2 pattern keeps each as one piece, as the naive version does.
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    Random rng(seed);
    const int letters = 2 + static_cast<int>(rng.Below(8));
    Strings words;
    for (int i = 0; i < 400; ++i) {
      std::string w;
      const int len = 1 + static_cast<int>(rng.Below(10));
      for (int k = 0; k < len; ++k) w.push_back(static_cast<char>('a' + rng.Below(letters)));
      words.push_back(w);
    }
    BpeTrainOptions o;
    o.vocab_size = 259 + 40 + static_cast<int>(rng.Below(300));
    o.min_frequency = 1 + static_cast<int>(rng.Below(3));
    ScratchDir dir;
    ASSERT_TRUE(TrainBpeTokenizer(words, o, dir.File("tok")).ok());
    const json merges = json::parse(ReadAll(dir.File("tok/tokenizer.json")))["model"]["merges"];
    const Strings expected = NaiveMerges(words, 3, o.vocab_size, o.min_frequency);
    ASSERT_FALSE(expected.empty());
    EXPECT_EQ(merges.get<Strings>(), expected) << "seed " << seed;
  }
}

TEST(BpeTrainerTest, TiesGoToThePairOfEarlierTokens) {
  // "ab" and " cd" each once: (Ġ,c), (a,b), (c,d) all count 1. Byte ids follow byte order, so
  // Ġ (the space, 0x20) < a < c: first "Ġ c", then "a b" (its left id is a byte's, smaller than
  // the new "Ġc"), then "Ġc d".
  ScratchDir dir;
  BpeTrainOptions o;
  o.min_frequency = 1;
  ASSERT_TRUE(TrainBpeTokenizer({"ab cd"}, o, dir.File("tok")).ok());
  const json merges = json::parse(ReadAll(dir.File("tok/tokenizer.json")))["model"]["merges"];
  EXPECT_EQ(merges, json::array({Spell(" ") + " c", "a b", Spell(" c") + " d"}));
}

TEST(BpeTrainerTest, VocabSizeAndMinFrequencyAreRespected) {
  ScratchDir dir;
  for (int size : {260, 300, 333}) {
    BpeTrainOptions o = SmallOptions();
    o.vocab_size = size;
    auto loaded = TrainAndLoad(Corpus(), o, dir.File("v" + std::to_string(size)));
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ(loaded->tokenizer->vocab_size(), size);
  }
  // A corpus that runs out of pairs seen twice stops short of a large vocabulary.
  BpeTrainOptions large = SmallOptions();
  large.vocab_size = 5000;
  auto short_of = TrainAndLoad(Corpus(), large, dir.File("large"));
  ASSERT_TRUE(short_of.ok()) << short_of.status().ToString();
  EXPECT_GT(short_of->tokenizer->vocab_size(), 333);
  EXPECT_LT(short_of->tokenizer->vocab_size(), 5000);
  // Pairs seen fewer than min_frequency times never merge, even with room to spare: "xq" once,
  // "zz" three times.
  BpeTrainOptions o;
  o.vocab_size = 5000;
  o.min_frequency = 2;
  auto loaded = TrainAndLoad({"xq", "zz", "zz", "zz"}, o, dir.File("minfreq"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const json merges = json::parse(ReadAll(dir.File("minfreq/tokenizer.json")))["model"]["merges"];
  EXPECT_EQ(merges, json::array({"z z"}));
  EXPECT_EQ(loaded->tokenizer->vocab_size(), 3 + 256 + 1);
  // No text at all: bytes and special tokens only, still a working tokenizer.
  auto empty = TrainAndLoad({}, o, dir.File("empty"));
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->tokenizer->vocab_size(), 3 + 256);
  EXPECT_EQ(empty->tokenizer->Decode(empty->tokenizer->Encode("hi!", false, false), false), "hi!");
}

TEST(BpeTrainerTest, OutputIsDeterministicAndOrderFree) {
  ScratchDir dir;
  ASSERT_TRUE(TrainBpeTokenizer(Corpus(), SmallOptions(), dir.File("a")).ok());
  ASSERT_TRUE(TrainBpeTokenizer(Corpus(), SmallOptions(), dir.File("b")).ok());
  Strings reversed = Corpus();
  std::reverse(reversed.begin(), reversed.end());
  ASSERT_TRUE(TrainBpeTokenizer(reversed, SmallOptions(), dir.File("c")).ok());
  for (const char* file : {"/tokenizer.json", "/tokenizer_config.json"}) {
    const std::string a = ReadAll(dir.File("a") + file);
    ASSERT_FALSE(a.empty());
    EXPECT_EQ(a, ReadAll(dir.File("b") + file)) << file;
    EXPECT_EQ(a, ReadAll(dir.File("c") + file)) << file;
  }
}

TEST(BpeTrainerTest, SpecialTokensEncodeAsSingleIds) {
  ScratchDir dir;
  BpeTrainOptions o = SmallOptions();
  o.special_tokens = {"<|endoftext|>", "<|pad|>", "<tool>"};
  // A special token's text inside the corpus is cut out, never learned as merges.
  Strings texts = Corpus();
  for (int i = 0; i < 20; ++i) texts.push_back("<|pad|><|pad|><tool>");
  auto loaded = TrainAndLoad(texts, o, dir.File("tok"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& t = *loaded->tokenizer;
  const auto ids =
      t.Encode("<|im_start|>user\nthe cat<|im_end|>\n<|pad|><tool><|endoftext|>", false, true);
  EXPECT_EQ(ids.front(), 3);  // <|im_start|> follows the three listed tokens
  EXPECT_NE(std::find(ids.begin(), ids.end(), 4), ids.end());  // <|im_end|>
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 1), 1);         // <|pad|>
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 2), 1);         // <tool>
  EXPECT_EQ(ids.back(), 0);
  for (int32_t id : {0, 1, 2, 3, 4}) EXPECT_TRUE(t.IsSpecial(id)) << id;
  // End-of-turn tokens stop generation.
  EXPECT_NE(std::find(t.stop_ids().begin(), t.stop_ids().end(), 0), t.stop_ids().end());
  EXPECT_NE(std::find(t.stop_ids().begin(), t.stop_ids().end(), 4), t.stop_ids().end());
  // Nothing was learned from "<|pad|>" (every merge is of ordinary text).
  const json merges = json::parse(ReadAll(dir.File("tok/tokenizer.json")))["model"]["merges"];
  for (const json& m : merges) {
    EXPECT_EQ(m.get<std::string>().find("pad"), std::string::npos) << m;
  }
}

TEST(BpeTrainerTest, BosIsAddedByDefaultWhenSet) {
  ScratchDir dir;
  BpeTrainOptions o = SmallOptions();
  o.special_tokens = {};
  o.bos_token = "<s>";
  o.eos_token = "</s>";
  o.chat_template = "llama2";
  auto loaded = TrainAndLoad(Corpus(), o, dir.File("tok"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& t = *loaded->tokenizer;
  EXPECT_EQ(t.bos_id(), 0);
  EXPECT_EQ(t.eos_id(), 1);
  EXPECT_TRUE(t.add_bos_default());
  EXPECT_EQ(loaded->bos_text, "<s>");
  EXPECT_EQ(t.Encode("the", true, false).front(), 0);
  EXPECT_EQ(t.Piece(2), Spell(std::string(1, '\0')));  // no template markers for llama2
}

TEST(BpeTrainerTest, ChatTemplateIsDetectedAsRequested) {
  const std::vector<ChatTemplateKind> kinds = {
      ChatTemplateKind::kPhi3,   ChatTemplateKind::kLlama2,  ChatTemplateKind::kLlama3,
      ChatTemplateKind::kChatML, ChatTemplateKind::kMistral, ChatTemplateKind::kZephyr};
  const std::vector<Message> chat = {{Role::kSystem, "Be brief."},
                                     {Role::kUser, "Where did the cat sit?"},
                                     {Role::kAssistant, "On the mat."},
                                     {Role::kUser, "And the dog?"}};
  for (ChatTemplateKind kind : kinds) {
    const std::string name = ChatTemplateName(kind);
    ScratchDir dir;
    BpeTrainOptions o = SmallOptions();
    o.chat_template = name;
    o.bos_token = kind == ChatTemplateKind::kLlama3 ? "<|begin_of_text|>" : "<s>";
    o.eos_token = kind == ChatTemplateKind::kLlama3 ? "<|end_of_text|>" : "</s>";
    auto loaded = TrainAndLoad(Corpus(), o, dir.File("tok"));
    ASSERT_TRUE(loaded.ok()) << name << ": " << loaded.status().ToString();
    auto detected = DetectChatTemplate(loaded->chat_template);
    ASSERT_TRUE(detected.ok()) << name << ": " << detected.status().ToString();
    EXPECT_EQ(*detected, kind) << name;
    auto jinja = BuiltinChatTemplateJinja(name);
    ASSERT_TRUE(jinja.ok());
    EXPECT_EQ(loaded->chat_template, *jinja);
    // A rendered prompt tokenizes with every marker and BOS/EOS as a single special id, and
    // decodes back to itself (less BOS and EOS, which decoding never renders).
    const Tokenizer& t = *loaded->tokenizer;
    const std::string prompt = RenderChat(kind, chat, loaded->bos_text, loaded->eos_text, true);
    const std::vector<int32_t> ids = t.Encode(prompt, false, true);
    size_t expected_specials = 0;
    std::string visible = prompt;
    for (const std::string& marker : {loaded->bos_text, loaded->eos_text}) {
      for (size_t p; (p = visible.find(marker)) != std::string::npos;)
        visible.erase(p, marker.size());
    }
    for (const char* marker : {"<|im_start|>", "<|im_end|>", "<|user|>", "<|assistant|>",
                               "<|system|>", "<|end|>", "<|start_header_id|>", "<|end_header_id|>",
                               "<|eot_id|>", "<s>", "</s>", "<|begin_of_text|>"}) {
      for (size_t p = prompt.find(marker); p != std::string::npos; p = prompt.find(marker, p + 1)) {
        ++expected_specials;
      }
    }
    size_t specials = 0;
    for (int32_t id : ids) specials += t.IsSpecial(id);
    EXPECT_GT(specials, 0u) << name;
    EXPECT_EQ(specials, expected_specials) << name << ": " << prompt;
    EXPECT_EQ(t.Decode(ids, false), visible) << name;
  }
  auto unknown = BuiltinChatTemplateJinja("vicuna");
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
}

TEST(BpeTrainerTest, Llama3PatternSplitsDigitsInThrees) {
  ScratchDir dir;
  BpeTrainOptions o = SmallOptions();
  o.pretokenizer = "llama3";
  Strings texts = Corpus();
  for (int i = 0; i < 50; ++i) texts.push_back("12345678");
  auto loaded = TrainAndLoad(texts, o, dir.File("tok"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const json j = json::parse(ReadAll(dir.File("tok/tokenizer.json")));
  EXPECT_EQ(j["pre_tokenizer"]["pretokenizers"][0]["type"], "Split");
  // The pattern cuts digit runs into groups of at most three, so no merge ever spans a cut.
  EXPECT_EQ(Pieces(*loaded->tokenizer, loaded->tokenizer->Encode("12345678", false, false)),
            (Strings{"123", "456", "78"}));
  o.pretokenizer = "qwen2";
  auto qwen = TrainAndLoad(texts, o, dir.File("qwen"));
  ASSERT_TRUE(qwen.ok()) << qwen.status().ToString();
  EXPECT_EQ(qwen->tokenizer->Encode("12345678", false, false).size(), 8u);
}

TEST(BpeTrainerTest, BadOptionsNameTheField) {
  ScratchDir dir;
  struct Case {
    std::function<void(BpeTrainOptions&)> apply;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {[](BpeTrainOptions& o) { o.vocab_size = 100; }, "vocab_size is 100, expected 259.."},
      {[](BpeTrainOptions& o) { o.min_frequency = 0; }, "min_frequency is 0"},
      {[](BpeTrainOptions& o) { o.pretokenizer = "bert"; }, "pretokenizer \"bert\""},
      {[](BpeTrainOptions& o) { o.chat_template = "vicuna"; },
       "chat_template: unknown chat "
       "template \"vicuna\""},
      {[](BpeTrainOptions& o) { o.eos_token = ""; }, "eos_token is empty"},
      {[](BpeTrainOptions& o) { o.chat_template = "llama3"; },
       "bos_token is empty, but the llama3"},
      {[](BpeTrainOptions& o) {
         o.special_tokens = {"<a>", ""};
       },
       "special_tokens[1] is empty"},
      {[](BpeTrainOptions& o) {
         o.special_tokens = {"<a>", "<a>"};
       },
       "special_tokens[1] \"<a>\" is listed twice"},
      {[](BpeTrainOptions& o) { o.special_tokens = {"\xFF"}; },
       "special_tokens[0] is not valid UTF-8"},
  };
  for (const Case& c : cases) {
    BpeTrainOptions o = SmallOptions();
    c.apply(o);
    Status s = TrainBpeTokenizer(Corpus(), o, dir.File("tok"));
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.expected;
    EXPECT_NE(s.message().find(c.expected), std::string::npos)
        << "expected: " << c.expected << "\ngot: " << s.message();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.File("tok")));
}

}  // namespace
}  // namespace breakfix::engine
