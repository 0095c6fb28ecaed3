// ReferenceLlama: a deliberately plain float32 forward pass of the llama family, written as
// scalar C++ loops one token at a time (the llama2.c algorithm), with no tensor library.
//
// It exists as an independent oracle: the ATen Transformer (transformer.h) is tested against it,
// so a mistake in one is unlikely to be repeated in the other. It supports what ModelConfig
// describes (GQA, both RoPE conventions, partial rotation, linear and llama3 frequency scaling,
// q/k/v biases, tied output, sliding window) and nothing about speed: use it for tests and for
// debugging a new architecture, never for serving.
//
// Not thread-safe: one thread drives an instance. Owns copies of all weights.
#ifndef BREAKFIX_ENGINE_REFERENCE_LLAMA_H_
#define BREAKFIX_ENGINE_REFERENCE_LLAMA_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "breakfix/status.h"
#include "engine/model_weights.h"

namespace breakfix::engine {

class ReferenceLlama {
 public:
  // Reads every tensor from `weights` (shapes checked against its config). `context_length`
  // bounds the positions Step() accepts (0 = the config's).
  static Result<std::unique_ptr<ReferenceLlama>> Create(const WeightSource& weights,
                                                        int context_length = 0);

  const ModelConfig& config() const { return config_; }
  int context_length() const { return context_length_; }
  // Tokens fed since the last Reset().
  int pos() const { return pos_; }
  void Reset() { pos_ = 0; }

  // Feeds `token` at position pos() and returns the next-token logits [vocab_size].
  Result<std::vector<float>> Step(int32_t token);
  // Reset(), then Step() over `tokens`: row-major logits [tokens.size(), vocab_size].
  Result<std::vector<float>> Run(const std::vector<int32_t>& tokens);

 private:
  struct Layer {
    std::vector<float> attention_norm, wq, wk, wv, bq, bk, bv, wo, ffn_norm, w1, w2, w3;
  };
  ReferenceLlama() = default;

  ModelConfig config_;
  int context_length_ = 0;
  int pos_ = 0;
  std::vector<float> tok_embeddings_, norm_, output_;
  std::vector<Layer> layers_;
  std::vector<double> inv_freq_;  // [rope_dim / 2], radians per position, after any scaling
  // Caches [layer][pos][n_kv_heads * head_dim].
  std::vector<std::vector<float>> key_cache_, value_cache_;
};

}  // namespace breakfix::engine

#endif  // BREAKFIX_ENGINE_REFERENCE_LLAMA_H_
