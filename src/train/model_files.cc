#include "train/model_files.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <numbers>
#include <string>

#include "breakfix/env.h"
#include "breakfix/train.h"
#include "core/atomic_file.h"
#include "engine/gguf.h"
#include "engine/gguf_writer.h"
#include "engine/tokenizer_loader.h"

namespace breakfix::train {
namespace {

namespace fs = std::filesystem;
using engine::FloatTensor;
using engine::ModelConfig;

// Files of a Hugging Face directory that describe the tokenizer and generation defaults.
constexpr const char* kTokenizerFiles[] = {"tokenizer.json",
                                           "tokenizer.model",
                                           "tokenizer_config.json",
                                           "special_tokens_map.json",
                                           "added_tokens.json",
                                           "vocab.json",
                                           "merges.txt",
                                           "generation_config.json"};

// Splits "layers.3.wq" into (3, "wq"); (-1, name) for global tensors.
std::pair<int, std::string> SplitName(const std::string& name) {
  if (name.rfind("layers.", 0) != 0) return {-1, name};
  const size_t dot = name.find('.', 7);
  return {std::stoi(name.substr(7, dot - 7)), name.substr(dot + 1)};
}

FloatTensor Concat(const std::vector<const FloatTensor*>& parts) {
  FloatTensor out;
  out.shape = parts[0]->shape;
  out.shape[0] = 0;
  for (const FloatTensor* p : parts) {
    out.shape[0] += p->shape[0];
    out.data.insert(out.data.end(), p->data.begin(), p->data.end());
  }
  return out;
}

Status WriteHf(const std::string& dir, const std::string& base_dir, const ModelConfig& config,
               const NamedTensors& tensors) {
  if (config.rope_style != engine::RopeStyle::kHalfSplit) {
    return Status::Internal("a Hugging Face checkpoint needs half-split RoPE weights");
  }
  std::map<std::string, const FloatTensor*> by_name;
  for (const auto& [name, t] : tensors) by_name[name] = &t;
  NamedTensors out;
  // phi3 checkpoints fuse q/k/v and gate/up, as the Hugging Face Phi3 model expects.
  const bool fused = config.architecture == "phi3";
  for (const std::string& name : CanonicalTensorNames(config)) {
    auto it = by_name.find(name);
    if (it == by_name.end()) return Status::Internal("checkpoint: tensor " + name + " is missing");
    const auto [layer, role] = SplitName(name);
    if (fused && layer >= 0 && (role == "wk" || role == "wv" || role == "w3")) continue;
    if (fused && layer >= 0 && (role == "wq" || role == "w1")) {
      const std::string p = "layers." + std::to_string(layer) + ".";
      const std::string h = "model.layers." + std::to_string(layer) + ".";
      if (role == "wq") {
        out.push_back({h + "self_attn.qkv_proj.weight",
                       Concat({by_name[p + "wq"], by_name[p + "wk"], by_name[p + "wv"]})});
      } else {
        out.push_back(
            {h + "mlp.gate_up_proj.weight", Concat({by_name[p + "w1"], by_name[p + "w3"]})});
      }
      continue;
    }
    BF_ASSIGN_OR_RETURN(std::string source, engine::SourceTensorName("hf", name));
    out.push_back({std::move(source), *it->second});
  }
  BF_RETURN_IF_ERROR(engine::WriteSafetensors((fs::path(dir) / "model.safetensors").string(), out,
                                              {{"format", "pt"}}));
  BF_RETURN_IF_ERROR(engine::WriteHfConfig(dir, config));
  return CopyTokenizerFiles(base_dir, dir);
}

Status WriteGgufLike(const std::string& dir, const std::string& base_file,
                     const NamedTensors& tensors) {
  BF_ASSIGN_OR_RETURN(auto base, engine::GgufFile::Open(base_file));
  std::map<std::string, engine::GgufValue> metadata = base->metadata();
  // The tensors are float32 now, whatever the base was quantized to (0 = all F32).
  if (metadata.count("general.file_type") != 0) {
    metadata["general.file_type"] = engine::GgufUint32(0);
  }
  std::vector<engine::GgufWriterTensor> out;
  out.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    engine::GgufWriterTensor w;
    BF_ASSIGN_OR_RETURN(w.name, engine::SourceTensorName("gguf", name));
    w.shape = t.shape;
    w.data = t.data;
    out.push_back(std::move(w));
  }
  return engine::WriteGguf(ModelPathIn(dir, "gguf"), metadata, out);
}

// N(0, 1) by Box-Muller from the platform-independent generator.
double Normal(Random& rng) {
  double u1 = rng.Uniform();
  while (u1 <= 0) u1 = rng.Uniform();
  const double u2 = rng.Uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
}

Status CheckShape(const ModelShape& s) {
  auto positive = [](const char* field, int v) -> Status {
    if (v > 0) return Status::OK();
    return Status::InvalidArgument(std::string("model shape: ") + field +
                                   " must be positive, got " + std::to_string(v));
  };
  BF_RETURN_IF_ERROR(positive("hidden_size", s.hidden_size));
  BF_RETURN_IF_ERROR(positive("n_layers", s.n_layers));
  BF_RETURN_IF_ERROR(positive("n_heads", s.n_heads));
  BF_RETURN_IF_ERROR(positive("context_length", s.context_length));
  for (auto [field, v] : {std::pair{"vocab_size", s.vocab_size},
                          {"n_kv_heads", s.n_kv_heads},
                          {"head_dim", s.head_dim},
                          {"ffn_size", s.ffn_size}}) {
    if (v < 0) {
      return Status::InvalidArgument(std::string("model shape: ") + field +
                                     " must be >= 0 (0 = default), got " + std::to_string(v));
    }
  }
  if (s.head_dim == 0 && s.hidden_size % s.n_heads != 0) {
    return Status::InvalidArgument("model shape: hidden_size " + std::to_string(s.hidden_size) +
                                   " is not a multiple of n_heads " + std::to_string(s.n_heads) +
                                   "; set head_dim");
  }
  if (!(s.rope_theta > 0) || !(s.rms_eps > 0)) {
    return Status::InvalidArgument("model shape: rope_theta and rms_eps must be positive");
  }
  return Status::OK();
}

}  // namespace

std::string ModelPathIn(const std::string& dir, const std::string& format) {
  if (format == "gguf") return (fs::path(dir) / "model.gguf").string();
  return dir;
}

Status CopyTokenizerFiles(const std::string& from, const std::string& to) {
  bool have_vocabulary = false;
  for (const char* name : kTokenizerFiles) {
    const fs::path src = fs::path(from) / name;
    std::error_code ec;
    if (!fs::is_regular_file(src, ec)) continue;
    fs::copy_file(src, fs::path(to) / name, fs::copy_options::overwrite_existing, ec);
    if (ec) {
      return Status::IOError(src.string() + ": cannot copy to " + to + ": " + ec.message());
    }
    const std::string n = name;
    have_vocabulary = have_vocabulary || n == "tokenizer.json" || n == "tokenizer.model";
  }
  if (!have_vocabulary) {
    return Status::InvalidArgument(from + ": neither tokenizer.json nor tokenizer.model is there");
  }
  return Status::OK();
}

Status WriteModelLike(const std::string& dir, const std::string& base_path,
                      const std::string& base_format, const ModelConfig& config,
                      const NamedTensors& tensors) {
  if (base_format == "gguf") return WriteGgufLike(dir, base_path, tensors);
  if (base_format == "hf") return WriteHf(dir, base_path, config, tensors);
  return Status::InvalidArgument("cannot write a checkpoint like a '" + base_format +
                                 "' model (expected a Hugging Face directory or a GGUF file)");
}

namespace {

Status WriteInitialModel(const InitModelOptions& options) {
  const ModelShape& s = options.shape;
  BF_RETURN_IF_ERROR(CheckShape(s));
  if (!(options.init_std > 0)) {
    return Status::InvalidArgument("init_std must be positive, got " +
                                   std::to_string(options.init_std));
  }
  if (options.output_dir.empty()) return Status::InvalidArgument("output_dir is empty");
  std::error_code ec;
  if (fs::exists(fs::path(options.output_dir) / "config.json", ec)) {
    return Status::InvalidArgument(options.output_dir +
                                   " already holds a model (config.json); choose a new directory");
  }
  auto tokenizer = engine::TokenizerFromHfDir(options.tokenizer_dir);
  if (!tokenizer.ok()) return tokenizer.status().WithContext("tokenizer " + options.tokenizer_dir);
  const int tokens = tokenizer->tokenizer->vocab_size();
  if (s.vocab_size != 0 && s.vocab_size < tokens) {
    return Status::InvalidArgument("model shape: vocab_size " + std::to_string(s.vocab_size) +
                                   " is smaller than the tokenizer's " + std::to_string(tokens) +
                                   " tokens");
  }

  engine::ModelConfig c;
  c.architecture = s.architecture;
  c.vocab_size = s.vocab_size == 0 ? tokens : s.vocab_size;
  c.hidden_size = s.hidden_size;
  c.n_layers = s.n_layers;
  c.n_heads = s.n_heads;
  c.n_kv_heads = s.n_kv_heads == 0 ? s.n_heads : s.n_kv_heads;
  c.head_dim = s.head_dim == 0 ? s.hidden_size / s.n_heads : s.head_dim;
  c.ffn_size = s.ffn_size == 0 ? (8 * s.hidden_size / 3 + 31) / 32 * 32 : s.ffn_size;
  c.context_length = s.context_length;
  c.rms_eps = s.rms_eps;
  c.rope_theta = s.rope_theta;
  c.rope_dim = c.head_dim;
  c.rope_style = engine::RopeStyle::kHalfSplit;
  c.qkv_bias = s.qkv_bias;
  c.tied_embeddings = s.tied_embeddings;
  if (c.n_heads % c.n_kv_heads != 0) {
    return Status::InvalidArgument("model shape: n_heads " + std::to_string(c.n_heads) +
                                   " is not a multiple of n_kv_heads " +
                                   std::to_string(c.n_kv_heads));
  }

  // Residual projections (wo, w2) add into the stream once per layer each; scaling them by
  // 1/sqrt(2 n_layers) keeps the stream's variance independent of depth (GPT-2's rule).
  Random rng(options.seed);
  const double std_dev = options.init_std;
  const double residual_std = std_dev / std::sqrt(2.0 * c.n_layers);
  const int64_t V = c.vocab_size, H = c.hidden_size, F = c.ffn_size;
  const int64_t q = int64_t{c.n_heads} * c.head_dim, kv = int64_t{c.n_kv_heads} * c.head_dim;
  NamedTensors tensors;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, double sd, double fill) {
    FloatTensor t;
    t.shape = shape;
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    t.data.resize(n);
    for (float& v : t.data) v = static_cast<float>(sd > 0 ? sd * Normal(rng) : fill);
    tensors.push_back({name, std::move(t)});
  };
  for (const std::string& name : CanonicalTensorNames(c)) {
    const auto [layer, role] = SplitName(name);
    if (role == "tok_embeddings" || role == "output") {
      add(name, {V, H}, std_dev, 0);
    } else if (role == "norm" || role == "attention_norm" || role == "ffn_norm") {
      add(name, {H}, 0, 1.0);
    } else if (role == "wq") {
      add(name, {q, H}, std_dev, 0);
    } else if (role == "wk" || role == "wv") {
      add(name, {kv, H}, std_dev, 0);
    } else if (role == "bq") {
      add(name, {q}, 0, 0.0);
    } else if (role == "bk" || role == "bv") {
      add(name, {kv}, 0, 0.0);
    } else if (role == "wo") {
      add(name, {H, q}, residual_std, 0);
    } else if (role == "w1" || role == "w3") {
      add(name, {F, H}, std_dev, 0);
    } else if (role == "w2") {
      add(name, {H, F}, residual_std, 0);
    }
  }
  BF_RETURN_IF_ERROR(MakeDirs(options.output_dir));
  return WriteModelLike(options.output_dir, options.tokenizer_dir, "hf", c, tensors);
}

}  // namespace
}  // namespace breakfix::train

namespace breakfix {

Status InitModel(const InitModelOptions& options) { return train::WriteInitialModel(options); }

}  // namespace breakfix
