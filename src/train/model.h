// The trainable llama-family model on ATen with autograd: the same function as the engine's
// inference pass (src/engine/transformer.cc: RMSNorm, RoPE in both conventions with the same
// frequency scaling, grouped-query attention, SwiGLU, tied or separate output layer), written
// with differentiable tensor ops over right-padded batches, plus optional LoRA adapters.
//
// Internal to src/train; this header and model.cc, trainer.cc and the tests are the only users
// of libtorch types in the trainer. Not thread-safe: one thread drives a TrainModel.
#ifndef BREAKFIX_TRAIN_MODEL_H_
#define BREAKFIX_TRAIN_MODEL_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "breakfix/status.h"
#include "breakfix/train.h"
#include "engine/model_weights.h"
#include "train/model_files.h"
#include "train/train_data.h"

namespace breakfix::train {

// "cpu", "cuda", "cuda:1" -> a device; CUDA when libtorch was built with it and sees a GPU.
Result<at::Device> ParseDevice(const std::string& name);

// Rank >= 0; with rank > 0: alpha > 0, dropout in [0, 1), targets among wq wk wv wo w1 w2 w3.
Status CheckLora(const LoraOptions& lora);

struct ModelSetup {
  at::Device device = at::kCPU;
  // Master weights and gradients: float32 for training; float64 for gradient checks.
  at::ScalarType dtype = at::kFloat;
  bool bf16 = false;  // matrix products in bfloat16 (see TrainOptions::bf16)
  LoraOptions lora;
  uint64_t seed = 0;  // LoRA A initialisation
};

struct Parameter {
  std::string name;    // canonical ("layers.0.wq") or adapter ("layers.0.wq.lora_a")
  at::Tensor value;    // requires grad when trainable
  bool decay = false;  // AdamW weight decay applies (matrices)
};

// Right-padded token ids [B, T] and the targets mask of positions 1..T-1 ([B, T-1], 1 = scored).
struct Batch {
  at::Tensor ids;      // int64 on the model's device
  at::Tensor targets;  // master dtype on the model's device
  // Flat positions b * (T - 1) + t of the nonzero targets, int64 on the model's device: only
  // these go through the output layer.
  at::Tensor target_index;
  int64_t tokens = 0;  // non-padding tokens
};
Batch MakeBatch(const std::vector<const TokenSequence*>& sequences, at::Device device,
                at::ScalarType dtype);

class TrainModel {
 public:
  // Copies every canonical tensor of `weights` to the device. With LoRA (setup.lora.rank > 0)
  // the base weights are frozen and adapters are created for the target projections.
  static Result<std::unique_ptr<TrainModel>> Load(const engine::WeightSource& weights,
                                                  const ModelSetup& setup);

  const engine::ModelConfig& config() const { return config_; }
  const ModelSetup& setup() const { return setup_; }

  // Logits [B, T, V] in the master dtype for right-padded ids [B, T]. Padding sits after each
  // sequence, so causal attention keeps it out of every real position. `dropout_seed` seeds
  // LoRA dropout when `train` is set (dropout is off otherwise).
  at::Tensor Logits(const at::Tensor& ids, bool train, uint64_t dropout_seed);
  // The final normalised hidden states [B, T, hidden] that Logits() projects.
  at::Tensor Hidden(const at::Tensor& ids, bool train, uint64_t dropout_seed);

  // log p(token t | tokens before) for t = 1..T-1, times the targets mask: [B, T-1]. Only the
  // targeted positions are projected to the vocabulary (zeros elsewhere), so the cost of the
  // output layer follows the reply tokens, not the prompt.
  at::Tensor TargetLogProbs(const Batch& batch, bool train, uint64_t dropout_seed);

  // Parameters the optimiser updates (adapters with LoRA, every weight without), in a fixed
  // order; a tied output layer is the embedding parameter itself.
  const std::vector<Parameter>& trainable() const { return trainable_; }
  int64_t trainable_count() const;

  // Canonical float32 weights with adapters merged: W + (alpha / rank) B A.
  NamedTensors MergedWeights() const;
  // Adapter tensors by parameter name (float32), for training state.
  NamedTensors AdapterWeights() const;
  // Replaces the adapters' values; every adapter must be present with its shape.
  Status SetAdapterWeights(const std::map<std::string, engine::FloatTensor>& adapters);

  // The weight a canonical name denotes (frozen or not), for tests.
  at::Tensor Weight(const std::string& canonical) const;

 private:
  TrainModel() = default;
  struct Adapter {
    at::Tensor a;  // [rank, in]
    at::Tensor b;  // [out, rank]
  };
  at::Tensor Project(const at::Tensor& x, const std::string& name, const at::Tensor& bias,
                     bool train, at::Generator* generator);
  at::Tensor Matmul(const at::Tensor& x, const at::Tensor& w_t) const;  // x @ w_t
  at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& w) const;
  at::Tensor Rope(const at::Tensor& x, int64_t T) const;  // x [B, T, heads, D]
  // Causal attention of q [B, Nh, T, D] (already scaled) over k, v [B, Nh, T, D], in batch
  // chunks small enough that the [chunk, Nh, T, T] scores come from the heap, not fresh pages.
  at::Tensor Attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                    const at::Tensor& mask) const;

  engine::ModelConfig config_;
  ModelSetup setup_;
  int rope_dim_ = 0;
  std::map<std::string, at::Tensor> weights_;  // canonical name -> tensor
  std::map<std::string, Adapter> adapters_;    // canonical name -> adapter
  double lora_scale_ = 0;
  std::vector<Parameter> trainable_;
  at::Tensor rope_cos_, rope_sin_;  // [context, rope_dim / 2], master dtype, on device
};

// Per-pair preference losses [n] from summed log-probs (policy and reference, chosen and
// rejected, each [n]): DPO -log sigmoid(beta * m), IPO (m - 1 / (2 beta))^2 with
// m = (pc - rc) - (pr - rr).
at::Tensor PreferenceLosses(TrainMethod method, double beta, const at::Tensor& policy_chosen,
                            const at::Tensor& policy_rejected, const at::Tensor& ref_chosen,
                            const at::Tensor& ref_rejected);

}  // namespace breakfix::train

#endif  // BREAKFIX_TRAIN_MODEL_H_
