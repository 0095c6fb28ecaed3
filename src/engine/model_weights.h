// Model configuration and weights in one canonical form, whatever the source: a GGUF file or a
// Hugging Face directory (config.json + *.safetensors, sharded with model.safetensors.index.json).
//
// Canonical tensor names and row-major shapes (H = hidden size, F = FFN size, V = vocab,
// D = head_dim, Nh/Nkv = query/key-value heads):
//   tok_embeddings            [V, H]
//   layers.{i}.attention_norm [H]
//   layers.{i}.wq [Nh*D, H]   layers.{i}.wk [Nkv*D, H]   layers.{i}.wv [Nkv*D, H]
//   layers.{i}.bq [Nh*D]      layers.{i}.bk [Nkv*D]      layers.{i}.bv [Nkv*D]   (qwen2 only)
//   layers.{i}.wo [H, Nh*D]
//   layers.{i}.ffn_norm       [H]
//   layers.{i}.w1 [F, H] (gate)   layers.{i}.w3 [F, H] (up)   layers.{i}.w2 [H, F] (down)
//   norm                      [H]
//   output                    [V, H]   (the embedding matrix when tied)
// Fused sources (phi3's qkv_proj / attn_qkv and gate_up_proj / ffn_up) are split into these.
// The layout of wq/wk is left as the source stores it; ModelConfig::rope_style says which RoPE
// convention matches it (GGUF "llama" files permute Q/K for interleaved pairs; Hugging Face
// checkpoints and GGUF qwen2/phi3 use the half-split convention).
#ifndef BREAKFIX_ENGINE_MODEL_WEIGHTS_H_
#define BREAKFIX_ENGINE_MODEL_WEIGHTS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "breakfix/status.h"

namespace breakfix::engine {

enum class RopeStyle {
  kInterleaved,  // rotate pairs (x0,x1), (x2,x3), ...  (GGUF llama, llama2.c)
  kHalfSplit,    // rotate (x_i, x_{i+D/2})              (Hugging Face, GGUF qwen2/phi3)
};

struct RopeScaling {
  std::string type;  // "" (none), "linear", "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;     // llama3
  double high_freq_factor = 4.0;    // llama3
  int original_context_length = 0;  // llama3
};

struct ModelConfig {
  std::string architecture;  // "llama", "mistral", "qwen2", "phi3"
  int vocab_size = 0;
  int hidden_size = 0;
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int ffn_size = 0;
  int context_length = 0;
  double rms_eps = 1e-5;
  double rope_theta = 10000.0;
  int rope_dim = 0;  // dimensions rotated per head (== head_dim unless partial)
  RopeStyle rope_style = RopeStyle::kHalfSplit;
  RopeScaling rope_scaling;
  bool qkv_bias = false;  // qwen2
  bool tied_embeddings = false;
  int sliding_window = 0;  // 0 = full attention (mistral may set it)
};

struct FloatTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// Thread-safe after Open.
class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual const ModelConfig& config() const = 0;
  virtual const std::string& format() const = 0;  // "gguf" or "hf"
  // The canonical tensor, dequantized to float32. Errors name the source tensor, its type and
  // where it is; a shape that disagrees with the config is an error, never a crash.
  virtual Result<FloatTensor> Get(const std::string& canonical_name) const = 0;
  // SHA-256 over the weight files' bytes (first 16 hex), for model identities.
  virtual const std::string& content_hash() const = 0;
};

// The canonical tensors a model of `config` stores, in a stable order: "output" only when the
// embeddings are not tied, the q/k/v biases only with qkv_bias.
std::vector<std::string> CanonicalTensorNames(const ModelConfig& config);

// The row-major shape of a canonical tensor under `config`; empty when `name` is not one.
std::vector<int64_t> CanonicalTensorShape(const ModelConfig& config, const std::string& name);

// Rotation frequency of RoPE pair i (radians per position) for `rope_dim` rotated dimensions,
// with the configured scaling (linear, or llama3's wavelength bands). The engine and the
// trainer both build their rotation tables from it.
double RopeFrequency(const ModelConfig& config, int rope_dim, int i);

// What a checkpoint of `format` ("hf" or "gguf") calls a canonical tensor, unfused:
// "layers.3.wq" is "model.layers.3.self_attn.q_proj.weight" or "blk.3.attn_q.weight".
// An unknown format or name is an InvalidArgument error.
Result<std::string> SourceTensorName(const std::string& format, const std::string& canonical);

// `path` is a .gguf file or a directory with config.json and safetensors.
Result<std::unique_ptr<WeightSource>> OpenWeights(const std::string& path);

// --- safetensors -----------------------------------------------------------------------------

struct SafetensorsTensor {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16"
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range within the data section
};

// One memory-mapped .safetensors file: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the data. Malformed input
// (bad lengths, overlapping or out-of-range offsets, shape/size mismatch, unknown dtype) is an
// error naming the tensor and the offending value.
class SafetensorsFile {
 public:
  static Result<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  static Result<std::unique_ptr<SafetensorsFile>> Parse(const uint8_t* data, size_t size,
                                                        const std::string& name);
  virtual ~SafetensorsFile() = default;
  virtual const std::vector<SafetensorsTensor>& tensors() const = 0;
  virtual const std::map<std::string, std::string>& metadata() const = 0;
  const SafetensorsTensor* Find(const std::string& name) const;
  virtual Result<std::vector<float>> ReadF32(const SafetensorsTensor& tensor) const = 0;
};

// Writes tensors (float32 stored as "F32", or converted to "BF16" when `bf16`) atomically.
Status WriteSafetensors(const std::string& path,
                        const std::vector<std::pair<std::string, FloatTensor>>& tensors,
                        const std::map<std::string, std::string>& metadata, bool bf16 = false);

// Writes a Hugging Face config.json for `config` (the fields OpenWeights reads back).
Status WriteHfConfig(const std::string& dir, const ModelConfig& config);

}  // namespace breakfix::engine

#endif  // BREAKFIX_ENGINE_MODEL_WEIGHTS_H_
