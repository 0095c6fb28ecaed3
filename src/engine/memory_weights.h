// Model weights held in memory with seeded random values: for tests and device checks that need
// a model of any shape without files.
#ifndef BREAKFIX_ENGINE_MEMORY_WEIGHTS_H_
#define BREAKFIX_ENGINE_MEMORY_WEIGHTS_H_

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "breakfix/env.h"
#include "engine/model_weights.h"

namespace breakfix::engine {

// Canonical tensors with seeded random values, scaled so activations stay of order one.
class MemoryWeights : public WeightSource {
 public:
  MemoryWeights(const ModelConfig& config, uint64_t seed) : config_(config) {
    Random rng(seed);
    const int64_t V = config.vocab_size, H = config.hidden_size, F = config.ffn_size;
    const int64_t q_dim = int64_t{config.n_heads} * config.head_dim;
    const int64_t kv_dim = int64_t{config.n_kv_heads} * config.head_dim;
    auto random = [&](std::vector<int64_t> shape, double center, double spread) {
      FloatTensor t;
      t.shape = shape;
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      t.data.resize(n);
      for (float& v : t.data) v = static_cast<float>(center + spread * (2 * rng.Uniform() - 1));
      return t;
    };
    const double in_h = 1.0 / std::sqrt(static_cast<double>(H));
    tensors_["tok_embeddings"] = random({V, H}, 0, 1.0);
    tensors_["norm"] = random({H}, 1.0, 0.2);
    tensors_["output"] =
        config.tied_embeddings ? tensors_["tok_embeddings"] : random({V, H}, 0, 2 * in_h);
    for (int i = 0; i < config.n_layers; ++i) {
      const std::string p = "layers." + std::to_string(i) + ".";
      tensors_[p + "attention_norm"] = random({H}, 1.0, 0.2);
      tensors_[p + "ffn_norm"] = random({H}, 1.0, 0.2);
      tensors_[p + "wq"] = random({q_dim, H}, 0, 2 * in_h);
      tensors_[p + "wk"] = random({kv_dim, H}, 0, 2 * in_h);
      tensors_[p + "wv"] = random({kv_dim, H}, 0, in_h);
      if (config.qkv_bias) {
        tensors_[p + "bq"] = random({q_dim}, 0, 0.5);
        tensors_[p + "bk"] = random({kv_dim}, 0, 0.5);
        tensors_[p + "bv"] = random({kv_dim}, 0, 0.5);
      }
      tensors_[p + "wo"] = random({H, q_dim}, 0, 1.0 / std::sqrt(static_cast<double>(q_dim)));
      tensors_[p + "w1"] = random({F, H}, 0, 2 * in_h);
      tensors_[p + "w3"] = random({F, H}, 0, 2 * in_h);
      tensors_[p + "w2"] = random({H, F}, 0, 1.0 / std::sqrt(static_cast<double>(F)));
    }
    hash_ = "memory" + std::to_string(seed);
  }

  const ModelConfig& config() const override { return config_; }
  const std::string& format() const override { return format_; }
  Result<FloatTensor> Get(const std::string& name) const override {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) return Status::NotFound("memory weights: no tensor " + name);
    return it->second;
  }
  const std::string& content_hash() const override { return hash_; }

  std::map<std::string, FloatTensor>& tensors() { return tensors_; }
  ModelConfig& mutable_config() { return config_; }

 private:
  ModelConfig config_;
  std::map<std::string, FloatTensor> tensors_;
  std::string format_ = "memory";
  std::string hash_;
};

}  // namespace breakfix::engine

#endif  // BREAKFIX_ENGINE_MEMORY_WEIGHTS_H_
