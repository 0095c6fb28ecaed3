// Building a Tokenizer and finding the chat template, from a GGUF file's metadata or from a
// Hugging Face directory (tokenizer.json and/or tokenizer.model, tokenizer_config.json).
#ifndef BREAKFIX_ENGINE_TOKENIZER_LOADER_H_
#define BREAKFIX_ENGINE_TOKENIZER_LOADER_H_

#include <memory>
#include <string>

#include "breakfix/engine.h"
#include "engine/gguf.h"

namespace breakfix::engine {

struct LoadedTokenizer {
  std::unique_ptr<Tokenizer> tokenizer;
  std::string chat_template;  // the model's Jinja template text, "" when it has none
  std::string bos_text;       // textual forms of BOS/EOS for template rendering
  std::string eos_text;
};

// From GGUF metadata: tokenizer.ggml.model "llama" (SentencePiece-style: tokens, scores,
// token_type) or "gpt2" (byte-level BPE: tokens, merges, token_type, pre-tokenizer name);
// bos/eos/unk ids, add_bos_token; tokenizer.chat_template.
Result<LoadedTokenizer> TokenizerFromGguf(const GgufFile& gguf);

// From a Hugging Face directory: tokenizer.json (BPE or SentencePiece-converted) when present,
// else tokenizer.model (read by sentencepiece_tokenizer.cc); special tokens and chat template from
// tokenizer_config.json.
Result<LoadedTokenizer> TokenizerFromHfDir(const std::string& dir);

}  // namespace breakfix::engine

#endif  // BREAKFIX_ENGINE_TOKENIZER_LOADER_H_
