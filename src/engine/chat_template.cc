// Built-in chat templates. Each renderer writes, byte for byte, what the model family's own
// Jinja template produces (Hugging Face apply_chat_template with the same messages, bos_token and
// eos_token); where the official template would raise an exception (roles out of order, a
// system message it has no place for) the renderer does the closest sensible thing instead,
// as the comments say, because a rendering must never fail.
#include <string>
#include <string_view>
#include <vector>

#include "breakfix/engine.h"
#include "engine/pretokenizer.h"
#include "engine/unicode_tables.h"

namespace breakfix {
namespace {

struct TemplateName {
  ChatTemplateKind kind;
  const char* name;
};

constexpr TemplateName kTemplateNames[] = {
    {ChatTemplateKind::kPhi3, "phi3"},       {ChatTemplateKind::kLlama2, "llama2"},
    {ChatTemplateKind::kLlama3, "llama3"},   {ChatTemplateKind::kChatML, "chatml"},
    {ChatTemplateKind::kMistral, "mistral"}, {ChatTemplateKind::kZephyr, "zephyr"},
};

std::string NameList() {
  std::string out;
  for (const TemplateName& t : kTemplateNames) {
    if (!out.empty()) out += ", ";
    out += t.name;
  }
  return out;
}

bool Contains(std::string_view text, std::string_view marker) {
  return text.find(marker) != std::string_view::npos;
}

// Python's str.strip(), which Jinja's trim filter and the templates' .strip() call: white space
// is Unicode White_Space plus U+001C..U+001F.
bool IsPythonSpace(char32_t cp) {
  return engine::IsUnicodeWhitespace(cp) || (cp >= 0x1C && cp <= 0x1F);
}

std::string Strip(std::string_view text) {
  const std::vector<engine::CodePoint> cps = engine::DecodeUtf8(text);
  size_t first = 0;
  size_t last = cps.size();
  while (first < last && IsPythonSpace(cps[first].value)) ++first;
  while (last > first && IsPythonSpace(cps[last - 1].value)) --last;
  if (first == last) return {};
  const size_t begin = cps[first].offset;
  const size_t end = cps[last - 1].offset + cps[last - 1].length;
  return std::string(text.substr(begin, end - begin));
}

// Phi-3 (mini/medium instruct, June 2024 template):
//   <|system|>\nS<|end|>\n<|user|>\nU<|end|>\n<|assistant|>\nA<|end|>\n
// then "<|assistant|>\n" with the generation prompt, otherwise EOS.
std::string RenderPhi3(const std::vector<Message>& messages, const std::string& eos,
                       bool add_generation_prompt) {
  std::string out;
  for (const Message& m : messages) {
    out += "<|";
    out += RoleName(m.role);
    out += "|>\n";
    out += m.content;
    out += "<|end|>\n";
  }
  out += add_generation_prompt ? "<|assistant|>\n" : eos;
  return out;
}

// Llama 3 instruct:
//   BOS<|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT(trimmed)<|eot_id|> ...
// then "<|start_header_id|>assistant<|end_header_id|>\n\n" with the generation prompt.
std::string RenderLlama3(const std::vector<Message>& messages, const std::string& bos,
                         bool add_generation_prompt) {
  std::string out = messages.empty() ? std::string() : bos;  // BOS opens the first message
  for (const Message& m : messages) {
    out += "<|start_header_id|>";
    out += RoleName(m.role);
    out += "<|end_header_id|>\n\n";
    out += Strip(m.content);
    out += "<|eot_id|>";
  }
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

// ChatML: <|im_start|>ROLE\nCONTENT<|im_end|>\n ... then "<|im_start|>assistant\n".
std::string RenderChatML(const std::vector<Message>& messages, bool add_generation_prompt) {
  std::string out;
  for (const Message& m : messages) {
    out += "<|im_start|>";
    out += RoleName(m.role);
    out += "\n";
    out += m.content;
    out += "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

// Zephyr: <|ROLE|>\nCONTENT EOS\n ... then "<|assistant|>\n".
std::string RenderZephyr(const std::vector<Message>& messages, const std::string& eos,
                         bool add_generation_prompt) {
  std::string out;
  for (const Message& m : messages) {
    out += "<|";
    out += RoleName(m.role);
    out += "|>\n";
    out += m.content;
    out += eos;
    out += "\n";
  }
  if (add_generation_prompt && !messages.empty()) out += "<|assistant|>\n";
  return out;
}

// Llama 2 chat: each user turn is BOS[INST] CONTENT [/INST] and each assistant turn
// " CONTENT EOS", both stripped; the system prompt goes inside the first [INST] as
// "<<SYS>>\nS\n<</SYS>>\n\n". The template has no generation prompt: the text ends after
// [/INST] either way. A system message anywhere else joins the next user turn the same way
// (the official template would drop or reject it); one with no user turn after it becomes a
// user turn of its own.
std::string RenderLlama2(const std::vector<Message>& messages, const std::string& bos,
                         const std::string& eos) {
  std::string out;
  std::string pending_system;
  bool have_system = false;
  const auto user_turn = [&](const std::string& content) {
    std::string text = content;
    if (have_system) text = "<<SYS>>\n" + pending_system + "\n<</SYS>>\n\n" + content;
    have_system = false;
    pending_system.clear();
    out += bos + "[INST] " + Strip(text) + " [/INST]";
  };
  for (const Message& m : messages) {
    switch (m.role) {
      case Role::kSystem:
        if (have_system) pending_system += "\n\n";
        pending_system += m.content;
        have_system = true;
        break;
      case Role::kUser:
        user_turn(m.content);
        break;
      case Role::kAssistant:
        out += " " + Strip(m.content) + " " + eos;
        break;
    }
  }
  if (have_system) user_turn("");
  return out;
}

// Mistral instruct (v0.1/v0.2 template with system support):
//   BOS then " [INST] CONTENT [/INST]" per user turn and " CONTENT EOS" per assistant turn; a
// system message is folded into the first user turn as "S\n\nU". Like Llama 2, there is no
// generation prompt, and a later system message joins the next user turn.
std::string RenderMistral(const std::vector<Message>& messages, const std::string& bos,
                          const std::string& eos) {
  std::string out = bos;
  std::string pending_system;
  bool have_system = false;
  const auto user_turn = [&](const std::string& content) {
    std::string text = have_system ? pending_system + "\n\n" + content : content;
    have_system = false;
    pending_system.clear();
    out += " [INST] " + text + " [/INST]";
  };
  for (const Message& m : messages) {
    switch (m.role) {
      case Role::kSystem:
        if (have_system) pending_system += "\n\n";
        pending_system += m.content;
        have_system = true;
        break;
      case Role::kUser:
        user_turn(m.content);
        break;
      case Role::kAssistant:
        out += " " + m.content + eos;
        break;
    }
  }
  if (have_system) user_turn("");
  return out;
}

}  // namespace

const char* ChatTemplateName(ChatTemplateKind kind) {
  for (const TemplateName& t : kTemplateNames) {
    if (t.kind == kind) return t.name;
  }
  return "unknown";
}

Result<ChatTemplateKind> ParseChatTemplateName(const std::string& name) {
  for (const TemplateName& t : kTemplateNames) {
    if (name == t.name) return t.kind;
  }
  return Status::InvalidArgument("unknown chat template \"" + name + "\" (expected one of " +
                                 NameList() + ")");
}

Result<ChatTemplateKind> DetectChatTemplate(const std::string& template_text) {
  const std::string_view t = template_text;
  // The most specific markers first: Phi-3 and Zephyr share <|user|>, Llama 2 and Mistral
  // share [INST].
  if (Contains(t, "<|start_header_id|>") || Contains(t, "<|eot_id|>")) {
    return ChatTemplateKind::kLlama3;
  }
  if (Contains(t, "<|im_start|>")) return ChatTemplateKind::kChatML;
  if (Contains(t, "<|user|>") && Contains(t, "<|end|>")) return ChatTemplateKind::kPhi3;
  if (Contains(t, "<|user|>") && (Contains(t, "</s>") || Contains(t, "eos_token"))) {
    return ChatTemplateKind::kZephyr;
  }
  if (Contains(t, "[INST]") && Contains(t, "<<SYS>>")) return ChatTemplateKind::kLlama2;
  if (Contains(t, "[INST]")) return ChatTemplateKind::kMistral;
  const std::string what = t.empty() ? std::string("the model has no chat template")
                                     : "the model's chat template is not one breakfix knows";
  return Status::InvalidArgument(what + " (recognised: " + NameList() +
                                 "); choose one with --chat-template NAME");
}

std::string RenderChat(ChatTemplateKind kind, const std::vector<Message>& messages,
                       const std::string& bos, const std::string& eos, bool add_generation_prompt) {
  switch (kind) {
    case ChatTemplateKind::kPhi3:
      return RenderPhi3(messages, eos, add_generation_prompt);
    case ChatTemplateKind::kLlama2:
      return RenderLlama2(messages, bos, eos);
    case ChatTemplateKind::kLlama3:
      return RenderLlama3(messages, bos, add_generation_prompt);
    case ChatTemplateKind::kChatML:
      return RenderChatML(messages, add_generation_prompt);
    case ChatTemplateKind::kMistral:
      return RenderMistral(messages, bos, eos);
    case ChatTemplateKind::kZephyr:
      return RenderZephyr(messages, eos, add_generation_prompt);
  }
  return {};
}

}  // namespace breakfix
