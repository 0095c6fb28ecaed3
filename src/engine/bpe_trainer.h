// Learning a byte-level BPE tokenizer from text, for models trained from scratch.
//
// The output is a Hugging Face directory (tokenizer.json + tokenizer_config.json) that the
// engine's own loader (tokenizer_loader.h) reads unchanged, so a model trained with it runs under
// `local:` like any downloaded one. Ids are laid out as: the special tokens (ids 0..S-1, in the
// order below), the 256 byte symbols in byte order (spelled in GPT-2's byte alphabet), then one
// token per merge in the order learned.
//
// Training: each text is cut at the special tokens' textual forms (they never take part in a
// merge), the rest is split by the chosen pre-tokenizer pattern exactly as the encoder splits it,
// and identical pieces are counted once with their frequency. Then, repeatedly, the most frequent
// adjacent pair of symbols within a piece becomes a merge, until the vocabulary is full or no pair
// occurs min_frequency times. Ties go to the pair whose (left id, right id) is smallest, i.e. the
// pair built from earlier tokens, so the result depends only on the multiset of pieces: the same
// texts in any order give byte-identical files.
#ifndef BREAKFIX_ENGINE_BPE_TRAINER_H_
#define BREAKFIX_ENGINE_BPE_TRAINER_H_

#include <string>
#include <vector>

#include "breakfix/status.h"

namespace breakfix::engine {

struct BpeTrainOptions {
  // Total ids: special tokens + 256 byte symbols + merges. Must leave room for the first two.
  int vocab_size = 8192;
  // A pair seen fewer times than this in the whole corpus is never merged (>= 1).
  int min_frequency = 2;
  // Special tokens, ids 0.. in this order. bos_token, eos_token and the chat template's own
  // markers (<|im_start|>/<|im_end|> for chatml, <|user|>... for phi3 and zephyr, the header and
  // end-of-turn tokens for llama3) are appended when missing.
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
  // BOS text; "" = none. When set, the tokenizer puts it in front of every encoded text by
  // default (add_bos_token), as Llama-style models expect. llama2, mistral and llama3 templates
  // write BOS themselves and need one.
  std::string bos_token;
  // EOS text; required: a model must have a way to end.
  std::string eos_token = "<|endoftext|>";
  // The built-in chat template (ChatTemplateName: phi3, llama2, llama3, chatml, mistral,
  // zephyr); its Jinja text goes into tokenizer_config.json and DetectChatTemplate recognises it.
  std::string chat_template = "chatml";
  // The pre-tokenizer split (PretokenizerPatternName): "gpt2" (GPT-2's pattern, through a
  // ByteLevel pre-tokenizer), "llama3" or "qwen2" (a Split with that pattern, then ByteLevel).
  std::string pretokenizer = "gpt2";
};

// Learns the merges from `texts` and writes tokenizer.json and tokenizer_config.json into
// `out_dir` (created when missing; each file written atomically). Options out of range, an
// unknown template or pattern name, or a special token that is empty, repeated or not valid UTF-8
// are InvalidArgument errors naming the field.
Status TrainBpeTokenizer(const std::vector<std::string>& texts, const BpeTrainOptions& options,
                         const std::string& out_dir);

// The Jinja text written for a built-in chat template (a ChatTemplateName). Each renders, for the
// same messages, bos_token and eos_token, exactly what RenderChat() does. Unknown names are an
// InvalidArgument error listing the choices.
Result<std::string> BuiltinChatTemplateJinja(const std::string& name);

}  // namespace breakfix::engine

#endif  // BREAKFIX_ENGINE_BPE_TRAINER_H_
