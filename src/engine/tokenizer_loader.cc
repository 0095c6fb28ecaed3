#include "engine/tokenizer_loader.h"

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "breakfix/env.h"
#include "engine/bpe_tokenizer.h"
#include "engine/pretokenizer.h"
#include "engine/sentencepiece_tokenizer.h"
#include "engine/spm_tokenizer.h"

namespace breakfix::engine {
namespace {

using nlohmann::json;

// Ids a vocabulary may use at most; a larger id in a file is corruption, not a reason to
// allocate gigabytes.
constexpr int64_t kMaxTokenId = 1 << 24;

// ---------------------------------------------------------------------------------------------
// GGUF

// An optional special-token id: absent, -1 or 0xFFFFFFFF (how converters write "none") give -1.
Result<int32_t> OptionalTokenId(const GgufFile& gguf, const std::string& key, size_t n) {
  if (gguf.Find(key) == nullptr) return -1;
  BF_ASSIGN_OR_RETURN(int64_t id, gguf.GetInt(key));
  if (id == -1 || id == 0xFFFFFFFFLL) return -1;
  if (id < 0 || id >= static_cast<int64_t>(n)) {
    return Status::InvalidArgument(gguf.path() + ": metadata key '" + key + "' is " +
                                   std::to_string(id) + ", outside the vocabulary of " +
                                   std::to_string(n) + " tokens");
  }
  return static_cast<int32_t>(id);
}

Result<bool> OptionalBool(const GgufFile& gguf, const std::string& key, bool fallback) {
  if (gguf.Find(key) == nullptr) return fallback;
  return gguf.GetBool(key);
}

Result<std::vector<TokenType>> GgufTokenTypes(const GgufFile& gguf, size_t n) {
  const std::string key = "tokenizer.ggml.token_type";
  if (gguf.Find(key) == nullptr) return std::vector<TokenType>(n, TokenType::kNormal);
  BF_ASSIGN_OR_RETURN(std::vector<int64_t> raw, gguf.GetInts(key));
  if (raw.size() != n) {
    return Status::InvalidArgument(gguf.path() + ": metadata key '" + key + "' has " +
                                   std::to_string(raw.size()) + " entries, expected " +
                                   std::to_string(n) + " (one per token)");
  }
  std::vector<TokenType> types;
  types.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t t = raw[i];
    if (t == 0) {  // "undefined" in ggml: an ordinary token
      types.push_back(TokenType::kNormal);
    } else if (t >= 1 && t <= 6) {
      types.push_back(static_cast<TokenType>(t));
    } else {
      return Status::InvalidArgument(gguf.path() + ": metadata key '" + key + "' entry " +
                                     std::to_string(i) + " is " + std::to_string(t) +
                                     ", expected a token type 0..6");
    }
  }
  return types;
}

Result<std::unique_ptr<Tokenizer>> SpmFromGguf(const GgufFile& gguf,
                                               std::vector<std::string> tokens,
                                               std::vector<TokenType> types) {
  const size_t n = tokens.size();
  SpmVocabulary vocab;
  vocab.tokens = std::move(tokens);
  vocab.types = std::move(types);
  if (gguf.Find("tokenizer.ggml.scores") != nullptr) {
    BF_ASSIGN_OR_RETURN(std::vector<double> scores, gguf.GetFloats("tokenizer.ggml.scores"));
    if (scores.size() != n) {
      return Status::InvalidArgument(gguf.path() + ": metadata key 'tokenizer.ggml.scores' has " +
                                     std::to_string(scores.size()) + " entries, expected " +
                                     std::to_string(n) + " (one per token)");
    }
    vocab.scores.assign(scores.begin(), scores.end());
  }
  BF_ASSIGN_OR_RETURN(vocab.bos_id, OptionalTokenId(gguf, "tokenizer.ggml.bos_token_id", n));
  BF_ASSIGN_OR_RETURN(vocab.eos_id, OptionalTokenId(gguf, "tokenizer.ggml.eos_token_id", n));
  BF_ASSIGN_OR_RETURN(vocab.unk_id, OptionalTokenId(gguf, "tokenizer.ggml.unknown_token_id", n));
  BF_ASSIGN_OR_RETURN(vocab.eot_id, OptionalTokenId(gguf, "tokenizer.ggml.eot_token_id", n));
  BF_ASSIGN_OR_RETURN(vocab.add_bos, OptionalBool(gguf, "tokenizer.ggml.add_bos_token", true));
  BF_ASSIGN_OR_RETURN(vocab.add_space_prefix,
                      OptionalBool(gguf, "tokenizer.ggml.add_space_prefix", true));
  auto made = SpmTokenizer::Create(std::move(vocab));
  if (!made.ok()) return made.status().WithContext(gguf.path());
  return std::unique_ptr<Tokenizer>(std::move(made).value());
}

Result<std::unique_ptr<Tokenizer>> BpeFromGguf(const GgufFile& gguf,
                                               std::vector<std::string> tokens,
                                               std::vector<TokenType> types) {
  const size_t n = tokens.size();
  BpeVocabulary vocab;
  vocab.tokens = std::move(tokens);
  vocab.types = std::move(types);
  vocab.mode = BpeMode::kByteLevel;
  if (gguf.Find("tokenizer.ggml.merges") == nullptr) {
    return Status::InvalidArgument(gguf.path() +
                                   ": metadata key 'tokenizer.ggml.merges' not found (a \"gpt2\" "
                                   "tokenizer needs its merges)");
  }
  BF_ASSIGN_OR_RETURN(std::vector<std::string> merges, gguf.GetStrings("tokenizer.ggml.merges"));
  vocab.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const size_t space = merges[i].find(' ', 1);
    if (space == std::string::npos) {
      return Status::InvalidArgument(gguf.path() + ": metadata key 'tokenizer.ggml.merges' entry " +
                                     std::to_string(i) + " is \"" + merges[i] +
                                     "\", expected \"LEFT RIGHT\" (two tokens and a space)");
    }
    vocab.merges.emplace_back(merges[i].substr(0, space), merges[i].substr(space + 1));
  }
  std::string pre = "default";
  if (gguf.Find("tokenizer.ggml.pre") != nullptr) {
    BF_ASSIGN_OR_RETURN(pre, gguf.GetString("tokenizer.ggml.pre"));
  }
  auto pattern = PatternFromGgufPre(pre);
  if (!pattern.ok()) {
    return pattern.status().WithContext(gguf.path() + ": metadata key 'tokenizer.ggml.pre'");
  }
  vocab.pattern = *pattern;
  // Llama 3 takes a pre-token that is itself a token whole (llama.cpp does the same).
  vocab.ignore_merges = *pattern == PretokenizerPattern::kLlama3;
  BF_ASSIGN_OR_RETURN(vocab.bos_id, OptionalTokenId(gguf, "tokenizer.ggml.bos_token_id", n));
  BF_ASSIGN_OR_RETURN(vocab.eos_id, OptionalTokenId(gguf, "tokenizer.ggml.eos_token_id", n));
  BF_ASSIGN_OR_RETURN(vocab.unk_id, OptionalTokenId(gguf, "tokenizer.ggml.unknown_token_id", n));
  BF_ASSIGN_OR_RETURN(vocab.eot_id, OptionalTokenId(gguf, "tokenizer.ggml.eot_token_id", n));
  BF_ASSIGN_OR_RETURN(vocab.add_bos, OptionalBool(gguf, "tokenizer.ggml.add_bos_token", false));
  auto made = BpeTokenizer::Create(std::move(vocab));
  if (!made.ok()) return made.status().WithContext(gguf.path());
  return std::unique_ptr<Tokenizer>(std::move(made).value());
}

// ---------------------------------------------------------------------------------------------
// Hugging Face directories

Result<json> ReadJson(const std::string& path) {
  BF_ASSIGN_OR_RETURN(std::string text, Env::Default()->ReadFile(path));
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    return Status::InvalidArgument(path + ": not valid JSON: " + e.what());
  }
}

std::string TypeName(const json& v) { return v.type_name(); }

// The text of a token given as "text" or {"content": "text"}; nullopt for null or absent.
Result<std::optional<std::string>> TokenText(const json& obj, const std::string& key,
                                             const std::string& file) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<std::string>();
  if (it->is_string()) return std::optional<std::string>(it->get<std::string>());
  if (it->is_object()) {
    auto content = it->find("content");
    if (content != it->end() && content->is_string()) {
      return std::optional<std::string>(content->get<std::string>());
    }
  }
  return Status::InvalidArgument(file + ": field '" + key + "' is " + TypeName(*it) +
                                 ", expected a string or an object with a string \"content\"");
}

Result<bool> JsonBool(const json& obj, const std::string& key, bool fallback,
                      const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    return Status::InvalidArgument(where + ": field '" + key + "' is " + TypeName(*it) +
                                   ", expected true or false");
  }
  return it->get<bool>();
}

// What tokenizer_config.json says.
struct HfConfig {
  std::string chat_template;
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::optional<bool> add_bos_token;
  std::vector<AddedToken> added_tokens;  // added_tokens_decoder
};

Result<AddedToken> ParseAddedToken(const json& entry, int64_t id, const std::string& where) {
  if (!entry.is_object()) {
    return Status::InvalidArgument(where + " is " + TypeName(entry) + ", expected an object");
  }
  auto content = entry.find("content");
  if (content == entry.end() || !content->is_string() || content->get<std::string>().empty()) {
    return Status::InvalidArgument(where + ": field 'content' must be a non-empty string");
  }
  if (id < 0 || id >= kMaxTokenId) {
    return Status::InvalidArgument(where + ": id " + std::to_string(id) + " is outside 0.." +
                                   std::to_string(kMaxTokenId - 1));
  }
  AddedToken token;
  token.text = content->get<std::string>();
  token.id = static_cast<int32_t>(id);
  BF_ASSIGN_OR_RETURN(token.special, JsonBool(entry, "special", false, where));
  BF_ASSIGN_OR_RETURN(token.lstrip, JsonBool(entry, "lstrip", false, where));
  BF_ASSIGN_OR_RETURN(token.rstrip, JsonBool(entry, "rstrip", false, where));
  return token;
}

Result<HfConfig> ReadHfConfig(const std::string& path) {
  HfConfig config;
  BF_ASSIGN_OR_RETURN(json j, ReadJson(path));
  if (!j.is_object()) {
    return Status::InvalidArgument(path + ": the top level is " + TypeName(j) +
                                   ", expected an object");
  }
  if (auto it = j.find("chat_template"); it != j.end() && !it->is_null()) {
    if (it->is_string()) {
      config.chat_template = it->get<std::string>();
    } else if (it->is_array()) {
      // Named templates ({"name": ..., "template": ...}); the one named "default" is the chat
      // template. Without one, the model has none we can use.
      for (size_t i = 0; i < it->size(); ++i) {
        const json& entry = (*it)[i];
        auto name = entry.is_object() ? entry.find("name") : entry.end();
        auto text = entry.is_object() ? entry.find("template") : entry.end();
        if (!entry.is_object() || name == entry.end() || !name->is_string() ||
            text == entry.end() || !text->is_string()) {
          return Status::InvalidArgument(
              path + ": chat_template[" + std::to_string(i) +
              "] is not an object with string fields \"name\" and \"template\"");
        }
        if (name->get<std::string>() == "default") config.chat_template = text->get<std::string>();
      }
    } else {
      return Status::InvalidArgument(path + ": field 'chat_template' is " + TypeName(*it) +
                                     ", expected a string or a list of {name, template}");
    }
  }
  BF_ASSIGN_OR_RETURN(config.bos_token, TokenText(j, "bos_token", path));
  BF_ASSIGN_OR_RETURN(config.eos_token, TokenText(j, "eos_token", path));
  if (auto it = j.find("add_bos_token"); it != j.end() && !it->is_null()) {
    if (!it->is_boolean()) {
      return Status::InvalidArgument(path + ": field 'add_bos_token' is " + TypeName(*it) +
                                     ", expected true or false");
    }
    config.add_bos_token = it->get<bool>();
  }
  if (auto it = j.find("added_tokens_decoder"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) {
      return Status::InvalidArgument(path + ": field 'added_tokens_decoder' is " + TypeName(*it) +
                                     ", expected an object of id -> token");
    }
    for (const auto& [key, entry] : it->items()) {
      const std::string where = path + ": added_tokens_decoder[\"" + key + "\"]";
      int64_t id = -1;
      try {
        size_t used = 0;
        id = std::stoll(key, &used);
        if (used != key.size()) id = -1;
      } catch (const std::exception&) {
        id = -1;
      }
      if (id < 0) return Status::InvalidArgument(where + ": the key is not a token id");
      BF_ASSIGN_OR_RETURN(AddedToken token, ParseAddedToken(entry, id, where));
      config.added_tokens.push_back(std::move(token));
    }
  }
  return config;
}

// The items of a component that may be a Sequence of components under `list_key`.
std::vector<const json*> Components(const json& component, const char* list_key) {
  std::vector<const json*> out;
  if (!component.is_object()) return out;
  auto type = component.find("type");
  if (type != component.end() && type->is_string() && *type == "Sequence") {
    auto list = component.find(list_key);
    if (list != component.end() && list->is_array()) {
      for (const json& item : *list) {
        for (const json* inner : Components(item, list_key)) out.push_back(inner);
      }
    }
    return out;
  }
  out.push_back(&component);
  return out;
}

std::string ComponentType(const json& component) {
  auto type = component.find("type");
  return type != component.end() && type->is_string() ? type->get<std::string>() : "";
}

const json& Field(const json& obj, const char* key) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

// Fills the vocabulary and merges of tokenizer.json's "model" and its added tokens.
Status ReadBpeModel(const json& root, const std::string& path, const HfConfig& config,
                    BpeVocabulary* vocab) {
  const json& model = Field(root, "model");
  const json& vocab_json = Field(model, "vocab");
  if (!vocab_json.is_object()) {
    return Status::InvalidArgument(path + ": field 'model.vocab' is " + TypeName(vocab_json) +
                                   ", expected an object of token -> id");
  }
  for (const auto& [text, id_json] : vocab_json.items()) {
    if (!id_json.is_number_integer() || id_json.get<int64_t>() < 0 ||
        id_json.get<int64_t>() >= kMaxTokenId) {
      return Status::InvalidArgument(path + ": model.vocab[\"" + text + "\"] is " + id_json.dump() +
                                     ", expected a token id in 0.." +
                                     std::to_string(kMaxTokenId - 1));
    }
    const auto id = static_cast<size_t>(id_json.get<int64_t>());
    if (id >= vocab->tokens.size()) vocab->tokens.resize(id + 1);
    vocab->tokens[id] = text;
  }

  const json& merges = Field(model, "merges");
  if (!merges.is_array()) {
    return Status::InvalidArgument(path + ": field 'model.merges' is " + TypeName(merges) +
                                   ", expected a list of \"LEFT RIGHT\" strings or pairs");
  }
  vocab->merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ', 1);
      if (space == std::string::npos) {
        return Status::InvalidArgument(path + ": model.merges[" + std::to_string(i) + "] is \"" +
                                       s + "\", expected \"LEFT RIGHT\" (two tokens and a space)");
      }
      vocab->merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      vocab->merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      return Status::InvalidArgument(path + ": model.merges[" + std::to_string(i) + "] is " +
                                     m.dump() + ", expected \"LEFT RIGHT\" or [LEFT, RIGHT]");
    }
  }

  // Added tokens: tokenizer.json's list, then tokenizer_config.json's added_tokens_decoder for
  // ids the list does not cover.
  std::vector<AddedToken> added;
  const json& list = Field(root, "added_tokens");
  if (!list.is_null() && !list.is_array()) {
    return Status::InvalidArgument(path + ": field 'added_tokens' is " + TypeName(list) +
                                   ", expected a list");
  }
  if (list.is_array()) {
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string where = path + ": added_tokens[" + std::to_string(i) + "]";
      const json& id = Field(list[i], "id");
      if (!id.is_number_integer()) {
        return Status::InvalidArgument(where + ": field 'id' must be an integer");
      }
      BF_ASSIGN_OR_RETURN(AddedToken token, ParseAddedToken(list[i], id.get<int64_t>(), where));
      added.push_back(std::move(token));
    }
  }
  for (const AddedToken& token : config.added_tokens) {
    bool covered = false;
    for (const AddedToken& a : added) covered = covered || a.id == token.id;
    if (!covered) added.push_back(token);
  }
  for (const AddedToken& token : added) {
    const auto id = static_cast<size_t>(token.id);
    if (id >= vocab->tokens.size()) vocab->tokens.resize(id + 1);
    vocab->tokens[id] = token.text;
  }
  vocab->types.assign(vocab->tokens.size(), TokenType::kNormal);
  for (size_t id = 0; id < vocab->tokens.size(); ++id) {
    if (vocab->tokens[id].empty()) vocab->types[id] = TokenType::kUnused;  // a hole
  }
  for (const AddedToken& token : added) {
    vocab->types[static_cast<size_t>(token.id)] =
        token.special ? TokenType::kControl : TokenType::kUserDefined;
    if (token.lstrip || token.rstrip) vocab->strip[token.id] = {token.lstrip, token.rstrip};
  }

  BF_ASSIGN_OR_RETURN(vocab->ignore_merges, JsonBool(model, "ignore_merges", false, path));
  BF_ASSIGN_OR_RETURN(vocab->byte_fallback, JsonBool(model, "byte_fallback", false, path));
  BF_ASSIGN_OR_RETURN(vocab->fuse_unk, JsonBool(model, "fuse_unk", false, path));
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json& v = Field(model, key);
    if (!v.is_null() && !(v.is_string() && v.get<std::string>().empty())) {
      return Status::InvalidArgument(path + ": model." + key + " is " + v.dump() +
                                     "; BPE with word prefixes/suffixes is not supported "
                                     "(expected null)");
    }
  }
  return Status::OK();
}

// Reads the normalizer / pre-tokenizer setup into `vocab` (mode, pattern, prefix rules).
Status ReadBpeSetup(const json& root, const std::string& path, BpeVocabulary* vocab) {
  const json& pre = Field(root, "pre_tokenizer");
  const json& normalizer = Field(root, "normalizer");
  const json& decoder = Field(root, "decoder");
  bool byte_level = false;
  for (const json* d : Components(decoder, "decoders")) {
    byte_level = byte_level || ComponentType(*d) == "ByteLevel";
  }
  for (const json* p : Components(pre, "pretokenizers")) {
    byte_level = byte_level || ComponentType(*p) == "ByteLevel";
  }

  if (byte_level) {
    vocab->mode = BpeMode::kByteLevel;
    bool have_split = false;
    bool byte_level_regex = false;
    for (const json* p : Components(pre, "pretokenizers")) {
      const std::string type = ComponentType(*p);
      if (type == "ByteLevel") {
        BF_ASSIGN_OR_RETURN(byte_level_regex, JsonBool(*p, "use_regex", true, path));
        BF_ASSIGN_OR_RETURN(vocab->add_prefix_space, JsonBool(*p, "add_prefix_space", true, path));
      } else if (type == "Split") {
        const json& pattern = Field(*p, "pattern");
        const json& regex = Field(pattern, "Regex");
        if (!regex.is_string()) {
          return Status::InvalidArgument(path + ": pre_tokenizer Split pattern is " +
                                         pattern.dump() + ", expected {\"Regex\": \"...\"}");
        }
        auto parsed = PatternFromRegex(regex.get<std::string>());
        if (!parsed.ok()) return parsed.status().WithContext(path + ": pre_tokenizer Split");
        vocab->pattern = *parsed;
        have_split = true;
      } else {
        return Status::InvalidArgument(path + ": pre_tokenizer \"" + type +
                                       "\" is not supported with byte-level BPE (expected "
                                       "ByteLevel, optionally after a Split)");
      }
    }
    if (have_split && byte_level_regex) {
      return Status::InvalidArgument(path +
                                     ": pre_tokenizer has both a Split and a ByteLevel with "
                                     "use_regex true; expected one pattern (use_regex false)");
    }
    vocab->use_pattern = have_split || byte_level_regex;
    if (!have_split) vocab->pattern = PretokenizerPattern::kGpt2;
    for (const json* n : Components(normalizer, "normalizers")) {
      const std::string type = ComponentType(*n);
      // NFC is accepted without being applied: text that is already composed (nearly all
      // text) tokenizes the same.
      if (type != "NFC") {
        return Status::InvalidArgument(path + ": normalizer \"" + type +
                                       "\" is not supported with byte-level BPE (expected "
                                       "none or NFC)");
      }
    }
    return Status::OK();
  }

  // SentencePiece converted to BPE: spaces become "▁" through a Prepend+Replace normalizer or
  // a Metaspace pre-tokenizer.
  vocab->mode = BpeMode::kMetaspace;
  bool replaces_spaces = false;
  bool prepends = false;
  for (const json* n : Components(normalizer, "normalizers")) {
    const std::string type = ComponentType(*n);
    if (type == "Prepend" && Field(*n, "prepend") == std::string(kSpmSpace)) {
      prepends = true;
    } else if (type == "Replace" && Field(Field(*n, "pattern"), "String") == " " &&
               Field(*n, "content") == std::string(kSpmSpace)) {
      replaces_spaces = true;
    } else {
      return Status::InvalidArgument(path + ": normalizer \"" + type + "\" (" + n->dump() +
                                     ") is not supported (expected Prepend \"▁\" and Replace "
                                     "\" \" -> \"▁\")");
    }
  }
  if (replaces_spaces) {
    vocab->prepend = prepends ? MetaspacePrepend::kAlways : MetaspacePrepend::kNever;
  }
  bool metaspace = false;
  for (const json* p : Components(pre, "pretokenizers")) {
    const std::string type = ComponentType(*p);
    if (type != "Metaspace") {
      return Status::InvalidArgument(path + ": pre_tokenizer \"" + type +
                                     "\" is not supported (expected ByteLevel or Metaspace)");
    }
    const json& replacement = Field(*p, "replacement");
    if (!replacement.is_null() && replacement != std::string(kSpmSpace)) {
      return Status::InvalidArgument(path + ": Metaspace replacement " + replacement.dump() +
                                     " is not supported (expected \"▁\")");
    }
    metaspace = true;
    std::string scheme = "always";
    const json& scheme_json = Field(*p, "prepend_scheme");
    if (scheme_json.is_string()) {
      scheme = scheme_json.get<std::string>();
    } else {
      BF_ASSIGN_OR_RETURN(bool add_prefix, JsonBool(*p, "add_prefix_space", true, path));
      scheme = add_prefix ? "always" : "never";
    }
    if (scheme == "always") {
      vocab->prepend = MetaspacePrepend::kUnlessSpace;
    } else if (scheme == "first") {
      vocab->prepend = MetaspacePrepend::kFirstUnlessSpace;
    } else if (scheme == "never") {
      vocab->prepend = MetaspacePrepend::kNever;
    } else {
      return Status::InvalidArgument(path + ": Metaspace prepend_scheme \"" + scheme +
                                     "\" is not one of always, first, never");
    }
    BF_ASSIGN_OR_RETURN(vocab->split_on_space, JsonBool(*p, "split", true, path));
  }
  if (!metaspace && !replaces_spaces) {
    return Status::InvalidArgument(
        path +
        ": neither byte-level BPE (a ByteLevel pre-tokenizer or decoder) nor SentencePiece-style "
        "BPE (a Metaspace pre-tokenizer, or Replace \" \" -> \"▁\" normalizer) was found");
  }
  return Status::OK();
}

// The first special token of a TemplateProcessing post-processor's "single" template, the
// token such tokenizers put in front of every text (Llama 3: <|begin_of_text|>).
std::optional<std::string> TemplateBos(const json& root) {
  for (const json* p : Components(Field(root, "post_processor"), "processors")) {
    if (ComponentType(*p) != "TemplateProcessing") continue;
    const json& single = Field(*p, "single");
    if (!single.is_array() || single.empty()) continue;
    const json& id = Field(Field(single[0], "SpecialToken"), "id");
    if (id.is_string()) return id.get<std::string>();
  }
  return std::nullopt;
}

Result<std::unique_ptr<Tokenizer>> BpeFromTokenizerJson(const json& root, const std::string& path,
                                                        const HfConfig& config) {
  BpeVocabulary vocab;
  BF_RETURN_IF_ERROR(ReadBpeModel(root, path, config, &vocab));
  BF_RETURN_IF_ERROR(ReadBpeSetup(root, path, &vocab));

  // Special tokens by text; the index is the vocabulary's own (first id of a text).
  std::map<std::string, int32_t> ids;
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    if (!vocab.tokens[id].empty()) ids.emplace(vocab.tokens[id], static_cast<int32_t>(id));
  }
  const auto resolve = [&](const std::optional<std::string>& text, const std::string& where,
                           int32_t* out) -> Status {
    *out = -1;
    if (!text) return Status::OK();
    auto it = ids.find(*text);
    if (it == ids.end()) {
      return Status::InvalidArgument(where + " \"" + *text + "\" is not a token of " + path);
    }
    *out = it->second;
    return Status::OK();
  };
  const std::string config_file = "tokenizer_config.json";
  std::optional<std::string> template_bos = TemplateBos(root);
  BF_RETURN_IF_ERROR(resolve(
      config.bos_token ? config.bos_token : template_bos,
      config.bos_token ? config_file + ": bos_token" : path + ": post_processor special token",
      &vocab.bos_id));
  BF_RETURN_IF_ERROR(resolve(config.eos_token, config_file + ": eos_token", &vocab.eos_id));
  std::optional<std::string> unk;
  if (Field(Field(root, "model"), "unk_token").is_string()) {
    unk = Field(Field(root, "model"), "unk_token").get<std::string>();
  }
  BF_RETURN_IF_ERROR(resolve(unk, path + ": model.unk_token", &vocab.unk_id));
  if (config.add_bos_token) {
    vocab.add_bos = *config.add_bos_token;
  } else if (vocab.mode == BpeMode::kMetaspace) {
    vocab.add_bos = true;  // the Llama tokenizer's default
  } else {
    vocab.add_bos = template_bos.has_value() && vocab.bos_id >= 0;
  }
  auto made = BpeTokenizer::Create(std::move(vocab));
  if (!made.ok()) return made.status().WithContext(path);
  return std::unique_ptr<Tokenizer>(std::move(made).value());
}

bool IsFile(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

void FillTexts(LoadedTokenizer* loaded) {
  const Tokenizer& t = *loaded->tokenizer;
  if (t.bos_id() >= 0) loaded->bos_text = t.Piece(t.bos_id());
  if (t.eos_id() >= 0) loaded->eos_text = t.Piece(t.eos_id());
}

}  // namespace

Result<LoadedTokenizer> TokenizerFromGguf(const GgufFile& gguf) {
  const std::string& path = gguf.path();
  if (gguf.Find("tokenizer.ggml.model") == nullptr) {
    return Status::InvalidArgument(path +
                                   ": metadata key 'tokenizer.ggml.model' not found; the file "
                                   "has no tokenizer (expected \"llama\" or \"gpt2\")");
  }
  BF_ASSIGN_OR_RETURN(std::string model, gguf.GetString("tokenizer.ggml.model"));
  if (model != "llama" && model != "gpt2") {
    return Status::InvalidArgument(path + ": metadata key 'tokenizer.ggml.model' is \"" + model +
                                   "\"; supported are \"llama\" (SentencePiece-style) and "
                                   "\"gpt2\" (byte-level BPE)");
  }
  BF_ASSIGN_OR_RETURN(std::vector<std::string> tokens, gguf.GetStrings("tokenizer.ggml.tokens"));
  if (tokens.empty()) {
    return Status::InvalidArgument(path + ": metadata key 'tokenizer.ggml.tokens' is empty");
  }
  BF_ASSIGN_OR_RETURN(std::vector<TokenType> types, GgufTokenTypes(gguf, tokens.size()));

  LoadedTokenizer loaded;
  if (model == "llama") {
    BF_ASSIGN_OR_RETURN(loaded.tokenizer, SpmFromGguf(gguf, std::move(tokens), std::move(types)));
  } else {
    BF_ASSIGN_OR_RETURN(loaded.tokenizer, BpeFromGguf(gguf, std::move(tokens), std::move(types)));
  }
  if (gguf.Find("tokenizer.chat_template") != nullptr) {
    BF_ASSIGN_OR_RETURN(loaded.chat_template, gguf.GetString("tokenizer.chat_template"));
  }
  FillTexts(&loaded);
  return loaded;
}

Result<LoadedTokenizer> TokenizerFromHfDir(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return Status::NotFound(dir +
                            ": not a directory (expected a Hugging Face model directory "
                            "with tokenizer.json or tokenizer.model)");
  }
  const std::string json_path = dir + "/tokenizer.json";
  const std::string model_path = dir + "/tokenizer.model";
  const std::string config_path = dir + "/tokenizer_config.json";
  const std::string template_path = dir + "/chat_template.jinja";

  HfConfig config;
  if (IsFile(config_path)) {
    BF_ASSIGN_OR_RETURN(config, ReadHfConfig(config_path));
  }
  // Newer exports keep the template in its own file.
  if (config.chat_template.empty() && IsFile(template_path)) {
    BF_ASSIGN_OR_RETURN(config.chat_template, Env::Default()->ReadFile(template_path));
  }

  LoadedTokenizer loaded;
  loaded.chat_template = config.chat_template;
  bool use_model_file = !IsFile(json_path);
  json root;
  if (!use_model_file) {
    BF_ASSIGN_OR_RETURN(root, ReadJson(json_path));
    if (!root.is_object() || !Field(root, "model").is_object()) {
      return Status::InvalidArgument(json_path + ": expected an object with a \"model\" object");
    }
    const json& type = Field(Field(root, "model"), "type");
    const bool bpe =
        type.is_null() ? Field(Field(root, "model"), "merges").is_array() : type == "BPE";
    if (!bpe) {
      if (!IsFile(model_path)) {
        return Status::InvalidArgument(json_path + ": model.type is " + type.dump() +
                                       "; only \"BPE\" is supported (or put the SentencePiece "
                                       "tokenizer.model beside it)");
      }
      use_model_file = true;
    }
  }
  if (!use_model_file) {
    try {
      BF_ASSIGN_OR_RETURN(loaded.tokenizer, BpeFromTokenizerJson(root, json_path, config));
    } catch (const json::exception& e) {
      return Status::InvalidArgument(json_path + ": unexpected structure: " + e.what());
    }
  } else if (IsFile(model_path)) {
    SentencePieceOptions options;
    options.added_tokens = config.added_tokens;
    if (config.bos_token) options.bos_text = *config.bos_token;
    if (config.eos_token) options.eos_text = *config.eos_token;
    options.add_bos = config.add_bos_token.value_or(true);
    BF_ASSIGN_OR_RETURN(loaded.tokenizer, OpenSentencePieceModel(model_path, options));
  } else {
    return Status::NotFound(dir + ": neither tokenizer.json nor tokenizer.model found");
  }
  FillTexts(&loaded);
  return loaded;
}

}  // namespace breakfix::engine
