// OpenWeights: a GGUF file or a Hugging Face directory behind one canonical WeightSource, and
// WriteHfConfig. safetensors itself lives in safetensors.cc.
#include "engine/model_weights.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <filesystem>
#include <limits>
#include <mutex>
#include <numbers>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "breakfix/hash.h"
#include "core/atomic_file.h"
#include "engine/gguf.h"
#include "engine/mapped_file.h"

namespace breakfix::engine {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// --- canonical names ------------------------------------------------------------------------

// What a canonical tensor is: its role, its layer (-1 for global tensors) and its shape.
struct Canonical {
  std::string role;  // "tok_embeddings", "norm", "output", or the per-layer suffix ("wq", ...)
  int layer = -1;
  std::vector<int64_t> shape;
};

constexpr const char* kLayerRoles[] = {"attention_norm", "wq", "wk", "wv", "bq", "bk", "bv", "wo",
                                       "ffn_norm",       "w1", "w3", "w2"};

std::optional<Canonical> ParseCanonical(const ModelConfig& c, const std::string& name) {
  const int64_t H = c.hidden_size, F = c.ffn_size, V = c.vocab_size;
  const int64_t q_rows = int64_t{c.n_heads} * c.head_dim;
  const int64_t kv_rows = int64_t{c.n_kv_heads} * c.head_dim;
  if (name == "tok_embeddings" || name == "output") return Canonical{name, -1, {V, H}};
  if (name == "norm") return Canonical{name, -1, {H}};
  constexpr std::string_view kPrefix = "layers.";
  if (name.compare(0, kPrefix.size(), kPrefix) != 0) return std::nullopt;
  size_t pos = kPrefix.size();
  int64_t layer = 0;
  const size_t digits_at = pos;
  while (pos < name.size() && name[pos] >= '0' && name[pos] <= '9' && pos - digits_at < 9) {
    layer = layer * 10 + (name[pos] - '0');
    ++pos;
  }
  if (pos == digits_at || pos >= name.size() || name[pos] != '.') return std::nullopt;
  if (pos - digits_at > 1 && name[digits_at] == '0') return std::nullopt;  // "layers.01"
  if (layer >= c.n_layers) return std::nullopt;
  const std::string role = name.substr(pos + 1);
  Canonical out{role, static_cast<int>(layer), {}};
  if (role == "attention_norm" || role == "ffn_norm") {
    out.shape = {H};
  } else if (role == "wq") {
    out.shape = {q_rows, H};
  } else if (role == "wk" || role == "wv") {
    out.shape = {kv_rows, H};
  } else if (role == "bq" && c.qkv_bias) {
    out.shape = {q_rows};
  } else if ((role == "bk" || role == "bv") && c.qkv_bias) {
    out.shape = {kv_rows};
  } else if (role == "wo") {
    out.shape = {H, q_rows};
  } else if (role == "w1" || role == "w3") {
    out.shape = {F, H};
  } else if (role == "w2") {
    out.shape = {H, F};
  } else {
    return std::nullopt;
  }
  return out;
}

// Every canonical name the config implies, in a stable order; "output" also when tied (it then
// resolves to the embeddings).
std::vector<std::string> CanonicalNames(const ModelConfig& c) {
  std::vector<std::string> names = CanonicalTensorNames(c);
  if (c.tied_embeddings) names.insert(names.begin() + 2, "output");
  return names;
}
// --- sources --------------------------------------------------------------------------------

// Where a canonical tensor comes from: a source tensor, whole or a block of its rows (fused
// q/k/v and gate/up projections).
struct Origin {
  std::string tensor;
  int64_t row_begin = 0;
  int64_t rows = -1;  // -1 = all rows
};

// Names of one checkpoint family. Fused tensors split by rows: qkv = [q; k; v], gate_up = [gate;
// up]. In GGUF phi3 the fused gate/up tensor is ffn_up itself (2F rows, no ffn_gate).
struct NameScheme {
  std::string embed, final_norm, output, layer_prefix;
  std::string attn_norm, q, k, v, qkv, o, ffn_norm, gate, up, gate_up, down;
};

const NameScheme kGgufNames = {"token_embd.weight",
                               "output_norm.weight",
                               "output.weight",
                               "blk.",
                               "attn_norm",
                               "attn_q",
                               "attn_k",
                               "attn_v",
                               "attn_qkv",
                               "attn_output",
                               "ffn_norm",
                               "ffn_gate",
                               "ffn_up",
                               "ffn_up",
                               "ffn_down"};
const NameScheme kHfNames = {"model.embed_tokens.weight",
                             "model.norm.weight",
                             "lm_head.weight",
                             "model.layers.",
                             "input_layernorm",
                             "self_attn.q_proj",
                             "self_attn.k_proj",
                             "self_attn.v_proj",
                             "self_attn.qkv_proj",
                             "self_attn.o_proj",
                             "post_attention_layernorm",
                             "mlp.gate_proj",
                             "mlp.up_proj",
                             "mlp.gate_up_proj",
                             "mlp.down_proj"};

class WeightSourceBase : public WeightSource {
 public:
  WeightSourceBase(std::string path, std::string format, const NameScheme& names)
      : path_(std::move(path)), format_(std::move(format)), names_(names) {}

  const ModelConfig& config() const override { return config_; }
  const std::string& format() const override { return format_; }

  Result<FloatTensor> Get(const std::string& canonical_name) const override {
    auto canonical = ParseCanonical(config_, canonical_name);
    if (!canonical) {
      return Status::NotFound(path_ + ": no canonical tensor '" + canonical_name + "' in this " +
                              config_.architecture + " model (" + std::to_string(config_.n_layers) +
                              " layers" + (config_.qkv_bias ? ", with" : ", without") +
                              " q/k/v biases)");
    }
    BF_ASSIGN_OR_RETURN(Origin origin, Resolve(*canonical, canonical_name));
    BF_RETURN_IF_ERROR(CheckShape(*canonical, canonical_name, origin));
    BF_ASSIGN_OR_RETURN(std::vector<float> data, ReadSource(origin.tensor));
    const std::vector<int64_t> source_shape = *SourceShape(origin.tensor);
    FloatTensor out;
    out.shape = canonical->shape;
    const int64_t row_size = source_shape.size() == 2 ? source_shape[1] : 1;
    const int64_t expected = row_size * (origin.rows < 0 ? source_shape[0] : origin.rows);
    if (origin.rows < 0) {
      out.data = std::move(data);
    } else {
      const size_t begin = static_cast<size_t>(origin.row_begin * row_size);
      out.data.assign(data.begin() + begin, data.begin() + begin + static_cast<size_t>(expected));
    }
    if (static_cast<int64_t>(out.data.size()) != expected) {
      return Status::Internal(path_ + ": " + canonical_name + ": read " +
                              std::to_string(out.data.size()) + " values, expected " +
                              std::to_string(expected));
    }
    return out;
  }

  const std::string& content_hash() const override {
    std::call_once(hash_once_, [this] {
      Sha256 sha;
      constexpr size_t kChunk = size_t{1} << 20;
      for (const auto& file : weight_files_) {
        for (size_t at = 0; at < file->size(); at += kChunk) {
          const size_t n = std::min(kChunk, file->size() - at);
          sha.Update(std::string_view(reinterpret_cast<const char*>(file->data()) + at, n));
        }
      }
      hash_ = sha.HexDigest().substr(0, 16);
    });
    return hash_;
  }

  // Checks that every canonical tensor of the config resolves to a source of the right shape,
  // so a bad checkpoint fails at open rather than halfway through loading.
  Status ValidateAll() const {
    for (const std::string& name : CanonicalNames(config_)) {
      auto canonical = ParseCanonical(config_, name);
      if (!canonical) return Status::Internal(path_ + ": canonical name '" + name + "' unparsed");
      BF_ASSIGN_OR_RETURN(Origin origin, Resolve(*canonical, name));
      BF_RETURN_IF_ERROR(CheckShape(*canonical, name, origin));
    }
    return Status::OK();
  }

 protected:
  // Shape of a source tensor (row-major, outermost first), or nullopt when absent.
  virtual std::optional<std::vector<int64_t>> SourceShape(const std::string& name) const = 0;
  virtual Result<std::vector<float>> ReadSource(const std::string& name) const = 0;
  // "'blk.0.attn_q.weight' (Q4_K, offset 1234) in model.gguf", for errors.
  virtual std::string Describe(const std::string& name) const = 0;

  bool Has(const std::string& name) const { return SourceShape(name).has_value(); }

  Result<Origin> Resolve(const Canonical& c, const std::string& canonical_name) const {
    const NameScheme& n = names_;
    if (c.layer < 0) {
      if (c.role == "tok_embeddings") return Require(n.embed, canonical_name);
      if (c.role == "norm") return Require(n.final_norm, canonical_name);
      if (config_.tied_embeddings || !Has(n.output)) return Require(n.embed, canonical_name);
      return Origin{n.output};
    }
    const std::string p = n.layer_prefix + std::to_string(c.layer) + ".";
    const int64_t q_rows = int64_t{config_.n_heads} * config_.head_dim;
    const int64_t kv_rows = int64_t{config_.n_kv_heads} * config_.head_dim;
    const int64_t F = config_.ffn_size;
    const std::string& r = c.role;
    if (r == "attention_norm") return Require(p + n.attn_norm + ".weight", canonical_name);
    if (r == "ffn_norm") return Require(p + n.ffn_norm + ".weight", canonical_name);
    if (r == "wo") return Require(p + n.o + ".weight", canonical_name);
    if (r == "w2") return Require(p + n.down + ".weight", canonical_name);
    if (r == "wq" || r == "wk" || r == "wv" || r == "bq" || r == "bk" || r == "bv") {
      const std::string suffix = r[0] == 'w' ? ".weight" : ".bias";
      const char which = r[1];
      const std::string& separate = which == 'q' ? n.q : which == 'k' ? n.k : n.v;
      if (Has(p + separate + suffix) || !Has(p + n.qkv + suffix)) {
        return Require(p + separate + suffix, canonical_name);
      }
      const int64_t begin = which == 'q' ? 0 : which == 'k' ? q_rows : q_rows + kv_rows;
      return Origin{p + n.qkv + suffix, begin, which == 'q' ? q_rows : kv_rows};
    }
    if (r == "w1" || r == "w3") {
      // Separate gate and up when the gate exists; otherwise the fused gate_up tensor.
      if (Has(p + n.gate + ".weight")) {
        return Require(p + (r == "w1" ? n.gate : n.up) + ".weight", canonical_name);
      }
      if (!Has(p + n.gate_up + ".weight")) return Require(p + n.gate + ".weight", canonical_name);
      return Origin{p + n.gate_up + ".weight", r == "w1" ? 0 : F, F};
    }
    return Status::NotFound(path_ + ": no canonical tensor '" + canonical_name + "'");
  }

  Result<Origin> Require(const std::string& tensor, const std::string& canonical_name) const {
    if (!Has(tensor)) {
      return Status::NotFound(path_ + ": tensor '" + tensor + "' (canonical " + canonical_name +
                              ") is missing");
    }
    return Origin{tensor};
  }

  Status CheckShape(const Canonical& c, const std::string& canonical_name,
                    const Origin& origin) const {
    const std::vector<int64_t> source = *SourceShape(origin.tensor);
    std::vector<int64_t> want = c.shape;
    if (origin.rows >= 0) {
      // A fused source: its rows must cover the whole fused block, its columns match.
      const int64_t fused_rows = FusedRows(origin);
      want[0] = fused_rows;
    }
    if (source != want) {
      return Status::InvalidArgument(
          path_ + ": " + Describe(origin.tensor) + " has shape " + ShapeString(source) +
          ", expected " + ShapeString(want) + " for " + canonical_name + " (config: hidden " +
          std::to_string(config_.hidden_size) + ", heads " + std::to_string(config_.n_heads) + "/" +
          std::to_string(config_.n_kv_heads) + " x " + std::to_string(config_.head_dim) + ", ffn " +
          std::to_string(config_.ffn_size) + ", vocab " + std::to_string(config_.vocab_size) + ")");
    }
    return Status::OK();
  }

  // Rows a fused source must have: q + 2 kv for qkv, 2F for gate_up.
  int64_t FusedRows(const Origin& origin) const {
    const int64_t q_rows = int64_t{config_.n_heads} * config_.head_dim;
    const int64_t kv_rows = int64_t{config_.n_kv_heads} * config_.head_dim;
    if (origin.tensor.find(names_.qkv) != std::string::npos) return q_rows + 2 * kv_rows;
    return 2 * int64_t{config_.ffn_size};
  }

  std::string path_;
  std::string format_;
  const NameScheme& names_;
  ModelConfig config_;
  std::vector<std::unique_ptr<MappedFile>> weight_files_;  // hashed in this order

 private:
  mutable std::once_flag hash_once_;
  mutable std::string hash_;
};

// --- config checks shared by both formats ---------------------------------------------------

Status CheckConfig(const ModelConfig& c, const std::string& where) {
  auto bad = [&](const std::string& what) { return Status::InvalidArgument(where + ": " + what); };
  if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.n_layers <= 0 || c.n_heads <= 0 ||
      c.n_kv_heads <= 0 || c.head_dim <= 0 || c.ffn_size <= 0 || c.context_length <= 0) {
    return bad("vocab " + std::to_string(c.vocab_size) + ", hidden " +
               std::to_string(c.hidden_size) + ", layers " + std::to_string(c.n_layers) +
               ", heads " + std::to_string(c.n_heads) + "/" + std::to_string(c.n_kv_heads) +
               ", head_dim " + std::to_string(c.head_dim) + ", ffn " + std::to_string(c.ffn_size) +
               ", context " + std::to_string(c.context_length) + ": every size must be positive");
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    return bad(std::to_string(c.n_heads) + " query heads are not a multiple of " +
               std::to_string(c.n_kv_heads) + " key/value heads");
  }
  if (c.rope_dim <= 0 || c.rope_dim > c.head_dim || c.rope_dim % 2 != 0) {
    return bad("rotary dimension " + std::to_string(c.rope_dim) + " must be even and in 2.." +
               std::to_string(c.head_dim) + " (head_dim)");
  }
  if (!(c.rms_eps > 0) || !(c.rope_theta > 0) || !std::isfinite(c.rope_theta)) {
    return bad("rms epsilon and rope theta must be positive");
  }
  if (!c.rope_scaling.type.empty() && !(c.rope_scaling.factor > 0)) {
    return bad("rope scaling factor must be positive");
  }
  // Tensor sizes are computed in int64 elsewhere; keep the products far from overflow.
  const double biggest =
      std::max({double(c.vocab_size) * c.hidden_size, double(c.ffn_size) * 2 * c.hidden_size,
                double(c.n_heads + 2 * c.n_kv_heads) * c.head_dim * c.hidden_size});
  if (biggest > double(int64_t{1} << 40))
    return bad("tensor sizes implied by the config are absurd");
  return Status::OK();
}

Result<int> ToInt(int64_t v, const std::string& what) {
  if (v < INT_MIN || v > INT_MAX) {
    return Status::InvalidArgument(what + ": " + std::to_string(v) + " does not fit an int");
  }
  return static_cast<int>(v);
}

// --- GGUF -----------------------------------------------------------------------------------

class GgufWeights : public WeightSourceBase {
 public:
  explicit GgufWeights(const std::string& path) : WeightSourceBase(path, "gguf", kGgufNames) {}

  Status Open() {
    BF_ASSIGN_OR_RETURN(auto mapping, MappedFile::Open(path_));
    BF_ASSIGN_OR_RETURN(file_, GgufFile::Parse(mapping->data(), mapping->size(), path_));
    weight_files_.push_back(std::move(mapping));
    BF_RETURN_IF_ERROR(ReadConfig());
    return ValidateAll();
  }

 protected:
  std::optional<std::vector<int64_t>> SourceShape(const std::string& name) const override {
    const GgufTensorInfo* t = file_->FindTensor(name);
    if (t == nullptr) return std::nullopt;
    return t->shape;
  }
  Result<std::vector<float>> ReadSource(const std::string& name) const override {
    const GgufTensorInfo* t = file_->FindTensor(name);
    if (t == nullptr) return Status::NotFound(path_ + ": tensor '" + name + "' is missing");
    return file_->ReadF32(*t);
  }
  std::string Describe(const std::string& name) const override {
    const GgufTensorInfo* t = file_->FindTensor(name);
    if (t == nullptr) return "tensor '" + name + "'";
    return "tensor '" + name + "' (" + GgmlTypeName(t->type) + ", offset " +
           std::to_string(t->offset) + ")";
  }

 private:
  Status ReadConfig();

  std::unique_ptr<GgufFile> file_;
};

Status GgufWeights::ReadConfig() {
  BF_ASSIGN_OR_RETURN(std::string arch, file_->GetString("general.architecture"));
  if (arch != "llama" && arch != "qwen2" && arch != "phi3") {
    return Status::InvalidArgument(path_ + ": general.architecture '" + arch +
                                   "' is not supported (expected llama, qwen2 or phi3)");
  }
  ModelConfig& c = config_;
  c.architecture = arch;
  const std::string k = arch + ".";
  auto get_int = [&](const std::string& key, std::optional<int64_t> fallback) -> Result<int> {
    auto v = file_->GetInt(k + key);
    if (!v.ok()) {
      if (v.status().code() == StatusCode::kNotFound && fallback) return ToInt(*fallback, key);
      return v.status();
    }
    return ToInt(*v, path_ + ": " + k + key);
  };
  auto get_float = [&](const std::string& key, double fallback) -> Result<double> {
    auto v = file_->GetFloat(k + key);
    if (!v.ok() && v.status().code() == StatusCode::kNotFound) return fallback;
    return v;
  };
  BF_ASSIGN_OR_RETURN(c.hidden_size, get_int("embedding_length", std::nullopt));
  BF_ASSIGN_OR_RETURN(c.n_layers, get_int("block_count", std::nullopt));
  BF_ASSIGN_OR_RETURN(c.ffn_size, get_int("feed_forward_length", std::nullopt));
  BF_ASSIGN_OR_RETURN(c.n_heads, get_int("attention.head_count", std::nullopt));
  BF_ASSIGN_OR_RETURN(c.context_length, get_int("context_length", std::nullopt));
  BF_ASSIGN_OR_RETURN(c.n_kv_heads, get_int("attention.head_count_kv", c.n_heads));
  if (c.n_heads <= 0) {
    return Status::InvalidArgument(path_ + ": " + k + "attention.head_count must be positive");
  }
  BF_ASSIGN_OR_RETURN(c.head_dim, get_int("attention.key_length", c.hidden_size / c.n_heads));
  BF_ASSIGN_OR_RETURN(c.rms_eps, get_float("attention.layer_norm_rms_epsilon", 1e-5));
  BF_ASSIGN_OR_RETURN(c.rope_theta, get_float("rope.freq_base", 10000.0));
  BF_ASSIGN_OR_RETURN(c.rope_dim, get_int("rope.dimension_count", c.head_dim));
  BF_ASSIGN_OR_RETURN(c.sliding_window, get_int("attention.sliding_window", 0));

  // RoPE scaling: linear only. llama.cpp stores llama3-style scaling as a precomputed
  // rope_freqs tensor and phi3 longrope as rope_factors_* tensors; neither fits ModelConfig.
  std::string scaling = "none";
  if (auto v = file_->GetString(k + "rope.scaling.type"); v.ok()) {
    scaling = *v;
  } else if (v.status().code() != StatusCode::kNotFound) {
    return v.status();
  }
  BF_ASSIGN_OR_RETURN(double factor, get_float("rope.scaling.factor", 0.0));
  if (scaling == "none" && factor == 0.0) {
    BF_ASSIGN_OR_RETURN(double old_linear, get_float("rope.scale_linear", 0.0));
    if (old_linear != 0.0 && old_linear != 1.0) {
      scaling = "linear";
      factor = old_linear;
    }
  }
  if (scaling == "linear") {
    c.rope_scaling.type = "linear";
    c.rope_scaling.factor = factor;
    BF_ASSIGN_OR_RETURN(c.rope_scaling.original_context_length,
                        get_int("rope.scaling.original_context_length", 0));
  } else if (scaling != "none") {
    return Status::InvalidArgument(path_ + ": " + k + "rope.scaling.type '" + scaling +
                                   "' is not supported (expected none or linear)");
  }
  for (const char* name :
       {"rope_freqs.weight", "rope_factors_long.weight", "rope_factors_short.weight"}) {
    if (file_->FindTensor(name) != nullptr) {
      return Status::InvalidArgument(path_ + ": tensor '" + name +
                                     "' holds per-dimension RoPE frequency factors (llama3 or "
                                     "longrope scaling), which breakfix does not support");
    }
  }

  c.rope_style = arch == "llama" ? RopeStyle::kInterleaved : RopeStyle::kHalfSplit;
  c.qkv_bias = file_->FindTensor("blk.0.attn_q.bias") != nullptr ||
               file_->FindTensor("blk.0.attn_qkv.bias") != nullptr;
  c.tied_embeddings = file_->FindTensor("output.weight") == nullptr;
  if (const GgufTensorInfo* embed = file_->FindTensor("token_embd.weight")) {
    if (embed->shape.size() != 2) {
      return Status::InvalidArgument(path_ + ": tensor 'token_embd.weight' has shape " +
                                     ShapeString(embed->shape) + ", expected [vocab, hidden]");
    }
    BF_ASSIGN_OR_RETURN(c.vocab_size, ToInt(embed->shape[0], path_ + ": token_embd rows"));
  } else if (auto tokens = file_->Find("tokenizer.ggml.tokens"); tokens != nullptr) {
    BF_ASSIGN_OR_RETURN(c.vocab_size, ToInt(static_cast<int64_t>(tokens->strings.size()),
                                            path_ + ": tokenizer.ggml.tokens"));
  }
  if (file_->tensors().empty()) {
    return Status::InvalidArgument(path_ + ": the file has no tensors (a vocabulary-only GGUF?)");
  }
  return CheckConfig(c, path_);
}

// --- Hugging Face ---------------------------------------------------------------------------

class HfWeights : public WeightSourceBase {
 public:
  explicit HfWeights(const std::string& dir) : WeightSourceBase(dir, "hf", kHfNames) {}

  Status Open();

 protected:
  std::optional<std::vector<int64_t>> SourceShape(const std::string& name) const override {
    auto it = where_.find(name);
    if (it == where_.end()) return std::nullopt;
    return it->second.second->shape;
  }
  Result<std::vector<float>> ReadSource(const std::string& name) const override {
    auto it = where_.find(name);
    if (it == where_.end()) return Status::NotFound(path_ + ": tensor '" + name + "' is missing");
    return shards_[it->second.first].file->ReadF32(*it->second.second);
  }
  std::string Describe(const std::string& name) const override {
    auto it = where_.find(name);
    if (it == where_.end()) return "tensor '" + name + "'";
    const SafetensorsTensor& t = *it->second.second;
    return "tensor '" + name + "' (" + t.dtype + ", bytes " + std::to_string(t.begin) + ".." +
           std::to_string(t.end) + " of " + shards_[it->second.first].name + ")";
  }

 private:
  struct Shard {
    std::string name;
    std::unique_ptr<SafetensorsFile> file;
  };
  Status ReadConfig(const std::string& config_path);
  Status AddShard(const std::string& file_name);

  std::vector<Shard> shards_;
  // Tensor name -> (shard index, its entry in that shard).
  std::map<std::string, std::pair<size_t, const SafetensorsTensor*>> where_;
};

Status HfWeights::AddShard(const std::string& file_name) {
  const std::string shard_path = (fs::path(path_) / file_name).string();
  BF_ASSIGN_OR_RETURN(auto mapping, MappedFile::Open(shard_path));
  BF_ASSIGN_OR_RETURN(auto file,
                      SafetensorsFile::Parse(mapping->data(), mapping->size(), shard_path));
  weight_files_.push_back(std::move(mapping));
  shards_.push_back({file_name, std::move(file)});
  const size_t index = shards_.size() - 1;
  for (const SafetensorsTensor& t : shards_.back().file->tensors()) {
    auto [it, inserted] = where_.emplace(t.name, std::make_pair(index, &t));
    if (!inserted) {
      return Status::InvalidArgument(path_ + ": tensor '" + t.name + "' appears in both " +
                                     shards_[it->second.first].name + " and " + file_name);
    }
  }
  return Status::OK();
}

Status HfWeights::Open() {
  const fs::path dir(path_);
  const std::string config_path = (dir / "config.json").string();
  if (!fs::is_regular_file(config_path)) {
    return Status::NotFound(path_ + ": no config.json (expected a Hugging Face model directory)");
  }
  BF_RETURN_IF_ERROR(ReadConfig(config_path));

  const std::string index_path = (dir / "model.safetensors.index.json").string();
  if (fs::is_regular_file(index_path)) {
    BF_ASSIGN_OR_RETURN(auto index_file, MappedFile::Open(index_path));
    Json index;
    try {
      const char* text = reinterpret_cast<const char*>(index_file->data());
      index = Json::parse(text, text + index_file->size());
    } catch (const Json::exception& e) {
      return Status::InvalidArgument(index_path + ": does not parse as JSON: " + e.what());
    }
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
      return Status::InvalidArgument(index_path +
                                     ": expected an object with a 'weight_map' "
                                     "object of tensor name -> shard file");
    }
    std::set<std::string> shard_names;
    for (const auto& [tensor, shard] : index["weight_map"].items()) {
      if (!shard.is_string()) {
        return Status::InvalidArgument(index_path + ": weight_map['" + tensor +
                                       "'] is not a file name string");
      }
      const std::string name = shard.get<std::string>();
      if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
        return Status::InvalidArgument(index_path + ": weight_map['" + tensor + "'] names '" +
                                       name + "', expected a file in the model directory");
      }
      shard_names.insert(name);
    }
    for (const std::string& name : shard_names) BF_RETURN_IF_ERROR(AddShard(name));
    for (const auto& [tensor, shard] : index["weight_map"].items()) {
      auto it = where_.find(tensor);
      if (it == where_.end() || shards_[it->second.first].name != shard.get<std::string>()) {
        return Status::InvalidArgument(index_path + ": weight_map puts '" + tensor + "' in " +
                                       shard.get<std::string>() + ", which does not hold it");
      }
    }
  } else if (fs::is_regular_file(dir / "model.safetensors")) {
    BF_RETURN_IF_ERROR(AddShard("model.safetensors"));
  } else {
    return Status::NotFound(path_ +
                            ": neither model.safetensors nor "
                            "model.safetensors.index.json is present");
  }
  if (!Has(kHfNames.output)) config_.tied_embeddings = true;
  config_.qkv_bias =
      Has("model.layers.0.self_attn.q_proj.bias") || Has("model.layers.0.self_attn.qkv_proj.bias");
  return ValidateAll();
}

// Reads config.json fields with type checks; every error names the file and the field.
class JsonFields {
 public:
  JsonFields(const Json& j, std::string where) : j_(j), where_(std::move(where)) {}

  bool Present(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }

  Result<int> Int(const char* key, std::optional<int> fallback) const {
    if (!Present(key)) {
      if (fallback) return *fallback;
      return Status::InvalidArgument(where_ + ": field '" + key + "' is missing");
    }
    const Json& v = j_[key];
    if (!v.is_number_integer()) return Wrong(key, v, "an integer");
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT_MAX)) {
      return Wrong(key, v, "an integer that fits 32 bits");
    }
    if (!v.is_number_unsigned() && (v.get<int64_t>() < INT_MIN || v.get<int64_t>() > INT_MAX)) {
      return Wrong(key, v, "an integer that fits 32 bits");
    }
    return static_cast<int>(v.get<int64_t>());
  }

  Result<double> Number(const char* key, double fallback) const {
    if (!Present(key)) return fallback;
    const Json& v = j_[key];
    if (!v.is_number()) return Wrong(key, v, "a number");
    return v.get<double>();
  }

  Result<bool> Bool(const char* key, bool fallback) const {
    if (!Present(key)) return fallback;
    const Json& v = j_[key];
    if (!v.is_boolean()) return Wrong(key, v, "true or false");
    return v.get<bool>();
  }

  Result<std::string> String(const char* key) const {
    if (!Present(key) || !j_[key].is_string()) {
      return Status::InvalidArgument(where_ + ": field '" + key + "' is missing or not a string");
    }
    return j_[key].get<std::string>();
  }

 private:
  Status Wrong(const char* key, const Json& v, const char* expected) const {
    std::string shown = v.dump();
    if (shown.size() > 40) shown = shown.substr(0, 40) + "...";
    return Status::InvalidArgument(where_ + ": field '" + key + "' is " + shown + ", expected " +
                                   expected);
  }
  const Json& j_;
  std::string where_;
};

struct HfDefaults {
  const char* model_type;
  double rms_eps;
  int context_length;
};
constexpr HfDefaults kHfDefaults[] = {
    {"llama", 1e-6, 2048}, {"mistral", 1e-6, 32768}, {"qwen2", 1e-6, 32768}, {"phi3", 1e-5, 4096}};

Status HfWeights::ReadConfig(const std::string& config_path) {
  BF_ASSIGN_OR_RETURN(auto mapping, MappedFile::Open(config_path));
  Json j;
  try {
    const char* text = reinterpret_cast<const char*>(mapping->data());
    j = Json::parse(text, text + mapping->size());
  } catch (const Json::exception& e) {
    return Status::InvalidArgument(config_path + ": does not parse as JSON: " + e.what());
  }
  if (!j.is_object()) return Status::InvalidArgument(config_path + ": expected a JSON object");
  JsonFields f(j, config_path);
  BF_ASSIGN_OR_RETURN(std::string type, f.String("model_type"));
  const HfDefaults* defaults = nullptr;
  for (const HfDefaults& d : kHfDefaults) {
    if (type == d.model_type) defaults = &d;
  }
  if (defaults == nullptr) {
    return Status::InvalidArgument(config_path + ": model_type '" + type +
                                   "' is not supported (expected llama, mistral, qwen2 or phi3)");
  }
  ModelConfig& c = config_;
  c.architecture = type;
  BF_ASSIGN_OR_RETURN(c.vocab_size, f.Int("vocab_size", std::nullopt));
  BF_ASSIGN_OR_RETURN(c.hidden_size, f.Int("hidden_size", std::nullopt));
  BF_ASSIGN_OR_RETURN(c.ffn_size, f.Int("intermediate_size", std::nullopt));
  BF_ASSIGN_OR_RETURN(c.n_layers, f.Int("num_hidden_layers", std::nullopt));
  BF_ASSIGN_OR_RETURN(c.n_heads, f.Int("num_attention_heads", std::nullopt));
  if (c.n_heads <= 0) {
    return Status::InvalidArgument(config_path + ": field 'num_attention_heads' must be positive");
  }
  BF_ASSIGN_OR_RETURN(c.n_kv_heads, f.Int("num_key_value_heads", c.n_heads));
  BF_ASSIGN_OR_RETURN(c.head_dim, f.Int("head_dim", c.hidden_size / c.n_heads));
  BF_ASSIGN_OR_RETURN(c.rms_eps, f.Number("rms_norm_eps", defaults->rms_eps));
  BF_ASSIGN_OR_RETURN(c.rope_theta, f.Number("rope_theta", 10000.0));
  BF_ASSIGN_OR_RETURN(c.context_length, f.Int("max_position_embeddings", defaults->context_length));
  BF_ASSIGN_OR_RETURN(c.tied_embeddings, f.Bool("tie_word_embeddings", false));
  BF_ASSIGN_OR_RETURN(double partial, f.Number("partial_rotary_factor", 1.0));
  if (!(partial > 0 && partial <= 1)) {
    return Status::InvalidArgument(config_path + ": field 'partial_rotary_factor' is " +
                                   std::to_string(partial) + ", expected a number in (0, 1]");
  }
  c.rope_dim = static_cast<int>(c.head_dim * partial);
  if (type == "mistral") {
    BF_ASSIGN_OR_RETURN(c.sliding_window, f.Int("sliding_window", 0));
  } else if (type == "qwen2") {
    BF_ASSIGN_OR_RETURN(bool use_window, f.Bool("use_sliding_window", false));
    if (use_window) {
      BF_ASSIGN_OR_RETURN(c.sliding_window, f.Int("sliding_window", 0));
    }
  }
  c.rope_style = RopeStyle::kHalfSplit;

  if (f.Present("rope_scaling")) {
    const Json& rs = j["rope_scaling"];
    const std::string where = config_path + ": rope_scaling";
    if (!rs.is_object()) {
      return Status::InvalidArgument(where + " is " + rs.type_name() + ", expected an object");
    }
    JsonFields s(rs, where);
    std::string kind;
    if (s.Present("rope_type")) {
      BF_ASSIGN_OR_RETURN(kind, s.String("rope_type"));
    } else if (s.Present("type")) {
      BF_ASSIGN_OR_RETURN(kind, s.String("type"));
    } else {
      return Status::InvalidArgument(where + ": neither 'rope_type' nor 'type' is set");
    }
    if (kind == "linear" || kind == "llama3") {
      c.rope_scaling.type = kind;
      BF_ASSIGN_OR_RETURN(c.rope_scaling.factor, s.Number("factor", 0.0));
      if (!(c.rope_scaling.factor > 0)) {
        return Status::InvalidArgument(where + ": field 'factor' must be a positive number");
      }
      if (kind == "llama3") {
        BF_ASSIGN_OR_RETURN(c.rope_scaling.low_freq_factor, s.Number("low_freq_factor", 1.0));
        BF_ASSIGN_OR_RETURN(c.rope_scaling.high_freq_factor, s.Number("high_freq_factor", 4.0));
        BF_ASSIGN_OR_RETURN(c.rope_scaling.original_context_length,
                            s.Int("original_max_position_embeddings", std::nullopt));
      }
    } else if (kind != "default") {
      return Status::InvalidArgument(where + ": type '" + kind +
                                     "' is not supported (expected linear or llama3)");
    }
  }
  return CheckConfig(c, config_path);
}

const char* HfArchitectureClass(const std::string& model_type) {
  if (model_type == "llama") return "LlamaForCausalLM";
  if (model_type == "mistral") return "MistralForCausalLM";
  if (model_type == "qwen2") return "Qwen2ForCausalLM";
  if (model_type == "phi3") return "Phi3ForCausalLM";
  return nullptr;
}

}  // namespace

std::vector<std::string> CanonicalTensorNames(const ModelConfig& c) {
  std::vector<std::string> names = {"tok_embeddings", "norm"};
  if (!c.tied_embeddings) names.push_back("output");
  for (int i = 0; i < c.n_layers; ++i) {
    for (const char* role : kLayerRoles) {
      const std::string r = role;
      if (!c.qkv_bias && (r == "bq" || r == "bk" || r == "bv")) continue;
      names.push_back("layers." + std::to_string(i) + "." + r);
    }
  }
  return names;
}

std::vector<int64_t> CanonicalTensorShape(const ModelConfig& config, const std::string& name) {
  auto canonical = ParseCanonical(config, name);
  return canonical ? canonical->shape : std::vector<int64_t>{};
}

double RopeFrequency(const ModelConfig& c, int rope_dim, int i) {
  double freq = 1.0 / std::pow(c.rope_theta, static_cast<double>(2 * i) / rope_dim);
  const RopeScaling& rs = c.rope_scaling;
  if (rs.type == "linear") return freq / rs.factor;
  if (rs.type != "llama3") return freq;
  // llama3: long wavelengths are slowed by `factor`, short ones kept, the band between blended.
  const double wavelength = 2 * std::numbers::pi / freq;
  const double low_freq_wavelength = rs.original_context_length / rs.low_freq_factor;
  const double high_freq_wavelength = rs.original_context_length / rs.high_freq_factor;
  if (wavelength < high_freq_wavelength) return freq;
  if (wavelength > low_freq_wavelength) return freq / rs.factor;
  const double smooth = (rs.original_context_length / wavelength - rs.low_freq_factor) /
                        (rs.high_freq_factor - rs.low_freq_factor);
  return (1 - smooth) * freq / rs.factor + smooth * freq;
}

Result<std::string> SourceTensorName(const std::string& format, const std::string& canonical) {
  if (format != "hf" && format != "gguf") {
    return Status::InvalidArgument("unknown checkpoint format \"" + format +
                                   "\" (expected hf or gguf)");
  }
  const NameScheme& n = format == "hf" ? kHfNames : kGgufNames;
  if (canonical == "tok_embeddings") return n.embed;
  if (canonical == "norm") return n.final_norm;
  if (canonical == "output") return n.output;
  const size_t dot = canonical.find('.', 7);
  if (canonical.rfind("layers.", 0) != 0 || dot == std::string::npos) {
    return Status::InvalidArgument("not a canonical tensor name: " + canonical);
  }
  const std::string layer = canonical.substr(7, dot - 7);
  const std::string role = canonical.substr(dot + 1);
  const std::map<std::string, std::pair<const std::string*, const char*>> roles = {
      {"attention_norm", {&n.attn_norm, ".weight"}},
      {"wq", {&n.q, ".weight"}},
      {"wk", {&n.k, ".weight"}},
      {"wv", {&n.v, ".weight"}},
      {"bq", {&n.q, ".bias"}},
      {"bk", {&n.k, ".bias"}},
      {"bv", {&n.v, ".bias"}},
      {"wo", {&n.o, ".weight"}},
      {"ffn_norm", {&n.ffn_norm, ".weight"}},
      {"w1", {&n.gate, ".weight"}},
      {"w3", {&n.up, ".weight"}},
      {"w2", {&n.down, ".weight"}}};
  auto it = roles.find(role);
  if (it == roles.end())
    return Status::InvalidArgument("not a canonical tensor name: " + canonical);
  return n.layer_prefix + layer + "." + *it->second.first + it->second.second;
}

Result<std::unique_ptr<WeightSource>> OpenWeights(const std::string& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) return Status::NotFound(path + ": no such file or directory");
  if (fs::is_directory(status)) {
    auto hf = std::make_unique<HfWeights>(path);
    BF_RETURN_IF_ERROR(hf->Open());
    return std::unique_ptr<WeightSource>(std::move(hf));
  }
  auto gguf = std::make_unique<GgufWeights>(path);
  BF_RETURN_IF_ERROR(gguf->Open());
  return std::unique_ptr<WeightSource>(std::move(gguf));
}

Status WriteHfConfig(const std::string& dir, const ModelConfig& c) {
  const char* cls = HfArchitectureClass(c.architecture);
  if (cls == nullptr) {
    return Status::InvalidArgument("WriteHfConfig: architecture '" + c.architecture +
                                   "' has no Hugging Face model_type (expected llama, mistral, "
                                   "qwen2 or phi3)");
  }
  BF_RETURN_IF_ERROR(CheckConfig(c, dir + "/config.json"));
  Json j = {
      {"architectures", {cls}},
      {"model_type", c.architecture},
      {"vocab_size", c.vocab_size},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.ffn_size},
      {"num_hidden_layers", c.n_layers},
      {"num_attention_heads", c.n_heads},
      {"num_key_value_heads", c.n_kv_heads},
      {"head_dim", c.head_dim},
      {"rms_norm_eps", c.rms_eps},
      {"rope_theta", c.rope_theta},
      {"max_position_embeddings", c.context_length},
      {"tie_word_embeddings", c.tied_embeddings},
      {"torch_dtype", "float32"},
  };
  if (c.rope_dim != c.head_dim) {
    j["partial_rotary_factor"] = static_cast<double>(c.rope_dim) / c.head_dim;
  }
  if (c.architecture == "llama" || c.architecture == "mistral") {
    j["attention_bias"] = c.qkv_bias;
  }
  if (c.sliding_window > 0) {
    j["sliding_window"] = c.sliding_window;
    if (c.architecture == "qwen2") j["use_sliding_window"] = true;
  } else if (c.architecture == "mistral") {
    j["sliding_window"] = nullptr;
  }
  if (c.rope_scaling.type.empty()) {
    j["rope_scaling"] = nullptr;
  } else if (c.rope_scaling.type == "linear") {
    j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", c.rope_scaling.factor}};
  } else if (c.rope_scaling.type == "llama3") {
    j["rope_scaling"] = {
        {"rope_type", "llama3"},
        {"factor", c.rope_scaling.factor},
        {"low_freq_factor", c.rope_scaling.low_freq_factor},
        {"high_freq_factor", c.rope_scaling.high_freq_factor},
        {"original_max_position_embeddings", c.rope_scaling.original_context_length}};
  } else {
    return Status::InvalidArgument("WriteHfConfig: rope scaling '" + c.rope_scaling.type +
                                   "' is not supported (expected linear or llama3)");
  }
  BF_RETURN_IF_ERROR(MakeDirs(dir));
  BF_ASSIGN_OR_RETURN(auto file, AtomicFile::Create((fs::path(dir) / "config.json").string()));
  file->Write(j.dump(2));
  file->Write("\n");
  return file->Commit();
}

}  // namespace breakfix::engine
