#include "engine/bpe_trainer.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <queue>
#include <set>
#include <unordered_map>
#include <utility>

#include "breakfix/engine.h"
#include "breakfix/env.h"
#include "core/atomic_file.h"
#include "engine/bpe_tokenizer.h"
#include "engine/pretokenizer.h"

namespace breakfix::engine {
namespace {

using ordered_json = nlohmann::ordered_json;

// A vocabulary larger than this is a typo, not a plan (the loader refuses ids beyond 2^24).
constexpr int kMaxVocabSize = 1 << 22;

// The regular expressions tokenizer.json spells for each pattern: the loader recognises a Split
// pre-tokenizer by comparing its regex with exactly these strings.
constexpr char kLlama3Regex[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr char kQwen2Regex[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// --- Chat templates, written for breakfix. Every one produces, byte for byte, what the engine's
// RenderChat() produces (chat_template.cc says why each renderer does what it does), and holds
// the markers DetectChatTemplate() looks for. ---

constexpr char kChatMLJinja[] = R"jinja({%- for message in messages -%}
{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|im_start|>assistant\n' -}}
{%- endif -%})jinja";

// Role markers are spelled out, not built from the role name, so that the template text itself
// names <|user|> (which is what recognition looks for).
constexpr char kPhi3Jinja[] = R"jinja({%- for message in messages -%}
{%- if message['role'] == 'system' -%}
{{- '<|system|>\n' -}}
{%- elif message['role'] == 'user' -%}
{{- '<|user|>\n' -}}
{%- else -%}
{{- '<|assistant|>\n' -}}
{%- endif -%}
{{- message['content'] + '<|end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|assistant|>\n' -}}
{%- else -%}
{{- eos_token -}}
{%- endif -%})jinja";

constexpr char kZephyrJinja[] = R"jinja({%- for message in messages -%}
{%- if message['role'] == 'system' -%}
{{- '<|system|>\n' -}}
{%- elif message['role'] == 'user' -%}
{{- '<|user|>\n' -}}
{%- else -%}
{{- '<|assistant|>\n' -}}
{%- endif -%}
{{- message['content'] + eos_token + '\n' -}}
{%- endfor -%}
{%- if add_generation_prompt and messages | length > 0 -%}
{{- '<|assistant|>\n' -}}
{%- endif -%})jinja";

constexpr char kLlama3Jinja[] = R"jinja({%- for message in messages -%}
{%- if loop.first -%}
{{- bos_token -}}
{%- endif -%}
{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'
    + message['content'] | trim + '<|eot_id|>' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
{%- endif -%})jinja";

// System messages wait for the next user turn and go inside its [INST] block; one left over at
// the end becomes a user turn of its own.
constexpr char kLlama2Jinja[] = R"jinja({%- set ns = namespace(system='', has_system=false) -%}
{%- for message in messages -%}
{%- if message['role'] == 'system' -%}
{%- if ns.has_system -%}
{%- set ns.system = ns.system + '\n\n' -%}
{%- endif -%}
{%- set ns.system = ns.system + message['content'] -%}
{%- set ns.has_system = true -%}
{%- elif message['role'] == 'user' -%}
{%- if ns.has_system -%}
{{- bos_token + '[INST] '
    + ('<<SYS>>\n' + ns.system + '\n<</SYS>>\n\n' + message['content']) | trim + ' [/INST]' -}}
{%- else -%}
{{- bos_token + '[INST] ' + message['content'] | trim + ' [/INST]' -}}
{%- endif -%}
{%- set ns.system = '' -%}
{%- set ns.has_system = false -%}
{%- else -%}
{{- ' ' + message['content'] | trim + ' ' + eos_token -}}
{%- endif -%}
{%- endfor -%}
{%- if ns.has_system -%}
{{- bos_token + '[INST] ' + ('<<SYS>>\n' + ns.system + '\n<</SYS>>\n\n') | trim + ' [/INST]' -}}
{%- endif -%})jinja";

constexpr char kMistralJinja[] = R"jinja({{- bos_token -}}
{%- set ns = namespace(system='', has_system=false) -%}
{%- for message in messages -%}
{%- if message['role'] == 'system' -%}
{%- if ns.has_system -%}
{%- set ns.system = ns.system + '\n\n' -%}
{%- endif -%}
{%- set ns.system = ns.system + message['content'] -%}
{%- set ns.has_system = true -%}
{%- elif message['role'] == 'user' -%}
{%- if ns.has_system -%}
{{- ' [INST] ' + ns.system + '\n\n' + message['content'] + ' [/INST]' -}}
{%- else -%}
{{- ' [INST] ' + message['content'] + ' [/INST]' -}}
{%- endif -%}
{%- set ns.system = '' -%}
{%- set ns.has_system = false -%}
{%- else -%}
{{- ' ' + message['content'] + eos_token -}}
{%- endif -%}
{%- endfor -%}
{%- if ns.has_system -%}
{{- ' [INST] ' + ns.system + '\n\n' + ' [/INST]' -}}
{%- endif -%})jinja";

// What each template needs from the vocabulary.
struct TemplateNeeds {
  std::vector<std::string> markers;  // become special tokens
  bool needs_bos = false;            // the template writes bos_token
};

TemplateNeeds NeedsOf(ChatTemplateKind kind) {
  switch (kind) {
    case ChatTemplateKind::kChatML:
      return {{"<|im_start|>", "<|im_end|>"}, false};
    case ChatTemplateKind::kPhi3:
      return {{"<|system|>", "<|user|>", "<|assistant|>", "<|end|>"}, false};
    case ChatTemplateKind::kZephyr:
      return {{"<|system|>", "<|user|>", "<|assistant|>"}, false};
    case ChatTemplateKind::kLlama3:
      return {{"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}, true};
    case ChatTemplateKind::kLlama2:
    case ChatTemplateKind::kMistral:
      // [INST] and <<SYS>> are ordinary text in these families' vocabularies.
      return {{}, true};
  }
  return {};
}

Result<PretokenizerPattern> PatternByName(const std::string& name) {
  for (PretokenizerPattern p :
       {PretokenizerPattern::kGpt2, PretokenizerPattern::kLlama3, PretokenizerPattern::kQwen2}) {
    if (name == PretokenizerPatternName(p)) return p;
  }
  return Status::InvalidArgument("pretokenizer \"" + name + "\" is not one of gpt2, llama3, qwen2");
}

// Text spelled in GPT-2's byte alphabet, as byte-level vocabularies store it.
std::string Spell(std::string_view bytes) {
  std::string out;
  for (char c : bytes) AppendUtf8(ByteLevelChar(static_cast<uint8_t>(c)), &out);
  return out;
}

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}
int32_t PairLeft(uint64_t key) { return static_cast<int32_t>(key >> 32); }
int32_t PairRight(uint64_t key) { return static_cast<int32_t>(key & 0xFFFFFFFFu); }

// A candidate merge in the queue; stale when its count no longer matches the pair's.
struct Candidate {
  int64_t count;
  uint64_t pair;
};
// The queue's top: the highest count; among equal counts the smallest (left id, right id).
struct LowerPriority {
  bool operator()(const Candidate& a, const Candidate& b) const {
    if (a.count != b.count) return a.count < b.count;
    return a.pair > b.pair;
  }
};

struct Word {
  std::vector<int32_t> symbols;
  int64_t count = 0;
  int64_t stamp = -1;  // the last merge that visited this word
};

// The learned vocabulary: token texts by id (byte-level spelled) and merges by rank.
struct Learned {
  std::vector<std::string> tokens;
  std::vector<std::pair<std::string, std::string>> merges;
};

Learned Learn(const std::vector<std::string>& specials, const std::vector<std::string>& texts,
              PretokenizerPattern pattern, int vocab_size, int min_frequency) {
  Learned out;
  out.tokens = specials;
  const auto first_byte = static_cast<int32_t>(specials.size());
  for (int b = 0; b < 256; ++b) out.tokens.push_back(Spell(std::string(1, static_cast<char>(b))));
  std::unordered_map<std::string, int32_t> id_of;
  for (size_t i = 0; i < out.tokens.size(); ++i) {
    id_of.emplace(out.tokens[i], static_cast<int32_t>(i));
  }

  // Pieces with their frequencies; special tokens' texts are cut out first, as the encoder does.
  std::vector<AddedToken> added;
  for (size_t i = 0; i < specials.size(); ++i) {
    added.push_back({specials[i], static_cast<int32_t>(i), /*special=*/true});
  }
  const SpecialTokenMatcher matcher(added);
  std::unordered_map<std::string, int64_t> piece_counts;
  for (const std::string& text : texts) {
    for (const SpecialTokenMatcher::Fragment& f : matcher.Split(text, /*parse_special=*/true)) {
      if (f.id >= 0) continue;
      for (std::string_view piece : SplitPretokens(pattern, f.text))
        ++piece_counts[std::string(piece)];
    }
  }
  // Sorted, so that nothing below depends on hash-map order.
  std::vector<std::pair<std::string, int64_t>> sorted(piece_counts.begin(), piece_counts.end());
  piece_counts.clear();
  std::sort(sorted.begin(), sorted.end());
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (const auto& [piece, count] : sorted) {
    Word w;
    w.count = count;
    for (char c : piece) w.symbols.push_back(first_byte + static_cast<uint8_t>(c));
    if (w.symbols.size() >= 2) words.push_back(std::move(w));
  }
  sorted.clear();

  std::unordered_map<uint64_t, int64_t> counts;
  std::unordered_map<uint64_t, std::vector<uint32_t>> where;  // pair -> words (maybe stale)
  for (size_t w = 0; w < words.size(); ++w) {
    const std::vector<int32_t>& s = words[w].symbols;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const uint64_t key = PairKey(s[i], s[i + 1]);
      counts[key] += words[w].count;
      std::vector<uint32_t>& list = where[key];
      if (list.empty() || list.back() != w) list.push_back(static_cast<uint32_t>(w));
    }
  }
  std::priority_queue<Candidate, std::vector<Candidate>, LowerPriority> queue;
  {
    std::vector<Candidate> initial;
    initial.reserve(counts.size());
    for (const auto& [pair, count] : counts) initial.push_back({count, pair});
    std::sort(initial.begin(), initial.end(),
              [](const Candidate& a, const Candidate& b) { return a.pair < b.pair; });
    for (const Candidate& c : initial) queue.push(c);
  }

  std::set<uint64_t> recorded;
  int64_t merge_index = 0;
  std::map<uint64_t, int64_t> delta;  // ordered: the pushes below happen in a fixed order
  while (static_cast<int>(out.tokens.size()) < vocab_size && !queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    auto current = counts.find(top.pair);
    if (current == counts.end() || current->second != top.count) continue;  // stale
    if (top.count < min_frequency) break;
    const int32_t a = PairLeft(top.pair);
    const int32_t b = PairRight(top.pair);
    const std::string text =
        out.tokens[static_cast<size_t>(a)] + out.tokens[static_cast<size_t>(b)];
    // A text already in the vocabulary (reached before through another pair) keeps its id.
    int32_t merged;
    if (auto it = id_of.find(text); it != id_of.end()) {
      merged = it->second;
    } else {
      merged = static_cast<int32_t>(out.tokens.size());
      out.tokens.push_back(text);
      id_of.emplace(text, merged);
    }
    if (recorded.insert(top.pair).second) {
      out.merges.emplace_back(out.tokens[static_cast<size_t>(a)],
                              out.tokens[static_cast<size_t>(b)]);
    }

    delta.clear();
    const std::vector<uint32_t> affected = std::move(where[top.pair]);
    where.erase(top.pair);
    for (uint32_t w : affected) {
      Word& word = words[w];
      if (word.stamp == merge_index) continue;  // listed twice
      word.stamp = merge_index;
      std::vector<int32_t>& s = word.symbols;
      std::vector<int32_t> next;
      next.reserve(s.size());
      bool changed = false;
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          next.push_back(merged);
          ++i;
          changed = true;
        } else {
          next.push_back(s[i]);
        }
      }
      if (!changed) continue;
      for (size_t i = 0; i + 1 < s.size(); ++i) delta[PairKey(s[i], s[i + 1])] -= word.count;
      for (size_t i = 0; i + 1 < next.size(); ++i) {
        const uint64_t key = PairKey(next[i], next[i + 1]);
        delta[key] += word.count;
        if (next[i] == merged || next[i + 1] == merged) {
          std::vector<uint32_t>& list = where[key];
          if (list.empty() || list.back() != w) list.push_back(w);
        }
      }
      s = std::move(next);
    }
    for (const auto& [pair, change] : delta) {
      if (change == 0) continue;
      int64_t& count = counts[pair];
      count += change;
      if (count <= 0) {
        counts.erase(pair);
      } else {
        queue.push({count, pair});
      }
    }
    ++merge_index;
  }
  return out;
}

ordered_json AddedTokenJson(int32_t id, const std::string& text) {
  return {{"id", id},        {"content", text},     {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", false}, {"special", true}};
}

ordered_json ByteLevelJson(bool use_regex) {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", false},
          {"trim_offsets", true},
          {"use_regex", use_regex}};
}

std::string TokenizerJson(const Learned& learned, size_t specials, PretokenizerPattern pattern,
                          const std::string& bos) {
  ordered_json added = ordered_json::array();
  for (size_t i = 0; i < specials; ++i) {
    added.push_back(AddedTokenJson(static_cast<int32_t>(i), learned.tokens[i]));
  }
  ordered_json pre;
  if (pattern == PretokenizerPattern::kGpt2) {
    pre = ByteLevelJson(/*use_regex=*/true);
  } else {
    const char* regex = pattern == PretokenizerPattern::kLlama3 ? kLlama3Regex : kQwen2Regex;
    pre = {{"type", "Sequence"},
           {"pretokenizers", ordered_json::array({{{"type", "Split"},
                                                   {"pattern", {{"Regex", regex}}},
                                                   {"behavior", "Isolated"},
                                                   {"invert", false}},
                                                  ByteLevelJson(/*use_regex=*/false)})}};
  }
  ordered_json post;
  if (bos.empty()) {
    post = {{"type", "ByteLevel"},
            {"add_prefix_space", true},
            {"trim_offsets", false},
            {"use_regex", true}};
  } else {
    // BOS in front of every text, the way Llama 3's tokenizer.json asks for it.
    const int32_t bos_id = static_cast<int32_t>(
        std::find(learned.tokens.begin(), learned.tokens.end(), bos) - learned.tokens.begin());
    const auto special = [&](int type_id) {
      return ordered_json{{"SpecialToken", {{"id", bos}, {"type_id", type_id}}}};
    };
    const auto sequence = [](const char* id, int type_id) {
      return ordered_json{{"Sequence", {{"id", id}, {"type_id", type_id}}}};
    };
    post = {
        {"type", "TemplateProcessing"},
        {"single", ordered_json::array({special(0), sequence("A", 0)})},
        {"pair", ordered_json::array({special(0), sequence("A", 0), special(1), sequence("B", 1)})},
        {"special_tokens",
         {{bos,
           {{"id", bos},
            {"ids", ordered_json::array({bos_id})},
            {"tokens", ordered_json::array({bos})}}}}}};
  }
  ordered_json vocab = ordered_json::object();
  for (size_t i = 0; i < learned.tokens.size(); ++i) vocab[learned.tokens[i]] = i;
  ordered_json merges = ordered_json::array();
  for (const auto& [l, r] : learned.merges) merges.push_back(l + " " + r);
  const ordered_json root = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", pre},
      {"post_processor", post},
      {"decoder", ByteLevelJson(/*use_regex=*/true)},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", merges}}},
  };
  return root.dump(1) + "\n";
}

std::string ConfigJson(const std::vector<std::string>& specials, const BpeTrainOptions& options,
                       const std::string& jinja) {
  ordered_json decoder = ordered_json::object();
  for (size_t i = 0; i < specials.size(); ++i) {
    ordered_json entry = AddedTokenJson(static_cast<int32_t>(i), specials[i]);
    entry.erase("id");
    decoder[std::to_string(i)] = entry;
  }
  const ordered_json root = {
      {"add_bos_token", !options.bos_token.empty()},
      {"add_eos_token", false},
      {"added_tokens_decoder", decoder},
      {"bos_token",
       options.bos_token.empty() ? ordered_json(nullptr) : ordered_json(options.bos_token)},
      {"eos_token", options.eos_token},
      {"unk_token", nullptr},
      {"chat_template", jinja},
      {"clean_up_tokenization_spaces", false},
      {"tokenizer_class", "PreTrainedTokenizerFast"},
  };
  return root.dump(2) + "\n";
}

// The special tokens in id order: the options' list, then BOS, EOS and the template's markers
// when missing. Errors name the field.
Result<std::vector<std::string>> SpecialTokens(const BpeTrainOptions& options,
                                               const TemplateNeeds& needs) {
  std::vector<std::string> out;
  for (size_t i = 0; i < options.special_tokens.size(); ++i) {
    const std::string& t = options.special_tokens[i];
    const std::string field = "special_tokens[" + std::to_string(i) + "]";
    if (t.empty()) return Status::InvalidArgument(field + " is empty");
    if (!IsValidUtf8(t)) return Status::InvalidArgument(field + " is not valid UTF-8");
    if (std::find(out.begin(), out.end(), t) != out.end()) {
      return Status::InvalidArgument(field + " \"" + t + "\" is listed twice");
    }
    out.push_back(t);
  }
  const auto append = [&](const std::string& t, const std::string& field) -> Status {
    if (!IsValidUtf8(t)) return Status::InvalidArgument(field + " is not valid UTF-8");
    if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
    return Status::OK();
  };
  if (!options.bos_token.empty()) BF_RETURN_IF_ERROR(append(options.bos_token, "bos_token"));
  BF_RETURN_IF_ERROR(append(options.eos_token, "eos_token"));
  for (const std::string& m : needs.markers) BF_RETURN_IF_ERROR(append(m, "chat template marker"));
  return out;
}

}  // namespace

Result<std::string> BuiltinChatTemplateJinja(const std::string& name) {
  BF_ASSIGN_OR_RETURN(ChatTemplateKind kind, ParseChatTemplateName(name));
  switch (kind) {
    case ChatTemplateKind::kPhi3:
      return std::string(kPhi3Jinja);
    case ChatTemplateKind::kLlama2:
      return std::string(kLlama2Jinja);
    case ChatTemplateKind::kLlama3:
      return std::string(kLlama3Jinja);
    case ChatTemplateKind::kChatML:
      return std::string(kChatMLJinja);
    case ChatTemplateKind::kMistral:
      return std::string(kMistralJinja);
    case ChatTemplateKind::kZephyr:
      return std::string(kZephyrJinja);
  }
  return Status::Internal("unhandled chat template kind");
}

Status TrainBpeTokenizer(const std::vector<std::string>& texts, const BpeTrainOptions& options,
                         const std::string& out_dir) {
  auto kind = ParseChatTemplateName(options.chat_template);
  if (!kind.ok()) return kind.status().WithContext("chat_template");
  BF_ASSIGN_OR_RETURN(const PretokenizerPattern pattern, PatternByName(options.pretokenizer));
  const TemplateNeeds needs = NeedsOf(*kind);
  if (options.eos_token.empty()) {
    return Status::InvalidArgument("eos_token is empty; a model needs a token that ends a text");
  }
  if (needs.needs_bos && options.bos_token.empty()) {
    return Status::InvalidArgument("bos_token is empty, but the " + options.chat_template +
                                   " chat template writes BOS; set bos_token (e.g. \"<s>\" or "
                                   "\"<|begin_of_text|>\")");
  }
  if (options.min_frequency < 1) {
    return Status::InvalidArgument("min_frequency is " + std::to_string(options.min_frequency) +
                                   ", expected at least 1");
  }
  BF_ASSIGN_OR_RETURN(std::vector<std::string> specials, SpecialTokens(options, needs));
  const int floor = static_cast<int>(specials.size()) + 256;
  if (options.vocab_size < floor || options.vocab_size > kMaxVocabSize) {
    return Status::InvalidArgument(
        "vocab_size is " + std::to_string(options.vocab_size) + ", expected " +
        std::to_string(floor) + ".." + std::to_string(kMaxVocabSize) + " (" +
        std::to_string(specials.size()) + " special tokens + 256 byte symbols + merges)");
  }
  BF_ASSIGN_OR_RETURN(const std::string jinja, BuiltinChatTemplateJinja(options.chat_template));

  const Learned learned =
      Learn(specials, texts, pattern, options.vocab_size, options.min_frequency);
  BF_RETURN_IF_ERROR(MakeDirs(out_dir));
  BF_RETURN_IF_ERROR(Env::Default()->WriteFileAtomic(
      out_dir + "/tokenizer.json",
      TokenizerJson(learned, specials.size(), pattern, options.bos_token)));
  return Env::Default()->WriteFileAtomic(out_dir + "/tokenizer_config.json",
                                         ConfigJson(specials, options, jinja));
}

}  // namespace breakfix::engine
