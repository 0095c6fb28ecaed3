#include "engine/sentencepiece_tokenizer.h"

#include <cstring>
#include <utility>

#include "breakfix/env.h"
#include "engine/spm_tokenizer.h"

namespace breakfix::engine {
namespace {

// Added token ids may run this far past the model's pieces; a larger id is taken for a corrupt
// configuration rather than a reason to allocate gigabytes.
constexpr int64_t kMaxAddedTokens = 1 << 20;

// Protobuf wire types used by sentencepiece_model.proto.
enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

struct Field {
  uint32_t number = 0;
  uint32_t wire_type = 0;
  uint64_t varint = 0;     // kVarint
  uint32_t fixed32 = 0;    // kFixed32
  std::string_view bytes;  // kLengthDelimited
  size_t offset = 0;       // where the field's key starts, for messages
};

// Reads one message's fields in order. Every read is checked against the end of the buffer.
class WireReader {
 public:
  WireReader(std::string_view data, size_t base, const std::string& name)
      : data_(data), base_(base), name_(name) {}

  bool done() const { return pos_ >= data_.size(); }

  Result<Field> Next() {
    Field f;
    f.offset = base_ + pos_;
    BF_ASSIGN_OR_RETURN(uint64_t key, Varint());
    f.number = static_cast<uint32_t>(key >> 3);
    f.wire_type = static_cast<uint32_t>(key & 7);
    if (f.number == 0 || key >> 3 > 0x1FFFFFFF) return Error(f.offset, "invalid field number");
    switch (f.wire_type) {
      case kVarint: {
        BF_ASSIGN_OR_RETURN(f.varint, Varint());
        break;
      }
      case kFixed64:
        if (data_.size() - pos_ < 8) return Error(f.offset, "truncated 64-bit field");
        pos_ += 8;
        break;
      case kFixed32:
        if (data_.size() - pos_ < 4) return Error(f.offset, "truncated 32-bit field");
        std::memcpy(&f.fixed32, data_.data() + pos_, 4);  // little-endian on every target
        pos_ += 4;
        break;
      case kLengthDelimited: {
        BF_ASSIGN_OR_RETURN(uint64_t len, Varint());
        if (len > data_.size() - pos_) {
          return Error(f.offset, "field " + std::to_string(f.number) + " claims " +
                                     std::to_string(len) + " bytes but only " +
                                     std::to_string(data_.size() - pos_) + " remain");
        }
        f.bytes = data_.substr(pos_, static_cast<size_t>(len));
        pos_ += static_cast<size_t>(len);
        break;
      }
      default:
        return Error(f.offset, "field " + std::to_string(f.number) + " has wire type " +
                                   std::to_string(f.wire_type) +
                                   " (expected 0, 1, 2 or 5: varint, fixed64, bytes, fixed32)");
    }
    return f;
  }

  Status Error(size_t offset, const std::string& what) const {
    return Status::InvalidArgument(name_ + ": byte " + std::to_string(offset) +
                                   ": not a SentencePiece model: " + what);
  }

  // The absolute offset of a length-delimited field's payload.
  size_t PayloadOffset(const Field& f) const {
    return base_ + static_cast<size_t>(f.bytes.data() - data_.data());
  }

 private:
  Result<uint64_t> Varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return Error(base_ + pos_, "truncated varint");
      const auto byte = static_cast<uint8_t>(data_[pos_++]);
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    return Error(base_ + pos_, "varint longer than 10 bytes");
  }

  std::string_view data_;
  size_t base_;
  size_t pos_ = 0;
  const std::string& name_;
};

// Checks that a field has the wire type the schema gives it.
Status Expect(const WireReader& r, const Field& f, uint32_t wire_type, const char* field) {
  if (f.wire_type == wire_type) return Status::OK();
  return r.Error(f.offset, std::string(field) + " has wire type " + std::to_string(f.wire_type) +
                               ", expected " + std::to_string(wire_type));
}

// int32 fields are written as sign-extended 64-bit varints.
int32_t AsInt32(uint64_t v) { return static_cast<int32_t>(static_cast<int64_t>(v)); }

Status ParsePiece(std::string_view bytes, size_t base, const std::string& name,
                  SentencePieceModel* model) {
  WireReader r(bytes, base, name);
  std::string piece;
  float score = 0;
  int64_t type = static_cast<int64_t>(TokenType::kNormal);
  while (!r.done()) {
    BF_ASSIGN_OR_RETURN(Field f, r.Next());
    if (f.number == 1) {
      BF_RETURN_IF_ERROR(Expect(r, f, kLengthDelimited, "SentencePiece.piece"));
      piece = std::string(f.bytes);
    } else if (f.number == 2) {
      BF_RETURN_IF_ERROR(Expect(r, f, kFixed32, "SentencePiece.score"));
      std::memcpy(&score, &f.fixed32, sizeof(score));
    } else if (f.number == 3) {
      BF_RETURN_IF_ERROR(Expect(r, f, kVarint, "SentencePiece.type"));
      type = static_cast<int64_t>(f.varint);
      if (type < 1 || type > 6) {
        return r.Error(f.offset, "piece " + std::to_string(model->pieces.size()) + " has type " +
                                     std::to_string(type) + " (expected 1..6)");
      }
    }
  }
  model->pieces.push_back(std::move(piece));
  model->scores.push_back(score);
  model->types.push_back(static_cast<TokenType>(type));
  return Status::OK();
}

Status ParseTrainerSpec(std::string_view bytes, size_t base, const std::string& name,
                        SentencePieceModel* model) {
  WireReader r(bytes, base, name);
  while (!r.done()) {
    BF_ASSIGN_OR_RETURN(Field f, r.Next());
    switch (f.number) {
      case 3:
        BF_RETURN_IF_ERROR(Expect(r, f, kVarint, "TrainerSpec.model_type"));
        model->model_type = AsInt32(f.varint);
        break;
      case 35:
        BF_RETURN_IF_ERROR(Expect(r, f, kVarint, "TrainerSpec.byte_fallback"));
        model->byte_fallback = f.varint != 0;
        break;
      case 40:
        BF_RETURN_IF_ERROR(Expect(r, f, kVarint, "TrainerSpec.unk_id"));
        model->unk_id = AsInt32(f.varint);
        break;
      case 41:
        BF_RETURN_IF_ERROR(Expect(r, f, kVarint, "TrainerSpec.bos_id"));
        model->bos_id = AsInt32(f.varint);
        break;
      case 42:
        BF_RETURN_IF_ERROR(Expect(r, f, kVarint, "TrainerSpec.eos_id"));
        model->eos_id = AsInt32(f.varint);
        break;
      default:
        break;
    }
  }
  return Status::OK();
}

Status ParseNormalizerSpec(std::string_view bytes, size_t base, const std::string& name,
                           SentencePieceModel* model) {
  WireReader r(bytes, base, name);
  while (!r.done()) {
    BF_ASSIGN_OR_RETURN(Field f, r.Next());
    switch (f.number) {
      case 1:
        BF_RETURN_IF_ERROR(Expect(r, f, kLengthDelimited, "NormalizerSpec.name"));
        model->normalizer_name = std::string(f.bytes);
        break;
      case 2:
        BF_RETURN_IF_ERROR(Expect(r, f, kLengthDelimited, "NormalizerSpec.precompiled_charsmap"));
        model->has_charsmap = !f.bytes.empty();
        break;
      case 3:
        BF_RETURN_IF_ERROR(Expect(r, f, kVarint, "NormalizerSpec.add_dummy_prefix"));
        model->add_dummy_prefix = f.varint != 0;
        break;
      case 4:
        BF_RETURN_IF_ERROR(Expect(r, f, kVarint, "NormalizerSpec.remove_extra_whitespaces"));
        model->remove_extra_whitespaces = f.varint != 0;
        break;
      case 5:
        BF_RETURN_IF_ERROR(Expect(r, f, kVarint, "NormalizerSpec.escape_whitespaces"));
        model->escape_whitespaces = f.varint != 0;
        break;
      default:
        break;
    }
  }
  return Status::OK();
}

}  // namespace

Result<SentencePieceModel> ParseSentencePieceModel(std::string_view bytes,
                                                   const std::string& name) {
  SentencePieceModel model;
  WireReader r(bytes, 0, name);
  while (!r.done()) {
    BF_ASSIGN_OR_RETURN(Field f, r.Next());
    if (f.number == 1) {
      BF_RETURN_IF_ERROR(Expect(r, f, kLengthDelimited, "ModelProto.pieces"));
      BF_RETURN_IF_ERROR(ParsePiece(f.bytes, r.PayloadOffset(f), name, &model));
    } else if (f.number == 2) {
      BF_RETURN_IF_ERROR(Expect(r, f, kLengthDelimited, "ModelProto.trainer_spec"));
      BF_RETURN_IF_ERROR(ParseTrainerSpec(f.bytes, r.PayloadOffset(f), name, &model));
    } else if (f.number == 3) {
      BF_RETURN_IF_ERROR(Expect(r, f, kLengthDelimited, "ModelProto.normalizer_spec"));
      BF_RETURN_IF_ERROR(ParseNormalizerSpec(f.bytes, r.PayloadOffset(f), name, &model));
    }
  }
  if (model.pieces.empty()) {
    return Status::InvalidArgument(name + ": not a SentencePiece model: it has no pieces");
  }
  return model;
}

Result<std::unique_ptr<Tokenizer>> OpenSentencePieceModel(const std::string& model_path,
                                                          const SentencePieceOptions& options) {
  BF_ASSIGN_OR_RETURN(std::string bytes, Env::Default()->ReadFile(model_path));
  BF_ASSIGN_OR_RETURN(SentencePieceModel model, ParseSentencePieceModel(bytes, model_path));
  const auto unsupported = [&](const std::string& what) {
    return Status::InvalidArgument(model_path + ": " + what);
  };
  if (model.model_type != 2) {
    return unsupported("trainer_spec.model_type is " + std::to_string(model.model_type) +
                       (model.model_type == 1 ? " (Unigram)" : "") +
                       "; only BPE models (2) are supported");
  }
  if (model.has_charsmap ||
      (!model.normalizer_name.empty() && model.normalizer_name != "identity")) {
    return unsupported("normalizer \"" + model.normalizer_name +
                       "\" rewrites text before tokenizing; only the \"identity\" normalizer is "
                       "supported");
  }
  if (model.remove_extra_whitespaces) {
    return unsupported(
        "normalizer_spec.remove_extra_whitespaces is true; only models that keep white space "
        "as written are supported");
  }
  if (!model.escape_whitespaces) {
    return unsupported(
        "normalizer_spec.escape_whitespaces is false; only models that write "
        "spaces as \"\xE2\x96\x81\" are supported");
  }

  const int64_t pieces = static_cast<int64_t>(model.pieces.size());
  SpmVocabulary vocab;
  vocab.tokens = std::move(model.pieces);
  vocab.scores = std::move(model.scores);
  vocab.types = std::move(model.types);
  vocab.add_space_prefix = model.add_dummy_prefix;
  vocab.add_bos = options.add_bos;
  vocab.kind = "sentencepiece";
  const auto model_id = [&](int id) { return id >= 0 && id < pieces ? id : -1; };
  vocab.unk_id = model_id(model.unk_id);

  // Added tokens extend the vocabulary; one with the id of a model piece re-labels it (as the
  // Hugging Face tokenizer does: the added text then encodes to and decodes from that id).
  for (const AddedToken& added : options.added_tokens) {
    if (added.id < 0 || added.id >= pieces + kMaxAddedTokens || added.text.empty()) {
      return Status::InvalidArgument(model_path + ": added token \"" + added.text + "\" has id " +
                                     std::to_string(added.id) +
                                     " (expected a non-empty text and an id in 0.." +
                                     std::to_string(pieces + kMaxAddedTokens - 1) + ")");
    }
    const auto id = static_cast<size_t>(added.id);
    if (id >= vocab.tokens.size()) {
      vocab.tokens.resize(id + 1);
      vocab.scores.resize(id + 1, 0.0f);
      vocab.types.resize(id + 1, TokenType::kUnused);
    }
    vocab.tokens[id] = added.text;
    if (added.lstrip || added.rstrip) vocab.strip[added.id] = {added.lstrip, added.rstrip};
    const TokenType current = vocab.types[id];
    if (!added.special) {
      vocab.types[id] = TokenType::kUserDefined;
    } else if (current != TokenType::kControl && current != TokenType::kUnknown) {
      vocab.types[id] = TokenType::kControl;
    }
  }

  // BOS/EOS: named by text in the configuration, else the model's own ids.
  const auto resolve = [&](const std::string& text, int fallback, const char* field,
                           int32_t* out) -> Status {
    *out = model_id(fallback);
    if (text.empty()) return Status::OK();
    for (size_t id = 0; id < vocab.tokens.size(); ++id) {
      if (vocab.tokens[id] == text) {
        *out = static_cast<int32_t>(id);
        return Status::OK();
      }
    }
    return Status::InvalidArgument(model_path + ": " + field + " \"" + text +
                                   "\" is neither a piece of the model nor an added token");
  };
  BF_RETURN_IF_ERROR(resolve(options.bos_text, model.bos_id, "bos_token", &vocab.bos_id));
  BF_RETURN_IF_ERROR(resolve(options.eos_text, model.eos_id, "eos_token", &vocab.eos_id));

  auto made = SpmTokenizer::Create(std::move(vocab));
  if (!made.ok()) return made.status().WithContext(model_path);
  return std::unique_ptr<Tokenizer>(std::move(made).value());
}

}  // namespace breakfix::engine
