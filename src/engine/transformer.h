// The decoder-only transformer (llama family: llama, mistral, qwen2, phi3) with a slot-based
// KV cache, on libtorch (ATen). This header has no torch types; the implementation is the only
// translation unit of the forward pass that includes ATen.
//
// Slots: the cache holds `max_slots` sequences of up to `context_length` tokens each. A caller
// (the Engine's scheduler) owns slot assignment; Forward appends tokens to slots and returns
// logits. Not thread-safe: one thread drives a Transformer.
#ifndef BREAKFIX_ENGINE_TRANSFORMER_H_
#define BREAKFIX_ENGINE_TRANSFORMER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "breakfix/status.h"
#include "engine/model_weights.h"

namespace breakfix::engine {

struct TransformerOptions {
  int max_slots = 32;       // sequences cached at once
  int context_length = 0;   // 0 = the model's, capped at 4096
  int threads = 1;          // ATen intra-op threads
  // Where the weights, the KV cache and the forward pass live: "cpu", or an ATen device string
  // such as "cuda" / "cuda:1" (needs a libtorch built with that backend). Logits always come
  // back to the host.
  std::string device = "cpu";
  // Runs the device-neutral formulation (whole-tensor ATen operations only) on the CPU too,
  // instead of the CPU kernels that write into tensors directly. Devices other than the CPU
  // always use it, as does a CPU whose libtorch exposes no sgemm_. Tests compare the two.
  bool portable_kernels = false;
};

// Tokens to append to one slot's sequence, starting at position `start_pos` (the number of
// tokens already cached for that slot; 0 for a new sequence, which also resets the slot).
struct SequenceChunk {
  int slot = 0;
  int start_pos = 0;
  std::vector<int32_t> tokens;
  bool all_logits = false;  // logits for every token of the chunk, not only the last
};

class Transformer {
 public:
  static Result<std::unique_ptr<Transformer>> Create(const WeightSource& weights,
                                                     const TransformerOptions& options);
  virtual ~Transformer() = default;

  virtual const ModelConfig& config() const = 0;
  virtual int max_slots() const = 0;
  virtual int context_length() const = 0;
  virtual int64_t parameter_count() const = 0;
  // The device the model runs on ("cpu", "cuda:0", ...) and whether the portable formulation
  // is used.
  virtual std::string device() const { return "cpu"; }
  virtual bool portable() const { return false; }

  // Runs every chunk in one step. Single-token chunks (decoding) are batched into one forward
  // pass; longer chunks (prompt processing) run as they come. `logits` receives, per chunk in
  // order, a row-major [n, vocab] array (n = chunk size when all_logits, else 1).
  virtual Status Forward(const std::vector<SequenceChunk>& chunks,
                         std::vector<std::vector<float>>* logits) = 0;

  // Reference path without any cache: logits [tokens.size(), vocab] of a full recomputation.
  virtual Result<std::vector<float>> ForwardFull(const std::vector<int32_t>& tokens) = 0;
};

}  // namespace breakfix::engine

#endif  // BREAKFIX_ENGINE_TRANSFORMER_H_
