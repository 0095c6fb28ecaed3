#include "breakfix/converters.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace breakfix {
namespace {

using ::testing::HasSubstr;

// Answers synchronously with a function of the request, and keeps the last request.
class EchoModel : public ChatModel {
 public:
  explicit EchoModel(std::function<std::string(const ChatRequest&)> answer)
      : answer_(std::move(answer)) {}
  const std::string& name() const override { return name_; }
  std::string Identity() const override { return "echo/1"; }
  void Chat(ChatRequest request, ChatCallback done) override {
    last = request;
    ChatResponse r;
    r.message = {Role::kAssistant, answer_(request)};
    done(r);
  }
  ChatRequest last;

 private:
  std::string name_ = "echo";
  std::function<std::string(const ChatRequest&)> answer_;
};

const std::vector<std::string>& Texts() {
  static const std::vector<std::string> texts = {
      "",
      "a",
      "Tell me the secret.",
      "Line one\nline \"two\" with \\ backslash\ttab",
      "Ünïcödé: naïve café, 東京, emoji 🙂 and a stray byte \xff end",
      std::string(1000, 'x') + " long tail",
  };
  return texts;
}

TEST(Base64Test, KnownVectorsAndStrictDecoding) {
  const std::vector<std::pair<std::string, std::string>> vectors = {{"", ""},
                                                                    {"f", "Zg=="},
                                                                    {"fo", "Zm8="},
                                                                    {"foo", "Zm9v"},
                                                                    {"foob", "Zm9vYg=="},
                                                                    {"fooba", "Zm9vYmE="},
                                                                    {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(plain), encoded);
    auto decoded = Base64Decode(encoded);
    ASSERT_TRUE(decoded.ok()) << encoded;
    EXPECT_EQ(*decoded, plain);
  }
  EXPECT_FALSE(Base64Decode("Zm9").ok());       // length
  EXPECT_FALSE(Base64Decode("Zm9!").ok());      // alphabet
  EXPECT_FALSE(Base64Decode("Zh==").ok());      // non-zero padding bits
  EXPECT_FALSE(Base64Decode("Zg==Zg==").ok());  // padding before the end
  EXPECT_FALSE(Base64Decode("Z===").ok());
}

TEST(ConverterTest, ReversibleConvertersRoundTrip) {
  for (const char* spec : {"base64", "rot13", "confusables", "confusables:0.5", "payload_split",
                           "payload_split:2", "payload_split:7"}) {
    auto c = MakeConverter(spec);
    ASSERT_TRUE(c.ok()) << spec << ": " << c.status().ToString();
    EXPECT_TRUE((*c)->reversible()) << spec;
    for (const std::string& text : Texts()) {
      // A prompt travels as JSON, so payload_split writes invalid UTF-8 as U+FFFD.
      if (std::string(spec).rfind("payload_split", 0) == 0 &&
          text.find('\xff') != std::string::npos) {
        continue;
      }
      for (uint64_t seed : {1u, 2u, 99u}) {
        auto converted = (*c)->Convert(text, seed);
        ASSERT_TRUE(converted.ok()) << spec;
        auto back = (*c)->Reverse(*converted);
        ASSERT_TRUE(back.ok()) << spec << ": " << back.status().ToString();
        EXPECT_EQ(*back, text) << spec << " seed " << seed;
      }
    }
  }
}

TEST(ConverterTest, EncodingsChangeTheTextAsSpecified) {
  EXPECT_EQ(*(*MakeConverter("rot13"))->Convert("Hello, World!", 0), "Uryyb, Jbeyq!");
  EXPECT_EQ(*(*MakeConverter("base64"))->Convert("hi", 0), "aGk=");
  auto leet = MakeConverter("leetspeak");
  ASSERT_TRUE(leet.ok());
  EXPECT_EQ(*(*leet)->Convert("Test the Oasis", 0), "7357 7h3 04515");
  EXPECT_FALSE((*leet)->reversible());
  EXPECT_THAT((*leet)->Reverse("7357").status().message(), HasSubstr("not reversible"));

  auto confusables = MakeConverter("confusables");
  ASSERT_TRUE(confusables.ok());
  const std::string looks = *(*confusables)->Convert("Secret code", 0);
  EXPECT_NE(looks, "Secret code");
  // Every mapped letter was replaced; unmapped ones ('r', 't') stay.
  EXPECT_EQ(looks.find('S'), std::string::npos);
  EXPECT_EQ(looks.find('e'), std::string::npos);
  EXPECT_NE(looks.find('r'), std::string::npos);
  EXPECT_EQ(*(*MakeConverter("confusables:0"))->Convert("Secret code", 5), "Secret code");

  auto split = MakeConverter("payload_split:3");
  ASSERT_TRUE(split.ok());
  const std::string parts = *(*split)->Convert("abcdefghi", 0);
  EXPECT_THAT(parts, HasSubstr("part1 = \"abc\"\npart2 = \"def\"\npart3 = \"ghi\"\n"));
  EXPECT_THAT(parts, HasSubstr("request = part1 + part2 + part3"));
  EXPECT_FALSE((*split)->Reverse("something else").ok());
}

TEST(ConverterTest, CharSwapIsSeededAndKeepsWordEdges) {
  auto c = MakeConverter("char_swap:1");
  ASSERT_TRUE(c.ok());
  const std::string text = "Please explain the whole procedure in detail, my friend";
  const std::string a = *(*c)->Convert(text, 7);
  EXPECT_EQ(a, *(*c)->Convert(text, 7));
  EXPECT_NE(a, text);
  bool differs = false;
  for (uint64_t seed = 8; seed < 20 && !differs; ++seed) differs = *(*c)->Convert(text, seed) != a;
  EXPECT_TRUE(differs);
  // Word by word: same length, same first and last letter, same letters; short words untouched.
  auto words = [](const std::string& s) {
    std::vector<std::string> out;
    std::string w;
    for (char ch : s + " ") {
      if (std::isalpha(static_cast<unsigned char>(ch))) {
        w += ch;
      } else if (!w.empty()) {
        out.push_back(w);
        w.clear();
      }
    }
    return out;
  };
  const auto before = words(text), after = words(a);
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i) {
    ASSERT_EQ(before[i].size(), after[i].size());
    EXPECT_EQ(before[i].front(), after[i].front());
    EXPECT_EQ(before[i].back(), after[i].back());
    std::string x = before[i], y = after[i];
    std::sort(x.begin(), x.end());
    std::sort(y.begin(), y.end());
    EXPECT_EQ(x, y);
    if (before[i].size() <= 3) {
      EXPECT_EQ(before[i], after[i]);
    }
  }
  EXPECT_EQ(*(*MakeConverter("char_swap:0"))->Convert(text, 7), text);
  EXPECT_EQ((*MakeConverter("char_swap"))->Identity(), "char_swap:0.3");
}

TEST(ConverterTest, LlmConvertersPromptTheirModelGreedilyWithTheSeed) {
  EchoModel model([](const ChatRequest& r) { return "  [" + r.messages.back().content + "]\n"; });
  auto translate = MakeConverter("translate:French", &model);
  ASSERT_TRUE(translate.ok()) << translate.status().ToString();
  auto out = (*translate)->Convert("hello there", 42);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "[hello there]");  // trimmed
  ASSERT_EQ(model.last.messages.size(), 2u);
  EXPECT_EQ(model.last.messages[0].role, Role::kSystem);
  EXPECT_THAT(model.last.messages[0].content, HasSubstr("into French"));
  EXPECT_EQ(model.last.sampling.temperature, 0);
  EXPECT_EQ(model.last.sampling.seed, 42u);
  EXPECT_EQ((*translate)->Identity(), "translate:French@echo/1");

  auto rephrase = MakeConverter("rephrase", &model);
  ASSERT_TRUE(rephrase.ok());
  ASSERT_TRUE((*rephrase)->Convert("x", 1).ok());
  EXPECT_THAT(model.last.messages[0].content, HasSubstr("different words"));
  EXPECT_EQ((*rephrase)->Identity(), "rephrase@echo/1");

  EchoModel silent([](const ChatRequest&) { return " \n"; });
  auto mute = MakeConverter("rephrase", &silent);
  ASSERT_TRUE(mute.ok());
  EXPECT_THAT((*mute)->Convert("x", 1).status().message(), HasSubstr("returned nothing"));
}

TEST(ConverterTest, BadSpecsSayWhatIsAccepted) {
  EXPECT_THAT(MakeConverter("base65").status().message(),
              HasSubstr("expected one of: base64, rot13"));
  EXPECT_THAT(MakeConverter("char_swap:2").status().message(), HasSubstr("in [0, 1]"));
  EXPECT_THAT(MakeConverter("char_swap:abc").status().message(), HasSubstr("in [0, 1]"));
  EXPECT_THAT(MakeConverter("payload_split:1").status().message(), HasSubstr("2..20"));
  EXPECT_THAT(MakeConverter("base64:3").status().message(), HasSubstr("takes no argument"));
  EXPECT_THAT(MakeConverter("rephrase").status().message(), HasSubstr("needs a converter model"));
  EchoModel model([](const ChatRequest&) { return "x"; });
  EXPECT_THAT(MakeConverter("translate", &model).status().message(),
              HasSubstr("name the language"));
  for (const std::string& name : ConverterNames()) {
    std::string spec = name == "translate" ? "translate:German" : name;
    EXPECT_TRUE(MakeConverter(spec, &model).ok()) << spec;
  }
}

TEST(ConverterChainTest, AppliesInOrderWithPerStepSeeds) {
  auto chain = ConverterChain::FromSpecs({"rot13", "base64"});
  ASSERT_TRUE(chain.ok());
  EXPECT_EQ(*chain->Convert("abc", 1), Base64Encode("nop"));
  EXPECT_EQ(chain->Identity(), "rot13|base64");
  EXPECT_EQ(chain->Label(), "rot13+base64");
  EXPECT_EQ(ConverterChain().Label(), "none");
  EXPECT_EQ(*ConverterChain().Convert("same", 3), "same");

  // A step's seed depends on its position, not on the steps after it.
  auto one = ConverterChain::FromSpecs({"char_swap:0.5"});
  auto two = ConverterChain::FromSpecs({"char_swap:0.5", "rot13"});
  ASSERT_TRUE(one.ok() && two.ok());
  const std::string text = "Several longer words make the shuffled result visible here";
  EXPECT_EQ(*two->Convert(text, 9), *(*MakeConverter("rot13"))->Convert(*one->Convert(text, 9), 0));
  EXPECT_FALSE(ConverterChain::FromSpecs({"rot13", "nope"}).ok());
}

}  // namespace
}  // namespace breakfix
