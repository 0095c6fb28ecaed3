// LoadEngine: weights + tokenizer + chat template + transformer + scheduler, from one path.
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>

#include "breakfix/engine.h"
#include "engine/batching_engine.h"
#include "engine/gguf.h"
#include "engine/model_weights.h"
#include "engine/tokenizer_loader.h"
#include "engine/transformer.h"

namespace breakfix {
namespace {

constexpr int kMaxBatchLimit = 1024;
constexpr int kMaxThreads = 1024;

// The file or directory name, ignoring a trailing slash.
std::string ModelId(const std::string& path) {
  std::filesystem::path p(path);
  if (p.filename().empty()) p = p.parent_path();
  std::string name = p.filename().string();
  return name.empty() ? path : name;
}

// The template assumed for a model that ships none: what its family usually speaks.
ChatTemplateKind DefaultTemplate(const std::string& architecture) {
  if (architecture == "phi3") return ChatTemplateKind::kPhi3;
  if (architecture == "mistral") return ChatTemplateKind::kMistral;
  return ChatTemplateKind::kChatML;
}

std::string HumanParameters(int64_t n) {
  char buf[32];
  if (n >= 1'000'000'000) {
    std::snprintf(buf, sizeof(buf), "%.1fB", n / 1e9);
  } else if (n >= 1'000'000) {
    std::snprintf(buf, sizeof(buf), "%.1fM", n / 1e6);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1fK", n / 1e3);
  }
  return buf;
}

// Adds "path: " in front of an error unless the message names the path already.
Status AtPath(const Status& status, const std::string& path) {
  if (status.message().find(path) != std::string::npos) return status;
  return status.WithContext(path);
}

}  // namespace

Result<std::unique_ptr<Engine>> LoadEngine(const std::string& path, const EngineOptions& options) {
  if (options.max_batch < 1 || options.max_batch > kMaxBatchLimit) {
    return Status::InvalidArgument("engine option max_batch must be 1.." +
                                   std::to_string(kMaxBatchLimit) + ", got " +
                                   std::to_string(options.max_batch));
  }
  if (options.context_length < 0) {
    return Status::InvalidArgument(
        "engine option context_length must be >= 0 (0 = the model's), "
        "got " +
        std::to_string(options.context_length));
  }
  if (options.threads < 1 || options.threads > kMaxThreads) {
    return Status::InvalidArgument("engine option threads must be 1.." +
                                   std::to_string(kMaxThreads) + ", got " +
                                   std::to_string(options.threads));
  }
  std::optional<ChatTemplateKind> forced;
  if (!options.chat_template.empty()) {
    auto kind = ParseChatTemplateName(options.chat_template);
    if (!kind.ok()) return kind.status().WithContext("chat_template");
    forced = *kind;
  }

  auto weights = engine::OpenWeights(path);
  if (!weights.ok()) return AtPath(weights.status(), path);
  const engine::ModelConfig& config = (*weights)->config();

  engine::LoadedTokenizer loaded;
  if ((*weights)->format() == "gguf") {
    auto gguf = engine::GgufFile::Open(path);
    if (!gguf.ok()) return AtPath(gguf.status(), path);
    auto tok = engine::TokenizerFromGguf(**gguf);
    if (!tok.ok()) return AtPath(tok.status(), path);
    loaded = std::move(tok).value();
  } else {
    auto tok = engine::TokenizerFromHfDir(path);
    if (!tok.ok()) return AtPath(tok.status(), path);
    loaded = std::move(tok).value();
  }
  if (!loaded.tokenizer) return Status::Internal(path + ": the tokenizer loader returned none");
  if (loaded.tokenizer->vocab_size() > config.vocab_size) {
    return Status::InvalidArgument(path + ": the tokenizer has " +
                                   std::to_string(loaded.tokenizer->vocab_size()) +
                                   " tokens but the model's embedding has only " +
                                   std::to_string(config.vocab_size) + " rows");
  }

  ChatTemplateKind chat_template = DefaultTemplate(config.architecture);
  std::string template_note;
  if (forced) {
    chat_template = *forced;
    template_note = " (chosen)";
  } else if (!loaded.chat_template.empty()) {
    auto kind = DetectChatTemplate(loaded.chat_template);
    if (!kind.ok()) return AtPath(kind.status(), path);
    chat_template = *kind;
  } else {
    template_note = " (the model has none; assumed)";
  }

  engine::TransformerOptions topts;
  topts.max_slots = options.max_batch;
  topts.context_length = options.context_length;
  topts.threads = options.threads;
  topts.device = options.device;
  auto transformer = engine::Transformer::Create(**weights, topts);
  if (!transformer.ok()) return AtPath(transformer.status(), path);

  engine::EngineParts parts;
  parts.info.model_id = ModelId(path);
  parts.info.architecture = config.architecture;
  parts.info.source_format = (*weights)->format();
  parts.info.parameters = (*transformer)->parameter_count();
  parts.info.context_length = (*transformer)->context_length();
  parts.info.vocab_size = config.vocab_size;
  parts.info.chat_template = chat_template;
  parts.info.content_hash = (*weights)->content_hash();
  parts.info.description = parts.info.model_id + ": " + config.architecture + ", " +
                           HumanParameters(parts.info.parameters) + " parameters, " +
                           parts.info.source_format + ", " + loaded.tokenizer->kind() +
                           " tokenizer, context " + std::to_string(parts.info.context_length) +
                           ", chat template " + ChatTemplateName(chat_template) + template_note +
                           ", batch " + std::to_string(options.max_batch);
  parts.transformer = std::move(transformer).value();
  parts.tokenizer = std::move(loaded.tokenizer);
  parts.chat_template = chat_template;
  parts.bos_text = std::move(loaded.bos_text);
  parts.eos_text = std::move(loaded.eos_text);
  return engine::NewBatchingEngine(std::move(parts));
}

}  // namespace breakfix
