// Sampler: picks the next token from a row of logits (plain C++, no tensor library).
//
// The chain, in order: repetition penalty over the tokens already in the sequence, then greedy
// (temperature 0 or top_k 1) or temperature scaling followed by top-k, top-p (nucleus) and min-p
// filtering, and a draw from a seeded breakfix::Random. The same seed and the same logits give
// the same tokens on every platform; ties are broken towards the lower token id everywhere.
//
// One Sampler per sequence (it owns that sequence's random stream). Not thread-safe.
#ifndef BREAKFIX_ENGINE_SAMPLER_H_
#define BREAKFIX_ENGINE_SAMPLER_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "breakfix/engine.h"
#include "breakfix/env.h"
#include "breakfix/status.h"

namespace breakfix::engine {

struct SampledToken {
  int32_t id = 0;
  // log p(id) under the model's own distribution: the log-softmax of the logits as given,
  // before penalty, temperature or any filter, so it measures the model and not the sampling
  // settings (<= 0). Computed only when GenerationParams::logprobs is set; 0 otherwise.
  float logprob = 0;
};

// Checks the ranges: temperature >= 0, top_k >= 0, 0 < top_p <= 1, 0 <= min_p <= 1,
// repetition_penalty > 0, max_tokens >= 1. The error names the field and its value.
Status ValidateGenerationParams(const GenerationParams& params);

class Sampler {
 public:
  // `params` must have passed ValidateGenerationParams.
  Sampler(const GenerationParams& params, uint64_t seed);

  // Records tokens of the sequence (prompt and generated) for the repetition penalty.
  void Observe(std::span<const int32_t> tokens);

  // Picks a token from `logits` (one per vocabulary entry) and observes it.
  SampledToken Sample(std::span<const float> logits);

 private:
  struct Candidate {
    int32_t id;
    float value;  // logit, later probability
  };
  GenerationParams params_;
  Random rng_;
  std::vector<uint8_t> seen_;  // per token id: already in the sequence (penalty only)
  std::vector<int32_t> seen_ids_;
  std::vector<float> work_;  // penalised logits
  std::vector<Candidate> candidates_;
};

}  // namespace breakfix::engine

#endif  // BREAKFIX_ENGINE_SAMPLER_H_
