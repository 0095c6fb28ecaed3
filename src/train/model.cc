// The trainable forward pass. Where the engine's inference pass uses hand-written loops and a
// KV cache for speed, this one is a chain of differentiable ATen ops over a whole right-padded
// batch; train_model_test.cc checks that both compute the same logits.
#include "train/model.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <numbers>
#include <set>
#include <utility>

#include "breakfix/env.h"

namespace breakfix::train {
namespace {

using engine::FloatTensor;
using engine::ModelConfig;

constexpr const char* kLoraTargets[] = {"wq", "wk", "wv", "wo", "w1", "w2", "w3"};

Status CheckConfig(const ModelConfig& c) {
  for (auto [field, v] : {std::pair{"vocab_size", c.vocab_size},
                          {"hidden_size", c.hidden_size},
                          {"n_layers", c.n_layers},
                          {"n_heads", c.n_heads},
                          {"n_kv_heads", c.n_kv_heads},
                          {"head_dim", c.head_dim},
                          {"ffn_size", c.ffn_size},
                          {"context_length", c.context_length}}) {
    if (v <= 0) {
      return Status::InvalidArgument(std::string("model config: ") + field +
                                     " must be positive, got " + std::to_string(v));
    }
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    return Status::InvalidArgument("model config: n_heads " + std::to_string(c.n_heads) +
                                   " is not a multiple of n_kv_heads " +
                                   std::to_string(c.n_kv_heads));
  }
  const int rope_dim = c.rope_dim == 0 ? c.head_dim : c.rope_dim;
  if (rope_dim % 2 != 0 || rope_dim > c.head_dim || rope_dim < 0) {
    return Status::InvalidArgument("model config: rope_dim " + std::to_string(c.rope_dim) +
                                   " must be even and at most head_dim");
  }
  const std::string& rs = c.rope_scaling.type;
  if (!rs.empty() && rs != "linear" && rs != "llama3") {
    return Status::InvalidArgument("model config: rope scaling \"" + rs + "\" is not supported");
  }
  return Status::OK();
}

std::string ShapeText(at::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

at::Tensor FromFloats(const FloatTensor& t) {
  return at::from_blob(const_cast<float*>(t.data.data()), t.shape, at::kFloat).clone();
}

FloatTensor ToFloats(const at::Tensor& t) {
  at::Tensor c = t.detach().to(at::kCPU, at::kFloat).contiguous();
  FloatTensor out;
  out.shape.assign(c.sizes().begin(), c.sizes().end());
  out.data.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  return out;
}

}  // namespace

Status CheckLora(const LoraOptions& lora) {
  if (lora.rank < 0) {
    return Status::InvalidArgument("lora rank must be >= 0 (0 = full fine-tuning), got " +
                                   std::to_string(lora.rank));
  }
  if (lora.rank == 0) return Status::OK();
  if (!(lora.alpha > 0)) {
    return Status::InvalidArgument("lora alpha must be positive, got " +
                                   std::to_string(lora.alpha));
  }
  if (!(lora.dropout >= 0 && lora.dropout < 1)) {
    return Status::InvalidArgument("lora dropout must be in [0, 1), got " +
                                   std::to_string(lora.dropout));
  }
  if (lora.targets.empty()) {
    return Status::InvalidArgument("lora targets are empty; name some of wq wk wv wo w1 w2 w3");
  }
  for (const std::string& t : lora.targets) {
    if (std::find(std::begin(kLoraTargets), std::end(kLoraTargets), t) == std::end(kLoraTargets)) {
      return Status::InvalidArgument("lora target \"" + t +
                                     "\" is not a projection (expected some of wq wk wv wo w1 "
                                     "w2 w3)");
    }
  }
  return Status::OK();
}

Result<at::Device> ParseDevice(const std::string& name) {
  if (name.empty() || name == "cpu") return at::Device(at::kCPU);
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    if (!at::hasCUDA() || at::getNumGPUs() == 0) {
      return Status::InvalidArgument("device \"" + name +
                                     "\": CUDA is not available (this libtorch has no CUDA "
                                     "support or sees no GPU); use --device cpu");
    }
    int index = 0;
    if (name.size() > 5) {
      const std::string digits = name.substr(5);
      if (digits.empty() || digits.size() > 3 ||
          digits.find_first_not_of("0123456789") != std::string::npos) {
        return Status::InvalidArgument("device \"" + name + "\": expected cuda or cuda:N");
      }
      index = std::stoi(digits);
    }
    if (index >= static_cast<int>(at::getNumGPUs())) {
      return Status::InvalidArgument("device \"" + name + "\": only " +
                                     std::to_string(at::getNumGPUs()) + " GPU(s) are visible");
    }
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return Status::InvalidArgument("device \"" + name + "\" is not one of cpu, cuda, cuda:N");
}

Batch MakeBatch(const std::vector<const TokenSequence*>& sequences, at::Device device,
                at::ScalarType dtype) {
  int64_t T = 2;
  for (const TokenSequence* s : sequences) T = std::max<int64_t>(T, s->tokens.size());
  const int64_t B = static_cast<int64_t>(sequences.size());
  at::Tensor ids = at::zeros({B, T}, at::kLong);
  at::Tensor targets = at::zeros({B, T - 1}, at::kFloat);
  int64_t* id = ids.data_ptr<int64_t>();
  float* tg = targets.data_ptr<float>();
  Batch batch;
  for (int64_t b = 0; b < B; ++b) {
    const TokenSequence& s = *sequences[b];
    for (size_t t = 0; t < s.tokens.size(); ++t) {
      id[b * T + static_cast<int64_t>(t)] = s.tokens[t];
      if (t > 0) tg[b * (T - 1) + static_cast<int64_t>(t) - 1] = s.target[t];
    }
    batch.tokens += static_cast<int64_t>(s.tokens.size());
  }
  batch.target_index = targets.reshape({-1}).nonzero().reshape({-1}).to(device);
  batch.ids = ids.to(device);
  batch.targets = targets.to(device, dtype);
  return batch;
}

Result<std::unique_ptr<TrainModel>> TrainModel::Load(const engine::WeightSource& weights,
                                                     const ModelSetup& setup) {
  const ModelConfig& c = weights.config();
  BF_RETURN_IF_ERROR(CheckConfig(c));
  BF_RETURN_IF_ERROR(CheckLora(setup.lora));
  if (setup.dtype != at::kFloat && setup.dtype != at::kDouble) {
    return Status::InvalidArgument("master weights must be float32 or float64");
  }
  if (setup.bf16 && setup.dtype != at::kFloat) {
    return Status::InvalidArgument("bf16 compute needs float32 master weights");
  }
  std::unique_ptr<TrainModel> m(new TrainModel());
  m->config_ = c;
  m->setup_ = setup;
  m->rope_dim_ = c.rope_dim == 0 ? c.head_dim : c.rope_dim;
  const bool lora = setup.lora.rank > 0;
  try {
    std::vector<std::string> names = CanonicalTensorNames(c);
    for (const std::string& name : names) {
      BF_ASSIGN_OR_RETURN(FloatTensor t, weights.Get(name));
      const std::vector<int64_t> want = engine::CanonicalTensorShape(c, name);
      int64_t n = 1;
      for (int64_t d : want) n *= d;
      if (t.shape != want || static_cast<int64_t>(t.data.size()) != n) {
        return Status::InvalidArgument("tensor " + name + " has shape " + ShapeText(t.shape) +
                                       ", expected " + ShapeText(want) + " from the model config");
      }
      at::Tensor value = FromFloats(t).to(setup.device, setup.dtype);
      if (!lora) value.requires_grad_(true);
      m->weights_[name] = value;
      if (!lora) m->trainable_.push_back({name, value, value.dim() >= 2});
    }
    if (c.tied_embeddings) m->weights_["output"] = m->weights_["tok_embeddings"];

    if (lora) {
      const std::set<std::string> targets(setup.lora.targets.begin(), setup.lora.targets.end());
      m->lora_scale_ = setup.lora.alpha / setup.lora.rank;
      Random rng(setup.seed);
      uint64_t stream = 0;
      for (const std::string& name : names) {
        const std::string role = name.substr(name.rfind('.') + 1);
        if (name.rfind("layers.", 0) != 0 || targets.count(role) == 0) continue;
        const at::Tensor& w = m->weights_[name];
        const int64_t out = w.size(0), in = w.size(1), r = setup.lora.rank;
        // A ~ U(-1/sqrt(in), 1/sqrt(in)) (what PyTorch's default Linear init gives), B = 0, so
        // the adapted model starts as the base model. Values come from the portable generator.
        Random a_rng = rng.Fork(++stream);
        at::Tensor a = at::empty({r, in}, at::kDouble);
        double* ap = a.data_ptr<double>();
        const double bound = 1.0 / std::sqrt(static_cast<double>(in));
        for (int64_t i = 0; i < r * in; ++i) ap[i] = bound * (2 * a_rng.Uniform() - 1);
        Adapter adapter;
        adapter.a = a.to(at::kFloat).to(setup.device, setup.dtype).requires_grad_(true);
        adapter.b = at::zeros({out, r}, at::TensorOptions().dtype(setup.dtype).device(setup.device))
                        .requires_grad_(true);
        m->trainable_.push_back({name + ".lora_a", adapter.a, true});
        m->trainable_.push_back({name + ".lora_b", adapter.b, true});
        m->adapters_[name] = adapter;
      }
    }

    const int half = m->rope_dim_ / 2;
    at::Tensor cos = at::empty({c.context_length, half}, at::kDouble);
    at::Tensor sin = at::empty({c.context_length, half}, at::kDouble);
    double* cp = cos.data_ptr<double>();
    double* sp = sin.data_ptr<double>();
    for (int i = 0; i < half; ++i) {
      const double freq = RopeFrequency(c, m->rope_dim_, i);
      for (int pos = 0; pos < c.context_length; ++pos) {
        cp[static_cast<int64_t>(pos) * half + i] = std::cos(pos * freq);
        sp[static_cast<int64_t>(pos) * half + i] = std::sin(pos * freq);
      }
    }
    // Rounded to float32 first, as the engine's tables are, then to the master dtype.
    m->rope_cos_ = cos.to(at::kFloat).to(setup.device, setup.dtype);
    m->rope_sin_ = sin.to(at::kFloat).to(setup.device, setup.dtype);
  } catch (const std::exception& e) {
    return Status::ResourceExhausted(std::string("trainer: building the model failed: ") +
                                     e.what());
  }
  return m;
}

int64_t TrainModel::trainable_count() const {
  int64_t n = 0;
  for (const Parameter& p : trainable_) n += p.value.numel();
  return n;
}

at::Tensor TrainModel::Matmul(const at::Tensor& x, const at::Tensor& w_t) const {
  if (!setup_.bf16) return at::matmul(x, w_t);
  return at::matmul(x.to(at::kBFloat16), w_t.to(at::kBFloat16)).to(setup_.dtype);
}

at::Tensor TrainModel::RmsNorm(const at::Tensor& x, const at::Tensor& w) const {
  return x * at::rsqrt(x.pow(2).mean({-1}, /*keepdim=*/true) + config_.rms_eps) * w;
}

at::Tensor TrainModel::Rope(const at::Tensor& x, int64_t T) const {
  const int64_t half = rope_dim_ / 2;
  const int64_t D = x.size(-1);
  at::Tensor cos = rope_cos_.narrow(0, 0, T).view({1, T, 1, half});
  at::Tensor sin = rope_sin_.narrow(0, 0, T).view({1, T, 1, half});
  at::Tensor rot = x.narrow(-1, 0, rope_dim_);
  at::Tensor out;
  if (config_.rope_style == engine::RopeStyle::kInterleaved) {
    // Pairs (x0, x1), (x2, x3), ...
    at::Tensor pairs = rot.unflatten(-1, {half, 2});
    at::Tensor x0 = pairs.select(-1, 0), x1 = pairs.select(-1, 1);
    out = at::stack({x0 * cos - x1 * sin, x0 * sin + x1 * cos}, -1).flatten(-2);
  } else {
    // Pairs (x_i, x_{i + half}).
    at::Tensor x0 = rot.narrow(-1, 0, half), x1 = rot.narrow(-1, half, half);
    out = at::cat({x0 * cos - x1 * sin, x0 * sin + x1 * cos}, -1);
  }
  if (rope_dim_ == D) return out;
  return at::cat({out, x.narrow(-1, rope_dim_, D - rope_dim_)}, -1);
}

at::Tensor TrainModel::Project(const at::Tensor& x, const std::string& name, const at::Tensor& bias,
                               bool train, at::Generator* generator) {
  at::Tensor y = Matmul(x, weights_.at(name).t());
  if (bias.defined()) y = y + bias;
  auto it = adapters_.find(name);
  if (it == adapters_.end()) return y;
  at::Tensor in = x;
  const double p = setup_.lora.dropout;
  if (train && p > 0 && generator != nullptr) {
    // Drawn on the CPU from a generator seeded by the step, so a resumed run draws the same.
    at::Tensor keep = at::empty(x.sizes(), at::kFloat).bernoulli_(1 - p, *generator);
    in = x * keep.to(x.device(), x.scalar_type()) / (1 - p);
  }
  return y + Matmul(Matmul(in, it->second.a.t()), it->second.b.t()) * lora_scale_;
}

at::Tensor TrainModel::Attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              const at::Tensor& mask) const {
  const int64_t B = q.size(0), Nh = q.size(1), T = q.size(2);
  // Allocations above glibc's largest mmap threshold (32 MiB) are fresh zeroed pages every
  // time; below it, freed score tensors are reused. Keep each chunk's scores under 16 MiB.
  const int64_t per_sequence = Nh * T * T * static_cast<int64_t>(q.element_size());
  const int64_t chunk =
      std::max<int64_t>(1, (int64_t{16} << 20) / std::max<int64_t>(1, per_sequence));
  std::vector<at::Tensor> parts;
  for (int64_t b = 0; b < B; b += chunk) {
    const int64_t n = std::min(chunk, B - b);
    at::Tensor qc = q.narrow(0, b, n), kc = k.narrow(0, b, n), vc = v.narrow(0, b, n);
    at::Tensor scores = Matmul(qc, kc.transpose(-1, -2));
    scores.add_(mask);  // the product is not saved for backward, so in place is safe
    parts.push_back(Matmul(at::softmax(scores, -1), vc));
  }
  return parts.size() == 1 ? parts[0] : at::cat(parts, 0);
}

at::Tensor TrainModel::Logits(const at::Tensor& ids, bool train, uint64_t dropout_seed) {
  return Matmul(Hidden(ids, train, dropout_seed), weights_.at("output").t());
}

at::Tensor TrainModel::Hidden(const at::Tensor& ids, bool train, uint64_t dropout_seed) {
  const ModelConfig& c = config_;
  const int64_t B = ids.size(0), T = ids.size(1);
  const int64_t H = c.hidden_size, D = c.head_dim, Nh = c.n_heads, Nkv = c.n_kv_heads;
  const int64_t G = Nh / Nkv;
  at::Generator generator = at::detail::createCPUGenerator(dropout_seed);
  at::Generator* gen = train ? &generator : nullptr;
  const at::TensorOptions opts = at::TensorOptions().dtype(setup_.dtype).device(setup_.device);

  // Additive causal mask [T, T] (and the sliding window's lower edge).
  at::Tensor mask = at::full({T, T}, -INFINITY, opts).triu(1);
  if (c.sliding_window > 0 && T > c.sliding_window) {
    mask = mask + at::full({T, T}, -INFINITY, opts).tril(-c.sliding_window);
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  static const at::Tensor kNone;

  at::Tensor x = weights_.at("tok_embeddings").index_select(0, ids.reshape({-1})).view({B, T, H});
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    at::Tensor h = RmsNorm(x, weights_.at(p + "attention_norm"));
    const bool bias = c.qkv_bias;
    at::Tensor q = Project(h, p + "wq", bias ? weights_.at(p + "bq") : kNone, train, gen);
    at::Tensor k = Project(h, p + "wk", bias ? weights_.at(p + "bk") : kNone, train, gen);
    at::Tensor v = Project(h, p + "wv", bias ? weights_.at(p + "bv") : kNone, train, gen);
    q = (Rope(q.view({B, T, Nh, D}), T) * scale).permute({0, 2, 1, 3});  // [B, Nh, T, D]
    k = Rope(k.view({B, T, Nkv, D}), T).permute({0, 2, 1, 3});
    v = v.view({B, T, Nkv, D}).permute({0, 2, 1, 3});
    if (G > 1) {
      // Query head h reads key/value head h / G.
      k = k.unsqueeze(2).expand({B, Nkv, G, T, D}).reshape({B, Nh, T, D});
      v = v.unsqueeze(2).expand({B, Nkv, G, T, D}).reshape({B, Nh, T, D});
    }
    at::Tensor attention = Attend(q, k, v, mask).permute({0, 2, 1, 3}).reshape({B, T, Nh * D});
    x = x + Project(attention, p + "wo", kNone, train, gen);

    h = RmsNorm(x, weights_.at(p + "ffn_norm"));
    at::Tensor gate = Project(h, p + "w1", kNone, train, gen);
    at::Tensor up = Project(h, p + "w3", kNone, train, gen);
    x = x + Project(at::silu(gate) * up, p + "w2", kNone, train, gen);
  }
  return RmsNorm(x, weights_.at("norm"));
}

at::Tensor TrainModel::TargetLogProbs(const Batch& batch, bool train, uint64_t dropout_seed) {
  const int64_t B = batch.ids.size(0), T = batch.ids.size(1);
  at::Tensor hidden = Hidden(batch.ids, train, dropout_seed).narrow(1, 0, T - 1);
  at::Tensor index = batch.target_index;
  at::Tensor rows = hidden.reshape({B * (T - 1), hidden.size(-1)}).index_select(0, index);
  at::Tensor logits = Matmul(rows, weights_.at("output").t());  // [targets, V]
  at::Tensor next = batch.ids.narrow(1, 1, T - 1).reshape({-1}).index_select(0, index);
  // log softmax at the target only: logit - logsumexp, without a log-softmax copy.
  at::Tensor picked =
      logits.gather(-1, next.unsqueeze(-1)).squeeze(-1) - at::logsumexp(logits, {-1});
  at::Tensor all = at::zeros({B * (T - 1)}, picked.options()).index_copy(0, index, picked);
  return all.view({B, T - 1}) * batch.targets;
}

NamedTensors TrainModel::MergedWeights() const {
  at::NoGradGuard no_grad;
  NamedTensors out;
  for (const std::string& name : CanonicalTensorNames(config_)) {
    const at::Tensor& w = weights_.at(name);
    auto it = adapters_.find(name);
    if (it == adapters_.end()) {
      out.push_back({name, ToFloats(w)});
      continue;
    }
    // Merged in float64 so the sum rounds once.
    at::Tensor delta = it->second.b.to(at::kDouble).mm(it->second.a.to(at::kDouble));
    out.push_back({name, ToFloats(w.to(at::kDouble) + delta * lora_scale_)});
  }
  return out;
}

NamedTensors TrainModel::AdapterWeights() const {
  NamedTensors out;
  for (const auto& [name, adapter] : adapters_) {
    out.push_back({name + ".lora_a", ToFloats(adapter.a)});
    out.push_back({name + ".lora_b", ToFloats(adapter.b)});
  }
  return out;
}

Status TrainModel::SetAdapterWeights(const std::map<std::string, FloatTensor>& adapters) {
  at::NoGradGuard no_grad;
  for (auto& [name, adapter] : adapters_) {
    for (auto [suffix, tensor] : {std::pair{".lora_a", &adapter.a}, {".lora_b", &adapter.b}}) {
      auto it = adapters.find(name + suffix);
      if (it == adapters.end()) {
        return Status::InvalidArgument("training state: adapter " + name + suffix + " is missing");
      }
      const std::vector<int64_t> want(tensor->sizes().begin(), tensor->sizes().end());
      if (it->second.shape != want) {
        return Status::InvalidArgument("training state: adapter " + name + suffix + " has shape " +
                                       ShapeText(it->second.shape) + ", expected " +
                                       ShapeText(want) +
                                       " (was the run started with another LoRA rank?)");
      }
      tensor->copy_(FromFloats(it->second));
    }
  }
  return Status::OK();
}

at::Tensor TrainModel::Weight(const std::string& canonical) const { return weights_.at(canonical); }

at::Tensor PreferenceLosses(TrainMethod method, double beta, const at::Tensor& policy_chosen,
                            const at::Tensor& policy_rejected, const at::Tensor& ref_chosen,
                            const at::Tensor& ref_rejected) {
  const at::Tensor m = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected);
  if (method == TrainMethod::kIpo) return (m - 1.0 / (2.0 * beta)).pow(2);
  return -at::log_sigmoid(m * beta);
}

}  // namespace breakfix::train
