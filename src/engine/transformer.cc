// The llama-family forward pass on ATen (float32, CPU). The only translation unit of the engine
// that includes libtorch.
//
// Layout choices, all made once at load time:
//   - q/k/v projections are fused into one [(Nh + 2 Nkv) D, H] matrix and gate/up into one
//     [2F, H] matrix, so a layer is four matrix products. Weights stay [out, in] as stored: with
//     OpenBLAS a one-row pass is a matrix-vector product (memory-bound, about twice as fast as a
//     one-row GEMM) and a multi-row GEMM on the transposed view beats one on a pre-transposed
//     copy;
//   - RoPE and RMSNorm run as plain loops over contiguous rows (cheaper than a chain of small
//     tensor ops at decode sizes); RoPE rotates q and k in place inside the fused qkv rows;
//   - the KV cache is one [max_slots, Nkv, context, D] tensor per layer for keys and one for
//     values, allocated once.
// Decoding batches every single-token chunk into one pass: all weight products run once for the
// whole batch, which is what makes continuous batching pay off. Its attention then reads each
// slot's own cached prefix in place, at that slot's exact length, with two small BLAS calls per
// (sequence, key/value head): no gather copy, no padding, no mask. Those calls go straight to the
// BLAS library libtorch itself uses, because ATen's CPU bmm pays about a microsecond of tensor
// bookkeeping per batch entry. Prompt chunks run one at a time, split into pieces of at most
// kPrefillPiece tokens so the score matrix stays small.
#include "engine/transformer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <numbers>
#include <string>
#include <utility>

namespace breakfix::engine {
namespace {

constexpr int kDefaultContextCap = 4096;
// Prompt tokens processed per pass; bounds the score matrix at Nh * kPrefillPiece * context.
constexpr int kPrefillPiece = 256;

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Sets the intra-op thread count for the calling thread. OpenMP keeps the count per thread, so
// whichever thread runs a forward pass applies it itself; OpenBLAS (loaded by libtorch) has its
// own pool, set through its C entry point when present.
void UseThreads(int threads) {
  thread_local int current = 0;
  if (current == threads) return;
  at::set_num_threads(threads);
  using SetThreadsFn = void (*)(int);
  static const auto openblas_set =
      reinterpret_cast<SetThreadsFn>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (openblas_set != nullptr) openblas_set(threads);
  current = threads;
}

// The Fortran BLAS single-precision GEMM (column-major) that libtorch links, found at run time so
// the engine needs no BLAS of its own on the link line.
using SgemmFn = void (*)(const char* transa, const char* transb, const int* m, const int* n,
                         const int* k, const float* alpha, const float* a, const int* lda,
                         const float* b, const int* ldb, const float* beta, float* c,
                         const int* ldc);

SgemmFn FindSgemm() {
  static const auto sgemm = reinterpret_cast<SgemmFn>(::dlsym(RTLD_DEFAULT, "sgemm_"));
  return sgemm;
}

// Row-major C[m, n] = alpha * A[m, k] * op(B) with op(B) = B^T (B is [n, k]) when `b_transposed`,
// else B ([k, n]). Leading dimensions are row strides.
void RowMajorGemm(SgemmFn sgemm, bool b_transposed, int m, int n, int k, float alpha,
                  const float* a, int lda, const float* b, int ldb, float* c, int ldc) {
  // Column-major, this is C^T = op(B)^T * A^T.
  const char ta = b_transposed ? 'T' : 'N', tb = 'N';
  const float beta = 0.0f;
  sgemm(&ta, &tb, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
}

// A float32 tensor that takes over the vector's storage (no copy).
at::Tensor Adopt(FloatTensor&& t) {
  auto* owned = new std::vector<float>(std::move(t.data));
  return at::from_blob(
      owned->data(), t.shape, [owned](void*) { delete owned; },
      at::TensorOptions().dtype(at::kFloat));
}

Result<at::Tensor> Load(const WeightSource& weights, const std::string& name,
                        const std::vector<int64_t>& shape) {
  BF_ASSIGN_OR_RETURN(FloatTensor t, weights.Get(name));
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (t.shape != shape || static_cast<int64_t>(t.data.size()) != n) {
    return Status::InvalidArgument("tensor " + name + " has shape " + ShapeText(t.shape) + " (" +
                                   std::to_string(t.data.size()) + " values), expected " +
                                   ShapeText(shape) + " from the model config");
  }
  return Adopt(std::move(t));
}

Status CheckConfig(const ModelConfig& c) {
  auto positive = [](const char* field, int v) -> Status {
    if (v > 0) return Status::OK();
    return Status::InvalidArgument(std::string("model config: ") + field +
                                   " must be positive, got " + std::to_string(v));
  };
  BF_RETURN_IF_ERROR(positive("vocab_size", c.vocab_size));
  BF_RETURN_IF_ERROR(positive("hidden_size", c.hidden_size));
  BF_RETURN_IF_ERROR(positive("n_layers", c.n_layers));
  BF_RETURN_IF_ERROR(positive("n_heads", c.n_heads));
  BF_RETURN_IF_ERROR(positive("n_kv_heads", c.n_kv_heads));
  BF_RETURN_IF_ERROR(positive("head_dim", c.head_dim));
  BF_RETURN_IF_ERROR(positive("ffn_size", c.ffn_size));
  if (c.n_heads % c.n_kv_heads != 0) {
    return Status::InvalidArgument("model config: n_heads " + std::to_string(c.n_heads) +
                                   " is not a multiple of n_kv_heads " +
                                   std::to_string(c.n_kv_heads));
  }
  const int rope_dim = c.rope_dim == 0 ? c.head_dim : c.rope_dim;
  if (rope_dim < 0 || rope_dim % 2 != 0 || rope_dim > c.head_dim) {
    return Status::InvalidArgument("model config: rope_dim " + std::to_string(c.rope_dim) +
                                   " must be even and at most head_dim " +
                                   std::to_string(c.head_dim));
  }
  if (!(c.rms_eps > 0) || !(c.rope_theta > 0)) {
    return Status::InvalidArgument("model config: rms_eps and rope_theta must be positive");
  }
  const RopeScaling& rs = c.rope_scaling;
  if (!rs.type.empty() && rs.type != "linear" && rs.type != "llama3") {
    return Status::InvalidArgument("model config: rope scaling \"" + rs.type +
                                   "\" is not supported (expected linear or llama3)");
  }
  if (!rs.type.empty() && !(rs.factor > 0)) {
    return Status::InvalidArgument("model config: rope scaling factor must be positive");
  }
  if (rs.type == "llama3" &&
      (rs.original_context_length <= 0 || !(rs.high_freq_factor > rs.low_freq_factor) ||
       !(rs.low_freq_factor > 0))) {
    return Status::InvalidArgument(
        "model config: llama3 rope scaling needs original_context_length > 0 and "
        "high_freq_factor > low_freq_factor > 0");
  }
  if (c.sliding_window < 0) {
    return Status::InvalidArgument("model config: sliding_window must be >= 0");
  }
  return Status::OK();
}

int64_t PhysicalMemoryBytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<int64_t>(pages) * page_size;
}

// y = x W^T (+ b) for x [n, in] and W [out, in].
at::Tensor Linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (x.size(0) == 1) {
    return (b.defined() ? at::addmv(b, w, x[0]) : at::mv(w, x[0])).unsqueeze(0);
  }
  return b.defined() ? at::addmm(b, x, w.t()) : at::mm(x, w.t());
}

// x += in W^T, in place.
void AddLinear(at::Tensor& x, const at::Tensor& in, const at::Tensor& w) {
  if (x.size(0) == 1) {
    x[0].addmv_(w, in[0]);
  } else {
    x.addmm_(in, w.t());
  }
}

struct Layer {
  at::Tensor attention_norm;  // [H]
  at::Tensor wqkv;            // [(Nh + 2 Nkv) D, H]
  at::Tensor bqkv;            // [(Nh + 2 Nkv) D], undefined without biases
  at::Tensor wo;              // [H, Nh D]
  at::Tensor ffn_norm;        // [H]
  at::Tensor w13;             // [2F, H]: gate rows, then up rows
  at::Tensor w2;              // [H, F]
  at::Tensor keys;            // cache [slots, Nkv, context, D]
  at::Tensor values;          // cache [slots, Nkv, context, D]
};

// How one pass attends: to a fresh sequence without cache (kFull), appending to one slot
// (kPrefill), or one new token for each of several slots (kDecode).
struct AttentionPlan {
  enum class Kind { kFull, kPrefill, kDecode } kind = Kind::kFull;
  std::vector<int> slots;      // kPrefill: one; kDecode: one per row
  std::vector<int> positions;  // absolute position of every row
  int start_pos = 0;           // kPrefill/kFull: position of the first row
};

class AtenTransformer final : public Transformer {
 public:
  const ModelConfig& config() const override { return config_; }
  int max_slots() const override { return max_slots_; }
  int context_length() const override { return context_length_; }
  int64_t parameter_count() const override { return parameters_; }
  std::string device() const override { return device_.str(); }
  bool portable() const override { return portable_; }

  Status Forward(const std::vector<SequenceChunk>& chunks,
                 std::vector<std::vector<float>>* logits) override;
  Result<std::vector<float>> ForwardFull(const std::vector<int32_t>& tokens) override;

  static Result<std::unique_ptr<Transformer>> Build(const WeightSource& weights,
                                                    const TransformerOptions& options);

 private:
  Status CheckTokens(const std::vector<int32_t>& tokens, const std::string& where) const;
  // Runs every layer over `tokens` (rows of one pass) and returns logits of the rows in
  // `logit_rows` (all rows when empty), as a contiguous [rows, V] tensor.
  at::Tensor Pass(const std::vector<int32_t>& tokens, const AttentionPlan& plan,
                  bool last_row_only);
  at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight) const;
  void ApplyRope(at::Tensor& qkv, const std::vector<int>& positions) const;
  at::Tensor Attend(Layer& layer, const at::Tensor& qkv, const AttentionPlan& plan);
  at::Tensor CausalMask(int rows, int first_pos, int keys) const;
  static void CopyRows(const at::Tensor& rows, std::vector<float>* out);
  // The device-neutral formulation (see TransformerOptions::portable_kernels).
  at::Tensor PortableRmsNorm(const at::Tensor& x, const at::Tensor& weight) const;
  void PortableRope(at::Tensor& qkv, const std::vector<int>& positions) const;
  at::Tensor PortableDecodeAttention(Layer& layer, const at::Tensor& qkv,
                                     const AttentionPlan& plan);
  // A tensor over host memory it does not own (from_blob), copied onto the model's device.
  at::Tensor ToDevice(const at::Tensor& host) const;

  ModelConfig config_;
  int max_slots_ = 0;
  int context_length_ = 0;
  int threads_ = 1;
  int64_t parameters_ = 0;
  int rope_dim_ = 0;
  int group_ = 1;          // query heads per key/value head
  at::Tensor embeddings_;  // [V, H]
  at::Tensor norm_;        // [H]
  at::Tensor output_;      // [V, H] (the embeddings themselves when tied)
  std::vector<Layer> layers_;
  std::vector<float> rope_cos_, rope_sin_;  // [context, rope_dim / 2]
  std::vector<int> slot_length_;            // tokens cached per slot
  SgemmFn sgemm_ = nullptr;
  at::Device device_ = at::kCPU;
  bool portable_ = false;
  at::Tensor rope_cos_t_, rope_sin_t_;  // portable: the tables above on the device
};

Result<std::unique_ptr<Transformer>> AtenTransformer::Build(const WeightSource& weights,
                                                            const TransformerOptions& options) {
  const ModelConfig& c = weights.config();
  BF_RETURN_IF_ERROR(CheckConfig(c));
  if (options.max_slots < 1) {
    return Status::InvalidArgument("transformer: max_slots must be >= 1, got " +
                                   std::to_string(options.max_slots));
  }
  if (options.threads < 1) {
    return Status::InvalidArgument("transformer: threads must be >= 1, got " +
                                   std::to_string(options.threads));
  }
  if (options.context_length < 0) {
    return Status::InvalidArgument("transformer: context_length must be >= 0, got " +
                                   std::to_string(options.context_length));
  }
  std::unique_ptr<AtenTransformer> t(new AtenTransformer());
  t->config_ = c;
  t->rope_dim_ = c.rope_dim == 0 ? c.head_dim : c.rope_dim;
  t->config_.rope_dim = t->rope_dim_;
  t->group_ = c.n_heads / c.n_kv_heads;
  t->max_slots_ = options.max_slots;
  t->threads_ = options.threads;
  if (options.context_length > 0) {
    t->context_length_ = options.context_length;
  } else {
    t->context_length_ =
        c.context_length > 0 ? std::min(c.context_length, kDefaultContextCap) : kDefaultContextCap;
  }

  const int64_t H = c.hidden_size, F = c.ffn_size, D = c.head_dim, V = c.vocab_size;
  const int64_t q_dim = c.n_heads * D, kv_dim = c.n_kv_heads * D;
  const int64_t cache_bytes = int64_t{2} * c.n_layers * t->max_slots_ * kv_dim *
                              t->context_length_ * static_cast<int64_t>(sizeof(float));
  const int64_t memory = PhysicalMemoryBytes();
  if (memory > 0 && cache_bytes > memory / 10 * 9) {
    return Status::ResourceExhausted(
        "transformer: the KV cache for " + std::to_string(t->max_slots_) + " sequences of " +
        std::to_string(t->context_length_) + " tokens needs " + std::to_string(cache_bytes >> 20) +
        " MiB, more than this machine's " + std::to_string(memory >> 20) +
        " MiB; lower max_batch or context_length");
  }

  try {
    t->device_ = at::Device(options.device);
  } catch (const std::exception&) {
    return Status::InvalidArgument("transformer: unknown device \"" + options.device +
                                   "\"; expected cpu or an ATen device such as cuda or cuda:0");
  }
  if (!t->device_.is_cpu()) {
    // Ask for a small tensor there: this is what fails when the backend is absent from this
    // libtorch or no such device is present.
    try {
      at::empty({1}, at::TensorOptions().dtype(at::kFloat).device(t->device_));
    } catch (const std::exception& e) {
      // ATen's messages run to many lines and a list of backends; the first sentence says it.
      std::string what = e.what();
      what = what.substr(0, std::min(what.find('\n'), what.find(". ")));
      return Status::FailedPrecondition("transformer: device " + options.device +
                                        " is not usable with this libtorch: " + what);
    }
  }
  t->sgemm_ = FindSgemm();
  t->portable_ = options.portable_kernels || !t->device_.is_cpu() || t->sgemm_ == nullptr;
  UseThreads(t->threads_);
  c10::InferenceMode inference;
  try {
    BF_ASSIGN_OR_RETURN(t->embeddings_, Load(weights, "tok_embeddings", {V, H}));
    BF_ASSIGN_OR_RETURN(t->norm_, Load(weights, "norm", {H}));
    t->parameters_ = V * H + H;
    if (c.tied_embeddings) {
      t->output_ = t->embeddings_;
    } else {
      BF_ASSIGN_OR_RETURN(t->output_, Load(weights, "output", {V, H}));
      t->parameters_ += V * H;
    }
    t->layers_.resize(c.n_layers);
    for (int i = 0; i < c.n_layers; ++i) {
      const std::string p = "layers." + std::to_string(i) + ".";
      Layer& l = t->layers_[i];
      BF_ASSIGN_OR_RETURN(l.attention_norm, Load(weights, p + "attention_norm", {H}));
      BF_ASSIGN_OR_RETURN(l.ffn_norm, Load(weights, p + "ffn_norm", {H}));
      {
        BF_ASSIGN_OR_RETURN(at::Tensor wq, Load(weights, p + "wq", {q_dim, H}));
        BF_ASSIGN_OR_RETURN(at::Tensor wk, Load(weights, p + "wk", {kv_dim, H}));
        BF_ASSIGN_OR_RETURN(at::Tensor wv, Load(weights, p + "wv", {kv_dim, H}));
        l.wqkv = at::cat({wq, wk, wv}, 0);
      }
      if (c.qkv_bias) {
        BF_ASSIGN_OR_RETURN(at::Tensor bq, Load(weights, p + "bq", {q_dim}));
        BF_ASSIGN_OR_RETURN(at::Tensor bk, Load(weights, p + "bk", {kv_dim}));
        BF_ASSIGN_OR_RETURN(at::Tensor bv, Load(weights, p + "bv", {kv_dim}));
        l.bqkv = at::cat({bq, bk, bv}, 0);
        t->parameters_ += q_dim + 2 * kv_dim;
      }
      BF_ASSIGN_OR_RETURN(l.wo, Load(weights, p + "wo", {H, q_dim}));
      {
        BF_ASSIGN_OR_RETURN(at::Tensor w1, Load(weights, p + "w1", {F, H}));
        BF_ASSIGN_OR_RETURN(at::Tensor w3, Load(weights, p + "w3", {F, H}));
        l.w13 = at::cat({w1, w3}, 0);
      }
      BF_ASSIGN_OR_RETURN(l.w2, Load(weights, p + "w2", {H, F}));
      t->parameters_ += 2 * H + (q_dim + 2 * kv_dim) * H + H * q_dim + 3 * F * H;
      // Left uninitialised (untouched pages cost no memory): a position is only ever read after
      // the pass that stored it.
      const auto cache = at::TensorOptions().dtype(at::kFloat).device(t->device_);
      l.keys = at::empty({t->max_slots_, c.n_kv_heads, t->context_length_, D}, cache);
      l.values = at::empty({t->max_slots_, c.n_kv_heads, t->context_length_, D}, cache);
      if (!t->device_.is_cpu()) {
        for (at::Tensor* w :
             {&l.attention_norm, &l.wqkv, &l.bqkv, &l.wo, &l.ffn_norm, &l.w13, &l.w2}) {
          if (w->defined()) *w = w->to(t->device_);
        }
      }
    }
    if (!t->device_.is_cpu()) {
      const bool tied = c.tied_embeddings;
      t->embeddings_ = t->embeddings_.to(t->device_);
      t->norm_ = t->norm_.to(t->device_);
      t->output_ = tied ? t->embeddings_ : t->output_.to(t->device_);
    }
  } catch (const std::exception& e) {
    return Status::ResourceExhausted(std::string("transformer: building the model failed: ") +
                                     e.what());
  }

  const int half = t->rope_dim_ / 2;
  t->rope_cos_.resize(static_cast<size_t>(t->context_length_) * half);
  t->rope_sin_.resize(t->rope_cos_.size());
  for (int i = 0; i < half; ++i) {
    const double freq = RopeFrequency(c, t->rope_dim_, i);
    for (int pos = 0; pos < t->context_length_; ++pos) {
      t->rope_cos_[static_cast<size_t>(pos) * half + i] = static_cast<float>(std::cos(pos * freq));
      t->rope_sin_[static_cast<size_t>(pos) * half + i] = static_cast<float>(std::sin(pos * freq));
    }
  }
  if (t->portable_) {
    try {
      const int64_t ctx = t->context_length_;
      t->rope_cos_t_ = t->ToDevice(at::from_blob(t->rope_cos_.data(), {ctx, half}, at::kFloat));
      t->rope_sin_t_ = t->ToDevice(at::from_blob(t->rope_sin_.data(), {ctx, half}, at::kFloat));
    } catch (const std::exception& e) {
      return Status::ResourceExhausted(std::string("transformer: building the model failed: ") +
                                       e.what());
    }
  }
  t->slot_length_.assign(t->max_slots_, 0);
  return std::unique_ptr<Transformer>(std::move(t));
}

Status AtenTransformer::CheckTokens(const std::vector<int32_t>& tokens,
                                    const std::string& where) const {
  if (tokens.empty()) return Status::InvalidArgument(where + ": no tokens");
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= config_.vocab_size) {
      return Status::InvalidArgument(where + ": token " + std::to_string(tokens[i]) + " at index " +
                                     std::to_string(i) + " is outside the vocabulary [0, " +
                                     std::to_string(config_.vocab_size) + ")");
    }
  }
  return Status::OK();
}

at::Tensor AtenTransformer::ToDevice(const at::Tensor& host) const {
  return device_.is_cpu() ? host.clone() : host.to(device_);
}

at::Tensor AtenTransformer::PortableRmsNorm(const at::Tensor& x, const at::Tensor& weight) const {
  return x.mul(at::rsqrt(x.square().mean(-1, /*keepdim=*/true).add_(config_.rms_eps))).mul_(weight);
}

void AtenTransformer::PortableRope(at::Tensor& qkv, const std::vector<int>& positions) const {
  const int64_t rows = qkv.size(0), D = config_.head_dim, half = rope_dim_ / 2;
  const int64_t heads = config_.n_heads + config_.n_kv_heads;  // q heads, then k heads
  std::vector<int64_t> pos(positions.begin(), positions.end());
  const at::Tensor index = ToDevice(at::from_blob(pos.data(), {rows}, at::kLong));
  const at::Tensor cos = rope_cos_t_.index_select(0, index).unsqueeze(1);  // [rows, 1, half]
  const at::Tensor sin = rope_sin_t_.index_select(0, index).unsqueeze(1);
  // A view of the rotated part of every q and k head: [rows, heads, rope_dim].
  at::Tensor rotated = qkv.narrow(1, 0, heads * D).view({rows, heads, D}).narrow(2, 0, rope_dim_);
  at::Tensor x0, x1;
  if (config_.rope_style == RopeStyle::kInterleaved) {
    at::Tensor pairs = rotated.view({rows, heads, half, 2});
    x0 = pairs.select(3, 0);
    x1 = pairs.select(3, 1);
  } else {
    x0 = rotated.narrow(2, 0, half);
    x1 = rotated.narrow(2, half, half);
  }
  at::Tensor new0 = x0 * cos - x1 * sin;
  at::Tensor new1 = x0 * sin + x1 * cos;
  x0.copy_(new0);
  x1.copy_(new1);
}

// Decoding rows of different slots at once: every row's key/value goes into its slot, then each
// row attends over the first L positions of its own slot (L = the longest prefix), positions
// beyond its own (and outside a sliding window) masked.
at::Tensor AtenTransformer::PortableDecodeAttention(Layer& layer, const at::Tensor& qkv,
                                                    const AttentionPlan& plan) {
  const int64_t rows = qkv.size(0);
  const int64_t D = config_.head_dim, Nh = config_.n_heads, Nkv = config_.n_kv_heads;
  const int64_t q_dim = Nh * D, kv_dim = Nkv * D;
  const at::Tensor k_new = qkv.narrow(1, q_dim, kv_dim).view({rows, Nkv, D});
  const at::Tensor v_new = qkv.narrow(1, q_dim + kv_dim, kv_dim).view({rows, Nkv, D});
  int64_t longest = 0;
  for (int64_t r = 0; r < rows; ++r) {
    layer.keys.select(0, plan.slots[r]).select(1, plan.positions[r]).copy_(k_new[r]);
    layer.values.select(0, plan.slots[r]).select(1, plan.positions[r]).copy_(v_new[r]);
    longest = std::max<int64_t>(longest, plan.positions[r] + 1);
  }
  std::vector<int64_t> slots(plan.slots.begin(), plan.slots.end());
  const at::Tensor slot_index = ToDevice(at::from_blob(slots.data(), {rows}, at::kLong));
  const at::Tensor keys = layer.keys.narrow(2, 0, longest).index_select(0, slot_index);
  const at::Tensor values = layer.values.narrow(2, 0, longest).index_select(0, slot_index);
  at::Tensor mask = at::zeros({rows, longest}, at::kFloat);
  float* m = mask.data_ptr<float>();
  const int window = config_.sliding_window;
  for (int64_t r = 0; r < rows; ++r) {
    const int pos = plan.positions[r];
    for (int64_t j = 0; j < longest; ++j) {
      if (j > pos || (window > 0 && j <= pos - window)) m[r * longest + j] = -INFINITY;
    }
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const at::Tensor q = qkv.narrow(1, 0, q_dim).view({rows, Nkv, group_, D}).mul(scale);
  at::Tensor scores = at::matmul(q, keys.transpose(2, 3));  // [rows, Nkv, G, L]
  scores.add_(mask.to(device_).view({rows, 1, 1, longest}));
  return at::matmul(at::softmax(scores, -1), values).reshape({rows, q_dim});
}

at::Tensor AtenTransformer::RmsNorm(const at::Tensor& x, const at::Tensor& weight) const {
  if (portable_) return PortableRmsNorm(x, weight);
  const int64_t rows = x.size(0), n = x.size(1);
  at::Tensor out = at::empty({rows, n}, at::kFloat);
  const float* w = weight.data_ptr<float>();
  const float* in = x.data_ptr<float>();
  float* o = out.data_ptr<float>();
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = in + r * n;
    float* orow = o + r * n;
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float scale = static_cast<float>(1.0 / std::sqrt(ss / n + config_.rms_eps));
    for (int64_t i = 0; i < n; ++i) orow[i] = w[i] * (xr[i] * scale);
  }
  return out;
}

void AtenTransformer::ApplyRope(at::Tensor& qkv, const std::vector<int>& positions) const {
  if (portable_) return PortableRope(qkv, positions);
  const int D = config_.head_dim, half = rope_dim_ / 2;
  const int heads = config_.n_heads + config_.n_kv_heads;  // q heads, then k heads
  const int64_t row_width = qkv.size(1);
  float* base = qkv.data_ptr<float>();
  const bool interleaved = config_.rope_style == RopeStyle::kInterleaved;
  for (size_t r = 0; r < positions.size(); ++r) {
    const float* cos = &rope_cos_[static_cast<size_t>(positions[r]) * half];
    const float* sin = &rope_sin_[static_cast<size_t>(positions[r]) * half];
    for (int h = 0; h < heads; ++h) {
      float* v = base + static_cast<int64_t>(r) * row_width + static_cast<int64_t>(h) * D;
      if (interleaved) {
        for (int i = 0; i < half; ++i) {
          const float x0 = v[2 * i], x1 = v[2 * i + 1];
          v[2 * i] = x0 * cos[i] - x1 * sin[i];
          v[2 * i + 1] = x0 * sin[i] + x1 * cos[i];
        }
      } else {
        for (int i = 0; i < half; ++i) {
          const float x0 = v[i], x1 = v[i + half];
          v[i] = x0 * cos[i] - x1 * sin[i];
          v[i + half] = x0 * sin[i] + x1 * cos[i];
        }
      }
    }
  }
}

// Additive mask [rows, keys]: row t (absolute position first_pos + t) sees key j when
// j <= first_pos + t and, with a sliding window W, j > first_pos + t - W.
at::Tensor AtenTransformer::CausalMask(int rows, int first_pos, int keys) const {
  at::Tensor mask = at::zeros({rows, keys}, at::kFloat);
  float* m = mask.data_ptr<float>();
  const int window = config_.sliding_window;
  for (int t = 0; t < rows; ++t) {
    const int pos = first_pos + t;
    for (int j = 0; j < keys; ++j) {
      if (j > pos || (window > 0 && j <= pos - window)) {
        m[static_cast<int64_t>(t) * keys + j] = -INFINITY;
      }
    }
  }
  return mask;
}

at::Tensor AtenTransformer::Attend(Layer& layer, const at::Tensor& qkv, const AttentionPlan& plan) {
  const int64_t rows = qkv.size(0);
  const int64_t D = config_.head_dim, Nh = config_.n_heads, Nkv = config_.n_kv_heads;
  const int64_t G = group_;
  const int64_t q_dim = Nh * D, kv_dim = Nkv * D;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const float* src = qkv.data_ptr<float>();
  const int64_t row_width = qkv.size(1);
  using Kind = AttentionPlan::Kind;

  if (plan.kind == Kind::kDecode && portable_) return PortableDecodeAttention(layer, qkv, plan);
  if (plan.kind == Kind::kDecode) {
    // Store each row's key/value at its slot and position, then attend over that slot's own
    // prefix (the sliding window's part of it) in place.
    float* kc = layer.keys.data_ptr<float>();
    float* vc = layer.values.data_ptr<float>();
    const int64_t ctx = context_length_;
    std::vector<int> first(rows), count(rows);
    int longest = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t slot = plan.slots[r], pos = plan.positions[r];
      for (int64_t h = 0; h < Nkv; ++h) {
        const int64_t dst = ((slot * Nkv + h) * ctx + pos) * D;
        std::memcpy(kc + dst, src + r * row_width + q_dim + h * D, D * sizeof(float));
        std::memcpy(vc + dst, src + r * row_width + q_dim + kv_dim + h * D, D * sizeof(float));
      }
      const int window = config_.sliding_window;
      first[r] = window > 0 ? std::max(0, plan.positions[r] - window + 1) : 0;
      count[r] = plan.positions[r] + 1 - first[r];
      longest = std::max(longest, count[r]);
    }
    // scores[r, h, g, :count[r]] = q . k / sqrt(D); the tail up to `longest` is -inf.
    at::Tensor scores = at::empty({rows, Nkv, G, longest}, at::kFloat);
    float* sp = scores.data_ptr<float>();
    const int d = static_cast<int>(D), g = static_cast<int>(G), width = longest;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t h = 0; h < Nkv; ++h) {
        const float* q = src + r * row_width + h * G * D;  // G query heads share kv head h
        const float* k = kc + ((plan.slots[r] * Nkv + h) * ctx + first[r]) * D;
        float* out = sp + (r * Nkv + h) * G * longest;
        RowMajorGemm(sgemm_, /*b_transposed=*/true, g, count[r], d, static_cast<float>(scale), q, d,
                     k, d, out, width);
        for (int64_t i = 0; i < G; ++i) {
          std::fill(out + i * longest + count[r], out + (i + 1) * longest, -INFINITY);
        }
      }
    }
    at::Tensor probs = at::softmax(scores, -1);
    const float* pp = probs.data_ptr<float>();
    at::Tensor attention = at::empty({rows, q_dim}, at::kFloat);
    float* ap = attention.data_ptr<float>();
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t h = 0; h < Nkv; ++h) {
        const float* v = vc + ((plan.slots[r] * Nkv + h) * ctx + first[r]) * D;
        RowMajorGemm(sgemm_, /*b_transposed=*/false, g, d, count[r], 1.0f,
                     pp + (r * Nkv + h) * G * longest, width, v, d, ap + r * q_dim + h * G * D, d);
      }
    }
    return attention;
  }

  // One sequence: rows are consecutive positions starting at plan.start_pos.
  at::Tensor q = qkv.narrow(1, 0, q_dim)
                     .view({rows, Nh, D})
                     .permute({1, 0, 2})
                     .mul(scale)
                     .reshape({Nkv, G * rows, D});  // query head h = kv head h / G
  at::Tensor keys, values;
  int64_t key_count = 0;
  if (plan.kind == Kind::kPrefill && portable_) {
    const int slot = plan.slots[0];
    const at::Tensor k_new = qkv.narrow(1, q_dim, kv_dim).view({rows, Nkv, D}).permute({1, 0, 2});
    const at::Tensor v_new =
        qkv.narrow(1, q_dim + kv_dim, kv_dim).view({rows, Nkv, D}).permute({1, 0, 2});
    layer.keys.select(0, slot).narrow(1, plan.start_pos, rows).copy_(k_new);
    layer.values.select(0, slot).narrow(1, plan.start_pos, rows).copy_(v_new);
    key_count = plan.start_pos + rows;
    keys = layer.keys.select(0, slot).narrow(1, 0, key_count);  // [Nkv, L, D]
    values = layer.values.select(0, slot).narrow(1, 0, key_count);
  } else if (plan.kind == Kind::kPrefill) {
    const int slot = plan.slots[0];
    float* kc = layer.keys.data_ptr<float>();
    float* vc = layer.values.data_ptr<float>();
    const int64_t ctx = context_length_;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t pos = plan.start_pos + r;
      for (int64_t h = 0; h < Nkv; ++h) {
        const int64_t dst = ((slot * Nkv + h) * ctx + pos) * D;
        std::memcpy(kc + dst, src + r * row_width + q_dim + h * D, D * sizeof(float));
        std::memcpy(vc + dst, src + r * row_width + q_dim + kv_dim + h * D, D * sizeof(float));
      }
    }
    key_count = plan.start_pos + rows;
    keys = layer.keys.select(0, slot).narrow(1, 0, key_count);  // [Nkv, L, D]
    values = layer.values.select(0, slot).narrow(1, 0, key_count);
  } else {
    key_count = rows;
    keys = qkv.narrow(1, q_dim, kv_dim).view({rows, Nkv, D}).permute({1, 0, 2});
    values = qkv.narrow(1, q_dim + kv_dim, kv_dim).view({rows, Nkv, D}).permute({1, 0, 2});
  }
  at::Tensor scores = at::bmm(q, keys.transpose(1, 2));  // [Nkv, G * rows, L]
  const bool needs_mask = rows > 1 || config_.sliding_window > 0;
  if (needs_mask) {
    scores.view({Nkv, G, rows, key_count})
        .add_(CausalMask(static_cast<int>(rows), plan.start_pos, static_cast<int>(key_count))
                  .to(device_));
  }
  at::Tensor probs = at::softmax(scores, -1);
  return at::bmm(probs, values)  // [Nkv, G * rows, D]
      .view({Nh, rows, D})
      .permute({1, 0, 2})
      .reshape({rows, q_dim});
}

at::Tensor AtenTransformer::Pass(const std::vector<int32_t>& tokens, const AttentionPlan& plan,
                                 bool last_row_only) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t F = config_.ffn_size;
  at::Tensor ids = at::empty({n}, at::kLong);
  int64_t* id_data = ids.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) id_data[i] = tokens[i];
  if (!device_.is_cpu()) ids = ids.to(device_);
  at::Tensor x = embeddings_.index_select(0, ids);  // [n, H], a fresh contiguous copy

  for (Layer& layer : layers_) {
    at::Tensor h = RmsNorm(x, layer.attention_norm);
    at::Tensor qkv = Linear(h, layer.wqkv, layer.bqkv);  // [n, (Nh + 2 Nkv) D]
    ApplyRope(qkv, plan.positions);
    at::Tensor attention = Attend(layer, qkv, plan);
    AddLinear(x, attention, layer.wo);

    h = RmsNorm(x, layer.ffn_norm);
    at::Tensor gate_up = Linear(h, layer.w13, {});  // [n, 2F]
    at::Tensor act = at::silu(gate_up.narrow(1, 0, F)).mul_(gate_up.narrow(1, F, F));
    AddLinear(x, act, layer.w2);
  }
  if (last_row_only && n > 1) x = x.narrow(0, n - 1, 1).contiguous();
  return Linear(RmsNorm(x, norm_), output_, {});
}

void AtenTransformer::CopyRows(const at::Tensor& rows, std::vector<float>* out) {
  at::Tensor c = rows.to(at::kCPU).contiguous();
  const float* p = c.data_ptr<float>();
  out->insert(out->end(), p, p + c.numel());
}

Status AtenTransformer::Forward(const std::vector<SequenceChunk>& chunks,
                                std::vector<std::vector<float>>* logits) {
  logits->assign(chunks.size(), {});
  // Check everything first so a bad chunk leaves every slot as it was.
  std::vector<bool> used(max_slots_, false);
  std::vector<size_t> decode;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const SequenceChunk& c = chunks[i];
    const std::string where =
        "forward chunk " + std::to_string(i) + " (slot " + std::to_string(c.slot) + ")";
    if (c.slot < 0 || c.slot >= max_slots_) {
      return Status::InvalidArgument(where + ": slot is outside [0, " + std::to_string(max_slots_) +
                                     ")");
    }
    if (used[c.slot]) return Status::InvalidArgument(where + ": slot appears twice in one step");
    used[c.slot] = true;
    BF_RETURN_IF_ERROR(CheckTokens(c.tokens, where));
    if (c.start_pos < 0 || c.start_pos > slot_length_[c.slot]) {
      return Status::InvalidArgument(where + ": start_pos " + std::to_string(c.start_pos) +
                                     " is outside [0, " + std::to_string(slot_length_[c.slot]) +
                                     "], the tokens cached for the slot");
    }
    const int64_t end = static_cast<int64_t>(c.start_pos) + c.tokens.size();
    if (end > context_length_) {
      return Status::InvalidArgument(where + ": positions up to " + std::to_string(end) +
                                     " exceed the context length " +
                                     std::to_string(context_length_));
    }
    if (c.tokens.size() == 1) decode.push_back(i);
  }

  UseThreads(threads_);
  c10::InferenceMode inference;
  try {
    for (size_t i = 0; i < chunks.size(); ++i) {
      const SequenceChunk& c = chunks[i];
      if (c.tokens.size() == 1) continue;
      std::vector<float>& out = (*logits)[i];
      const int n = static_cast<int>(c.tokens.size());
      for (int begin = 0; begin < n; begin += kPrefillPiece) {
        const int count = std::min(kPrefillPiece, n - begin);
        const bool last_piece = begin + count == n;
        AttentionPlan plan;
        plan.kind = AttentionPlan::Kind::kPrefill;
        plan.slots = {c.slot};
        plan.start_pos = c.start_pos + begin;
        for (int t = 0; t < count; ++t) plan.positions.push_back(plan.start_pos + t);
        std::vector<int32_t> piece(c.tokens.begin() + begin, c.tokens.begin() + begin + count);
        if (!c.all_logits && !last_piece) {
          // Only the cache matters for this piece; skip the output projection's cost.
          Pass(piece, plan, /*last_row_only=*/true);
          continue;
        }
        CopyRows(Pass(piece, plan, /*last_row_only=*/!c.all_logits), &out);
      }
      slot_length_[c.slot] = c.start_pos + n;
    }

    if (!decode.empty()) {
      AttentionPlan plan;
      plan.kind = AttentionPlan::Kind::kDecode;
      std::vector<int32_t> tokens;
      for (size_t k = 0; k < decode.size(); ++k) {
        const SequenceChunk& c = chunks[decode[k]];
        plan.slots.push_back(c.slot);
        plan.positions.push_back(c.start_pos);
        tokens.push_back(c.tokens[0]);
      }
      const int64_t B = static_cast<int64_t>(decode.size());
      at::Tensor rows = Pass(tokens, plan, /*last_row_only=*/false).to(at::kCPU).contiguous();
      const float* p = rows.data_ptr<float>();
      const int64_t V = config_.vocab_size;
      for (int64_t b = 0; b < B; ++b) {
        (*logits)[decode[b]].assign(p + b * V, p + (b + 1) * V);
        slot_length_[plan.slots[b]] = plan.positions[b] + 1;
      }
    }
  } catch (const std::exception& e) {
    // A slot that was being written holds a partial prefix now; make its sequence start over.
    for (const SequenceChunk& c : chunks) {
      if (c.slot >= 0 && c.slot < max_slots_) slot_length_[c.slot] = 0;
    }
    return Status::Internal(std::string("transformer forward failed: ") + e.what());
  }
  return Status::OK();
}

Result<std::vector<float>> AtenTransformer::ForwardFull(const std::vector<int32_t>& tokens) {
  BF_RETURN_IF_ERROR(CheckTokens(tokens, "full forward"));
  if (static_cast<int64_t>(tokens.size()) > context_length_) {
    return Status::InvalidArgument("full forward: " + std::to_string(tokens.size()) +
                                   " tokens exceed the context length " +
                                   std::to_string(context_length_));
  }
  UseThreads(threads_);
  c10::InferenceMode inference;
  try {
    AttentionPlan plan;
    plan.kind = AttentionPlan::Kind::kFull;
    for (size_t t = 0; t < tokens.size(); ++t) plan.positions.push_back(static_cast<int>(t));
    std::vector<float> out;
    CopyRows(Pass(tokens, plan, /*last_row_only=*/false), &out);
    return out;
  } catch (const std::exception& e) {
    return Status::Internal(std::string("transformer full forward failed: ") + e.what());
  }
}

}  // namespace

Result<std::unique_ptr<Transformer>> Transformer::Create(const WeightSource& weights,
                                                         const TransformerOptions& options) {
  return AtenTransformer::Build(weights, options);
}

}  // namespace breakfix::engine
