// A Hugging Face model's tokenizer.model (a serialized SentencePiece ModelProto).
//
// Why not libsentencepiece: Debian 12's libsentencepiece0 carries its own copy of protobuf-lite
// 3.14 with every symbol exported, and libtorch brings libprotobuf 3.21. In one process the two
// bind to each other's symbols and the program dies before main() (a segfault in protobuf's
// static initialisers, or protobuf's own version-mismatch abort, whichever library loads
// first). Since the engine must link libtorch, tokenizer.model is read here instead: a small,
// bounds-checked protobuf reader takes the pieces, scores and types, and the SentencePiece-style
// tokenizer (spm_tokenizer.h) encodes with them. For BPE models (Llama 2, Mistral, Phi-3) that
// is the library's algorithm; on llama.cpp's 46 test strings and the Llama 2 model both give
// the same ids (tokenizer_conformance_test.cc).
//
// Supported: model_type BPE, the "identity" normalizer (no precompiled character map, no
// extra-whitespace removal), with or without the dummy prefix. Anything else is an error that
// says which setting is unsupported.
#ifndef BREAKFIX_ENGINE_SENTENCEPIECE_TOKENIZER_H_
#define BREAKFIX_ENGINE_SENTENCEPIECE_TOKENIZER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "breakfix/engine.h"
#include "breakfix/status.h"
#include "engine/pretokenizer.h"

namespace breakfix::engine {

// What breakfix reads from a ModelProto (sentencepiece_model.proto field numbers in brackets).
struct SentencePieceModel {
  std::vector<std::string> pieces;       // pieces[1].piece[1]
  std::vector<float> scores;             // pieces[1].score[2], default 0
  std::vector<TokenType> types;          // pieces[1].type[3], default normal
  int model_type = 1;                    // trainer_spec[2].model_type[3]: 1 unigram, 2 BPE, ...
  bool byte_fallback = false;            // trainer_spec.byte_fallback[35]
  int unk_id = 0;                        // trainer_spec.unk_id[40]
  int bos_id = 1;                        // trainer_spec.bos_id[41], -1 = none
  int eos_id = 2;                        // trainer_spec.eos_id[42], -1 = none
  std::string normalizer_name;           // normalizer_spec[3].name[1]
  bool has_charsmap = false;             // normalizer_spec.precompiled_charsmap[2] is non-empty
  bool add_dummy_prefix = true;          // normalizer_spec.add_dummy_prefix[3]
  bool remove_extra_whitespaces = true;  // normalizer_spec.remove_extra_whitespaces[4]
  bool escape_whitespaces = true;        // normalizer_spec.escape_whitespaces[5]
};

// Parses a serialized ModelProto. Malformed bytes are an error naming `name`, the byte offset
// and the field; nothing here trusts a length or a count it read.
Result<SentencePieceModel> ParseSentencePieceModel(std::string_view bytes, const std::string& name);

struct SentencePieceOptions {
  // Tokens beyond (or re-labelling) the model's pieces, e.g. tokenizer_config.json's
  // added_tokens_decoder: `special` ones become control tokens, the others user-defined.
  std::vector<AddedToken> added_tokens;
  // BOS/EOS by text ("<s>"); empty = the model's own bos_id/eos_id.
  std::string bos_text;
  std::string eos_text;
  bool add_bos = true;  // whether prompts start with BOS
};

// Reads `model_path` and builds the tokenizer (kind() "sentencepiece"). Errors name the file
// and what is wrong or unsupported.
Result<std::unique_ptr<Tokenizer>> OpenSentencePieceModel(const std::string& model_path,
                                                          const SentencePieceOptions& options);

}  // namespace breakfix::engine

#endif  // BREAKFIX_ENGINE_SENTENCEPIECE_TOKENIZER_H_
