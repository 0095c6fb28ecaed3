// Built-in chat templates: exact renderings for every family (system + user, multi-turn with
// assistant replies, generation prompt on and off) and detection from template text.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "breakfix/engine.h"
#include "breakfix/env.h"
#include "engine/gguf.h"
#include "engine/tokenizer_loader.h"

namespace breakfix {
namespace {

std::vector<Message> SystemAndUser() {
  return {{Role::kSystem, "You are careful."}, {Role::kUser, "Hi there"}};
}

std::vector<Message> MultiTurn() {
  return {{Role::kUser, "Hi"}, {Role::kAssistant, "Hello!"}, {Role::kUser, "Bye"}};
}

std::string Render(ChatTemplateKind kind, const std::vector<Message>& messages, bool gen,
                   const std::string& bos = "<s>", const std::string& eos = "</s>") {
  return RenderChat(kind, messages, bos, eos, gen);
}

TEST(ChatTemplateTest, Phi3) {
  EXPECT_EQ(Render(ChatTemplateKind::kPhi3, SystemAndUser(), true, "<s>", "<|endoftext|>"),
            "<|system|>\nYou are careful.<|end|>\n<|user|>\nHi there<|end|>\n<|assistant|>\n");
  EXPECT_EQ(Render(ChatTemplateKind::kPhi3, MultiTurn(), true, "<s>", "<|endoftext|>"),
            "<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n<|user|>\nBye<|end|>\n"
            "<|assistant|>\n");
  // Without the generation prompt the official template closes with EOS.
  EXPECT_EQ(Render(ChatTemplateKind::kPhi3, MultiTurn(), false, "<s>", "<|endoftext|>"),
            "<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n<|user|>\nBye<|end|>\n"
            "<|endoftext|>");
}

TEST(ChatTemplateTest, Llama3) {
  const std::string bos = "<|begin_of_text|>";
  EXPECT_EQ(Render(ChatTemplateKind::kLlama3, SystemAndUser(), true, bos, "<|eot_id|>"),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are "
            "careful.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi "
            "there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(Render(ChatTemplateKind::kLlama3, MultiTurn(), false, bos, "<|eot_id|>"),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>");
  // Contents are trimmed (Jinja's trim filter), Unicode white space included.
  EXPECT_EQ(
      Render(ChatTemplateKind::kLlama3, {{Role::kUser, " \n Hi \xE3\x80\x80\t"}}, false, bos, ""),
      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
  EXPECT_EQ(Render(ChatTemplateKind::kLlama3, {}, false, bos, ""), "");
}

TEST(ChatTemplateTest, ChatML) {
  EXPECT_EQ(Render(ChatTemplateKind::kChatML, SystemAndUser(), true),
            "<|im_start|>system\nYou are careful.<|im_end|>\n<|im_start|>user\nHi "
            "there<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(Render(ChatTemplateKind::kChatML, MultiTurn(), false),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
            "<|im_start|>user\nBye<|im_end|>\n");
}

TEST(ChatTemplateTest, Llama2) {
  EXPECT_EQ(Render(ChatTemplateKind::kLlama2, SystemAndUser(), true),
            "<s>[INST] <<SYS>>\nYou are careful.\n<</SYS>>\n\nHi there [/INST]");
  // There is no generation prompt: the text ends after [/INST] either way.
  EXPECT_EQ(Render(ChatTemplateKind::kLlama2, SystemAndUser(), false),
            Render(ChatTemplateKind::kLlama2, SystemAndUser(), true));
  EXPECT_EQ(Render(ChatTemplateKind::kLlama2, MultiTurn(), true),
            "<s>[INST] Hi [/INST] Hello! </s><s>[INST] Bye [/INST]");
  // Contents are stripped, including the system block's outer white space.
  EXPECT_EQ(
      Render(ChatTemplateKind::kLlama2,
             {{Role::kSystem, "  S "}, {Role::kUser, "U  "}, {Role::kAssistant, " A "}}, true),
      "<s>[INST] <<SYS>>\n  S \n<</SYS>>\n\nU [/INST] A </s>");
  // A system message after the first turn joins the next user turn.
  EXPECT_EQ(Render(ChatTemplateKind::kLlama2,
                   {{Role::kUser, "Hi"},
                    {Role::kAssistant, "Yo"},
                    {Role::kSystem, "Be brief."},
                    {Role::kUser, "Why?"}},
                   true),
            "<s>[INST] Hi [/INST] Yo </s><s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWhy? [/INST]");
  // A lone system message still reaches the model.
  EXPECT_EQ(Render(ChatTemplateKind::kLlama2, {{Role::kSystem, "S"}}, true),
            "<s>[INST] <<SYS>>\nS\n<</SYS>> [/INST]");
}

TEST(ChatTemplateTest, Mistral) {
  EXPECT_EQ(Render(ChatTemplateKind::kMistral, SystemAndUser(), true),
            "<s> [INST] You are careful.\n\nHi there [/INST]");
  EXPECT_EQ(Render(ChatTemplateKind::kMistral, SystemAndUser(), false),
            Render(ChatTemplateKind::kMistral, SystemAndUser(), true));
  EXPECT_EQ(Render(ChatTemplateKind::kMistral, MultiTurn(), true),
            "<s> [INST] Hi [/INST] Hello!</s> [INST] Bye [/INST]");
}

TEST(ChatTemplateTest, Zephyr) {
  EXPECT_EQ(Render(ChatTemplateKind::kZephyr, SystemAndUser(), true),
            "<|system|>\nYou are careful.</s>\n<|user|>\nHi there</s>\n<|assistant|>\n");
  EXPECT_EQ(Render(ChatTemplateKind::kZephyr, MultiTurn(), false),
            "<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n<|user|>\nBye</s>\n");
}

TEST(ChatTemplateTest, NamesRoundTrip) {
  for (ChatTemplateKind kind :
       {ChatTemplateKind::kPhi3, ChatTemplateKind::kLlama2, ChatTemplateKind::kLlama3,
        ChatTemplateKind::kChatML, ChatTemplateKind::kMistral, ChatTemplateKind::kZephyr}) {
    auto parsed = ParseChatTemplateName(ChatTemplateName(kind));
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(*parsed, kind);
  }
  auto bad = ParseChatTemplateName("vicuna");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("vicuna"), std::string::npos);
  EXPECT_NE(bad.status().message().find("phi3, llama2, llama3, chatml, mistral, zephyr"),
            std::string::npos);
}

// Minimal templates in each family's style, carrying the markers detection keys on.
TEST(ChatTemplateTest, DetectsEachFamily) {
  struct Case {
    const char* text;
    ChatTemplateKind kind;
  };
  const Case cases[] = {
      {"{% for m in messages %}{% if m['role'] == 'user' %}{{ '<|user|>\\n' + m['content'] + "
       "'<|end|>\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}"
       "{{ '<|assistant|>\\n' }}{% endif %}",
       ChatTemplateKind::kPhi3},
      {"{% for m in messages %}{% if m['role'] == 'user' %}{{ '<|user|>\\n' + m['content'] + "
       "eos_token }}{% endif %}{% endfor %}{{ '<|assistant|>' }}",
       ChatTemplateKind::kZephyr},
      {"{% for m in messages %}{{ '<|user|>\\n' + m['content'] + '</s>' }}{% endfor %}",
       ChatTemplateKind::kZephyr},
      {"{{ bos_token }}{% for m in messages %}{{ '[INST] <<SYS>>\\n' + m['content'] + "
       "'\\n<</SYS>>\\n\\n [/INST]' }}{% endfor %}",
       ChatTemplateKind::kLlama2},
      {"{{ bos_token }}{% for m in messages %}{{ ' [INST] ' + m['content'] + ' [/INST]' }}"
       "{% endfor %}",
       ChatTemplateKind::kMistral},
      {"{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n'"
       " + m['content'] + '<|eot_id|>' }}{% endfor %}",
       ChatTemplateKind::kLlama3},
      {"{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + "
       "'<|im_end|>\\n'}}{% endfor %}",
       ChatTemplateKind::kChatML},
  };
  for (const Case& c : cases) {
    auto kind = DetectChatTemplate(c.text);
    ASSERT_TRUE(kind.ok()) << c.text << ": " << kind.status().ToString();
    EXPECT_EQ(*kind, c.kind) << c.text;
  }
}

TEST(ChatTemplateTest, UnknownTemplateListsChoicesAndOverride) {
  const std::vector<std::string> texts = {
      "{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}{% endfor %}", ""};
  for (const std::string& text : texts) {
    auto kind = DetectChatTemplate(text);
    ASSERT_FALSE(kind.ok());
    EXPECT_EQ(kind.status().code(), StatusCode::kInvalidArgument);
    const std::string msg = kind.status().message();
    EXPECT_NE(msg.find("--chat-template"), std::string::npos) << msg;
    EXPECT_NE(msg.find("phi3, llama2, llama3, chatml, mistral, zephyr"), std::string::npos) << msg;
  }
}

// The Phi-3 vocabulary GGUF carries the model's real template.
TEST(ChatTemplateTest, DetectsPhi3TemplateFromRealGguf) {
  const std::optional<std::string> dir = Env::Default()->GetVar("BREAKFIX_TEST_DATA");
  if (!dir) GTEST_SKIP() << "BREAKFIX_TEST_DATA is unset; set it to the data directory to run";
  const std::string path = *dir + "/llamacpp-vocab-gguf/ggml-vocab-phi-3.gguf";
  ASSERT_TRUE(std::filesystem::is_regular_file(path))
      << "BREAKFIX_TEST_DATA is set but the data file is missing: " << path;
  auto gguf = engine::GgufFile::Open(path);
  ASSERT_TRUE(gguf.ok()) << gguf.status().ToString();
  auto loaded = engine::TokenizerFromGguf(**gguf);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_FALSE(loaded->chat_template.empty());
  auto kind = DetectChatTemplate(loaded->chat_template);
  ASSERT_TRUE(kind.ok()) << kind.status().ToString();
  EXPECT_EQ(*kind, ChatTemplateKind::kPhi3);
  EXPECT_EQ(loaded->eos_text, "<|endoftext|>");
  // The rendered prompt encodes into the real control tokens.
  const std::string prompt =
      RenderChat(*kind, SystemAndUser(), loaded->bos_text, loaded->eos_text, true);
  const std::vector<int32_t> ids = loaded->tokenizer->Encode(prompt, false, true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), 32006);  // <|system|>
  const auto count = [&](int32_t id) { return std::count(ids.begin(), ids.end(), id); };
  EXPECT_EQ(count(32007), 2);  // <|end|>
  EXPECT_EQ(count(32010), 1);  // <|user|>
  EXPECT_EQ(count(32001), 1);  // <|assistant|>
  EXPECT_NE(loaded->tokenizer->Decode(ids, /*skip_special=*/false).find("<|user|>"),
            std::string::npos);
  const std::string plain = loaded->tokenizer->Decode(ids, /*skip_special=*/true);
  EXPECT_EQ(plain.find("<|"), std::string::npos) << plain;
  EXPECT_NE(plain.find("Hi there"), std::string::npos) << plain;
}

}  // namespace
}  // namespace breakfix
