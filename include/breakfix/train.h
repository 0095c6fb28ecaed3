// Post-training: supervised fine-tuning (SFT) and preference optimisation (DPO, IPO) of a local
// model of the llama family, fully or through LoRA adapters, with crash-safe checkpoints.
//
// Start here for the "fix" half of the break-fix cycle. Train() reads a base model (a Hugging
// Face directory or a GGUF file, the same ones LoadEngine takes), trains it on chat examples or
// preference pairs, and writes checkpoints that LoadEngine (`local:`, `breakfix serve`) loads as
// they are: LoRA adapters are merged into the weights, and the tokenizer travels with them.
//
// The code lives in the engine plugin (libbreakfix-engine.so, the only place with libtorch);
// the CLI reaches it through tools/engine_plugin.h. No libtorch type appears in this header.
//
// Output directory layout (one directory per run):
//   checkpoint-<step>/   model files (model.safetensors + config.json + tokenizer files for a
//                        Hugging Face base, model.gguf for a GGUF base), trainer_state.json and
//                        training_state.safetensors (AdamW moments, LoRA adapters unmerged)
//   final/               the finished model, same layout; its trainer_state.json says "finished"
//   reference_logps.safetensors  DPO/IPO: the frozen reference model's log-probabilities,
//                        computed once before the first step so a resumed run reuses them
//   train_log.jsonl      one JSON object per optimiser step
// Running the same command again resumes from the newest checkpoint: the final weights equal
// those of an uninterrupted run bit for bit on the same device and thread count (every source of
// randomness is derived from the seed and the step number, and checkpoints hold float32 master
// weights and optimiser moments exactly).
#ifndef BREAKFIX_TRAIN_H_
#define BREAKFIX_TRAIN_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "breakfix/chat_model.h"
#include "breakfix/preference.h"
#include "breakfix/status.h"

namespace breakfix {

enum class TrainMethod {
  kSft,  // cross-entropy on assistant tokens
  kDpo,  // -log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))
  kIpo,  // ((pi_c - ref_c) - (pi_r - ref_r) - 1 / (2 beta))^2
};

// "sft", "dpo", "ipo". Inline: the CLI uses them without loading the engine plugin.
inline const char* TrainMethodName(TrainMethod method) {
  switch (method) {
    case TrainMethod::kSft:
      return "sft";
    case TrainMethod::kDpo:
      return "dpo";
    case TrainMethod::kIpo:
      return "ipo";
  }
  return "unknown";
}
inline Result<TrainMethod> ParseTrainMethod(const std::string& name) {
  for (TrainMethod m : {TrainMethod::kSft, TrainMethod::kDpo, TrainMethod::kIpo}) {
    if (name == TrainMethodName(m)) return m;
  }
  return Status::InvalidArgument("unknown training method \"" + name +
                                 "\" (expected sft, dpo or ipo)");
}

// Low-rank adapters: W x becomes W x + (alpha / rank) B A dropout(x) on each target projection.
// B starts at zero, so training starts from the base model exactly.
struct LoraOptions {
  int rank = 0;       // 0 = full fine-tuning (every weight trains)
  double alpha = 16;  // scale numerator; the update is scaled by alpha / rank
  std::vector<std::string> targets = {"wq", "wk", "wv", "wo"};  // subset of wq wk wv wo w1 w2 w3
  double dropout = 0;  // dropout on the adapter's input, in [0, 1)
};

struct TrainOptions {
  TrainMethod method = TrainMethod::kSft;
  std::string base_model;       // Hugging Face directory or .gguf file
  std::string reference_model;  // DPO/IPO reference; "" = the base model (the usual choice)
  std::string output_dir;       // created if missing; resumed from when it holds checkpoints
  std::string chat_template;    // "" = the model's own (as LoadEngine picks it); else a name

  double learning_rate = 1e-5;  // peak learning rate
  double min_lr_ratio = 0.1;    // cosine decay ends at min_lr_ratio * learning_rate
  int warmup_steps = 0;         // linear warmup from learning_rate / warmup_steps
  int epochs = 1;               // passes over the data (unless max_steps says otherwise)
  int64_t max_steps = 0;        // optimiser steps; 0 = epochs decide
  int batch_size = 4;           // sequences (SFT) or pairs (DPO/IPO) per forward pass
  int grad_accum = 1;           // forward passes per optimiser step
  double weight_decay = 0.0;    // AdamW decoupled decay, on matrices only (not norms/biases)
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_eps = 1e-8;
  double max_grad_norm = 1.0;  // global L2 clipping; 0 = off
  double beta = 0.1;           // DPO/IPO temperature
  int max_seq_len = 1024;      // tokens per sequence (at most the model's context length);
                               // longer prompts lose their oldest tokens, replies never
  uint64_t seed = 0;           // data order, LoRA initialisation, dropout
  // Batches of similar-length sequences (GroupedEpochOrder in src/train/train_data.h): much less
  // padding when lengths vary, so faster on CPU; the order is still seeded and reproducible.
  bool group_by_length = false;
  int checkpoint_every = 100;  // optimiser steps between checkpoints; 0 = only the final model
  int threads = 1;             // CPU intra-op threads (1 keeps runs reproducible and is the
                               // fastest on small models)
  std::string device = "cpu";  // "cpu" or "cuda" / "cuda:N" (when libtorch sees a GPU)
  // Mixed precision like torch.autocast: float32 master weights, optimiser and gradients;
  // matrix products (projections, attention, output layer) in bfloat16; norms, softmax and
  // losses in float32. Works on CPU too (slowly); meant for GPUs.
  bool bf16 = false;
  LoraOptions lora;
  // Fault injection for tests: return after this many steps as if the process were killed
  // (no checkpoint, the log keeps the steps). 0 = off.
  int64_t halt_after_step = 0;
};

// What one optimiser step did; also one line of train_log.jsonl.
struct TrainStepLog {
  int64_t step = 0;  // 1-based: the number of optimiser steps done
  int64_t total_steps = 0;
  int epoch = 0;  // 0-based epoch the step's data came from
  double loss = 0;
  double learning_rate = 0;  // used for this step
  double grad_norm = 0;      // global L2 norm before clipping
  int64_t tokens = 0;        // non-padding tokens processed
  double tokens_per_s = 0;
  // DPO/IPO only: means over the step's pairs.
  double reward_margin = 0;  // beta * ((pi_c - ref_c) - (pi_r - ref_r))
  double accuracy = 0;       // fraction of pairs with a positive margin
  double chosen_logp = 0;    // policy log-probability of the chosen response (summed)
  double rejected_logp = 0;
};

// A step, or a note about what the trainer is doing ("computing reference log-probs").
struct TrainProgress {
  bool is_step = false;
  TrainStepLog step;
  std::string note;
};
using TrainProgressFn = std::function<void(const TrainProgress&)>;

// The data: `examples` for SFT, `pairs` for DPO/IPO. Ids appear in error messages.
struct TrainData {
  std::vector<ChatExample> examples;
  std::vector<PreferencePair> pairs;
};

struct TrainResult {
  int64_t steps = 0;  // optimiser steps done in total (this run and earlier ones)
  int64_t total_steps = 0;
  int64_t resumed_from = 0;       // the checkpoint step resumed from; 0 = a fresh start
  bool already_complete = false;  // final/ already existed for these options; nothing was done
  bool interrupted = false;       // stopped early (stop flag or halt_after_step)
  std::string final_model;        // what LoadEngine takes: final/ (or final/model.gguf); empty
                                  // when interrupted
  std::string last_checkpoint;    // the newest checkpoint's model path, "" when none
  int truncated_sequences = 0;    // sequences whose prompt lost tokens to max_seq_len
  int64_t trainable_parameters = 0;
  TrainStepLog last;  // the last step's log
};

// Trains. `progress` (may be empty) is called on the calling thread. When `stop` (may be null)
// becomes true the trainer finishes the step in hand, writes a checkpoint and returns with
// interrupted = true. Errors: InvalidArgument for bad options or data (naming the option, or the
// example's index and id); FailedPrecondition when output_dir holds a run with other options.
Result<TrainResult> Train(const TrainOptions& options, const TrainData& data,
                          const TrainProgressFn& progress, const std::atomic<bool>* stop);

// ---------------------------------------------------------------------------------------------
// A model from scratch

// The shape of a new model. Zeros take the defaults in the comments.
struct ModelShape {
  std::string architecture = "llama";  // llama, mistral, qwen2 or phi3
  int vocab_size = 0;                  // 0 = the tokenizer's vocabulary size
  int hidden_size = 256;
  int n_layers = 4;
  int n_heads = 4;
  int n_kv_heads = 0;  // 0 = n_heads
  int head_dim = 0;    // 0 = hidden_size / n_heads
  int ffn_size = 0;    // 0 = 8/3 hidden_size rounded up to a multiple of 32
  int context_length = 2048;
  double rope_theta = 10000.0;
  double rms_eps = 1e-5;
  bool tied_embeddings = false;
  bool qkv_bias = false;
};

struct InitModelOptions {
  ModelShape shape;
  std::string tokenizer_dir;  // a Hugging Face directory with tokenizer.json or tokenizer.model
  std::string output_dir;     // receives config.json, model.safetensors, the tokenizer files
  uint64_t seed = 0;
  double init_std = 0.02;  // weights ~ N(0, init_std); wo and w2 also / sqrt(2 n_layers)
};

// Writes a randomly initialised model that LoadEngine and Train accept. Norm weights are 1,
// biases 0.
Status InitModel(const InitModelOptions& options);

// ---------------------------------------------------------------------------------------------
// Scoring with the training code path (tests, tools, CPU-vs-GPU checks)

struct ScoreOptions {
  std::string chat_template;  // "" = the model's own
  std::string device = "cpu";
  bool bf16 = false;
  int max_seq_len = 1024;
  int batch_size = 8;
  int threads = 1;
};

// A prompt (ending with a user turn) and a candidate assistant reply.
struct ScoredReply {
  std::vector<Message> prompt;
  std::string reply;
};

struct ReplyScore {
  double logprob = 0;      // sum of log p(token) over the reply's tokens, end-of-turn included
  int tokens = 0;          // reply tokens scored
  bool truncated = false;  // the prompt lost tokens to max_seq_len
};

// log p(reply | prompt) under the model at `model_path`, as the trainer computes it.
Result<std::vector<ReplyScore>> ScoreReplies(const std::string& model_path,
                                             const std::vector<ScoredReply>& items,
                                             const ScoreOptions& options);

struct PreferenceLossReport {
  double loss = 0;           // mean over pairs
  double reward_margin = 0;  // mean beta * ((pi_c - ref_c) - (pi_r - ref_r))
  double accuracy = 0;       // fraction of pairs with a positive margin
  std::vector<double> policy_chosen, policy_rejected;  // per pair
  std::vector<double> reference_chosen, reference_rejected;
};

// The DPO/IPO loss of `pairs` for options.base_model against options.reference_model (or the
// base model itself, which gives margin 0), without updating anything. Uses method, beta,
// device, bf16, max_seq_len, batch_size, chat_template and threads from `options`.
Result<PreferenceLossReport> EvaluatePreferenceLoss(const TrainOptions& options,
                                                    const std::vector<PreferencePair>& pairs);

}  // namespace breakfix

#endif  // BREAKFIX_TRAIN_H_
