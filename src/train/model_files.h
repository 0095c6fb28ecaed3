// Writing trained weights as models the engine loads: a Hugging Face directory (config.json,
// model.safetensors, the base model's tokenizer files) for a Hugging Face base, or one GGUF file
// carrying the base file's metadata (tokenizer included) for a GGUF base. No libtorch here.
#ifndef BREAKFIX_TRAIN_MODEL_FILES_H_
#define BREAKFIX_TRAIN_MODEL_FILES_H_

#include <string>
#include <utility>
#include <vector>

#include "breakfix/status.h"
#include "engine/model_weights.h"

namespace breakfix::train {

using NamedTensors = std::vector<std::pair<std::string, engine::FloatTensor>>;

using engine::CanonicalTensorNames;

// The file name in a model directory that holds the weights for a base of `format` ("hf" or
// "gguf"): Hugging Face checkpoints are loaded by directory, GGUF ones by file.
std::string ModelPathIn(const std::string& dir, const std::string& format);

// Writes `tensors` (canonical names, float32) into the existing directory `dir` as a model of
// the same kind as `base_path` (a Hugging Face directory whose tokenizer files are copied, or a
// GGUF file whose metadata is copied). Written as float32.
Status WriteModelLike(const std::string& dir, const std::string& base_path,
                      const std::string& base_format, const engine::ModelConfig& config,
                      const NamedTensors& tensors);

// Copies the tokenizer files present in Hugging Face directory `from` into `to`; at least
// tokenizer.json or tokenizer.model must be among them.
Status CopyTokenizerFiles(const std::string& from, const std::string& to);

}  // namespace breakfix::train

#endif  // BREAKFIX_TRAIN_MODEL_FILES_H_
