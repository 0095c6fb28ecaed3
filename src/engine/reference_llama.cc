#include "engine/reference_llama.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <utility>

namespace breakfix::engine {
namespace {

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Reads one canonical tensor and checks its shape.
Status Fetch(const WeightSource& weights, const std::string& name,
             const std::vector<int64_t>& shape, std::vector<float>* out) {
  BF_ASSIGN_OR_RETURN(FloatTensor t, weights.Get(name));
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (t.shape != shape || static_cast<int64_t>(t.data.size()) != n) {
    return Status::InvalidArgument("reference model: tensor " + name + " has shape " +
                                   ShapeText(t.shape) + ", expected " + ShapeText(shape));
  }
  *out = std::move(t.data);
  return Status::OK();
}

// out[i] = sum_j w[i, j] * x[j] (+ b[i]); w is row-major [rows, cols]. Sums in double.
void MatVec(const std::vector<float>& w, const std::vector<float>& b, const float* x, int rows,
            int cols, float* out) {
  for (int i = 0; i < rows; ++i) {
    const float* row = w.data() + static_cast<size_t>(i) * cols;
    double sum = b.empty() ? 0.0 : b[i];
    for (int j = 0; j < cols; ++j) sum += static_cast<double>(row[j]) * x[j];
    out[i] = static_cast<float>(sum);
  }
}

void RmsNorm(const float* x, const std::vector<float>& weight, int n, double eps, float* out) {
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const double scale = 1.0 / std::sqrt(ss / n + eps);
  for (int i = 0; i < n; ++i) out[i] = static_cast<float>(weight[i] * (x[i] * scale));
}

// Rotates one head's vector by position `pos` in the configured convention.
void Rotate(float* head, int pos, const std::vector<double>& inv_freq, RopeStyle style) {
  const int half = static_cast<int>(inv_freq.size());
  for (int i = 0; i < half; ++i) {
    const double angle = static_cast<double>(pos) * inv_freq[i];
    const double c = std::cos(angle), s = std::sin(angle);
    // Interleaved: the pair is (2i, 2i+1). Half-split: (i, i + rope_dim/2).
    const int a = style == RopeStyle::kInterleaved ? 2 * i : i;
    const int b = style == RopeStyle::kInterleaved ? 2 * i + 1 : i + half;
    const double x0 = head[a], x1 = head[b];
    head[a] = static_cast<float>(x0 * c - x1 * s);
    head[b] = static_cast<float>(x0 * s + x1 * c);
  }
}

}  // namespace

Result<std::unique_ptr<ReferenceLlama>> ReferenceLlama::Create(const WeightSource& weights,
                                                               int context_length) {
  const ModelConfig& c = weights.config();
  if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.n_layers <= 0 || c.n_heads <= 0 ||
      c.n_kv_heads <= 0 || c.head_dim <= 0 || c.ffn_size <= 0) {
    return Status::InvalidArgument("reference model: config sizes must be positive");
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    return Status::InvalidArgument("reference model: n_heads " + std::to_string(c.n_heads) +
                                   " is not a multiple of n_kv_heads " +
                                   std::to_string(c.n_kv_heads));
  }
  std::unique_ptr<ReferenceLlama> m(new ReferenceLlama());
  m->config_ = c;
  if (m->config_.rope_dim == 0) m->config_.rope_dim = c.head_dim;
  const int rope_dim = m->config_.rope_dim;
  if (rope_dim % 2 != 0 || rope_dim > c.head_dim) {
    return Status::InvalidArgument("reference model: rope_dim " + std::to_string(rope_dim) +
                                   " must be even and at most head_dim " +
                                   std::to_string(c.head_dim));
  }
  m->context_length_ = context_length > 0 ? context_length : c.context_length;
  if (m->context_length_ <= 0) {
    return Status::InvalidArgument("reference model: context length must be positive");
  }

  const int64_t V = c.vocab_size, H = c.hidden_size, F = c.ffn_size, D = c.head_dim;
  const int64_t q_dim = int64_t{c.n_heads} * D, kv_dim = int64_t{c.n_kv_heads} * D;
  BF_RETURN_IF_ERROR(Fetch(weights, "tok_embeddings", {V, H}, &m->tok_embeddings_));
  BF_RETURN_IF_ERROR(Fetch(weights, "norm", {H}, &m->norm_));
  if (c.tied_embeddings) {
    m->output_ = m->tok_embeddings_;
  } else {
    BF_RETURN_IF_ERROR(Fetch(weights, "output", {V, H}, &m->output_));
  }
  m->layers_.resize(c.n_layers);
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    Layer& l = m->layers_[i];
    BF_RETURN_IF_ERROR(Fetch(weights, p + "attention_norm", {H}, &l.attention_norm));
    BF_RETURN_IF_ERROR(Fetch(weights, p + "wq", {q_dim, H}, &l.wq));
    BF_RETURN_IF_ERROR(Fetch(weights, p + "wk", {kv_dim, H}, &l.wk));
    BF_RETURN_IF_ERROR(Fetch(weights, p + "wv", {kv_dim, H}, &l.wv));
    if (c.qkv_bias) {
      BF_RETURN_IF_ERROR(Fetch(weights, p + "bq", {q_dim}, &l.bq));
      BF_RETURN_IF_ERROR(Fetch(weights, p + "bk", {kv_dim}, &l.bk));
      BF_RETURN_IF_ERROR(Fetch(weights, p + "bv", {kv_dim}, &l.bv));
    }
    BF_RETURN_IF_ERROR(Fetch(weights, p + "wo", {H, q_dim}, &l.wo));
    BF_RETURN_IF_ERROR(Fetch(weights, p + "ffn_norm", {H}, &l.ffn_norm));
    BF_RETURN_IF_ERROR(Fetch(weights, p + "w1", {F, H}, &l.w1));
    BF_RETURN_IF_ERROR(Fetch(weights, p + "w3", {F, H}, &l.w3));
    BF_RETURN_IF_ERROR(Fetch(weights, p + "w2", {H, F}, &l.w2));
  }

  // Frequencies theta^(-2i/rope_dim), then the configured scaling of them.
  const RopeScaling& rs = c.rope_scaling;
  for (int i = 0; i < rope_dim / 2; ++i) {
    double freq = std::pow(c.rope_theta, -2.0 * i / rope_dim);
    if (rs.type == "linear" && rs.factor > 0) {
      freq /= rs.factor;
    } else if (rs.type == "llama3" && rs.factor > 0 && rs.original_context_length > 0) {
      const double wavelength = 2 * std::numbers::pi / freq;
      const double long_edge = rs.original_context_length / rs.low_freq_factor;
      const double short_edge = rs.original_context_length / rs.high_freq_factor;
      if (wavelength > long_edge) {
        freq /= rs.factor;  // slow rotations are stretched fully
      } else if (wavelength >= short_edge) {
        // In between, blend the stretched and the original frequency.
        const double t = (rs.original_context_length / wavelength - rs.low_freq_factor) /
                         (rs.high_freq_factor - rs.low_freq_factor);
        freq = (1 - t) * freq / rs.factor + t * freq;
      }
    }
    m->inv_freq_.push_back(freq);
  }
  m->key_cache_.resize(c.n_layers);
  m->value_cache_.resize(c.n_layers);
  return m;
}

Result<std::vector<float>> ReferenceLlama::Step(int32_t token) {
  const ModelConfig& c = config_;
  if (token < 0 || token >= c.vocab_size) {
    return Status::InvalidArgument("reference model: token " + std::to_string(token) +
                                   " is outside the vocabulary [0, " +
                                   std::to_string(c.vocab_size) + ")");
  }
  if (pos_ >= context_length_) {
    return Status::InvalidArgument("reference model: position " + std::to_string(pos_) +
                                   " is beyond the context length " +
                                   std::to_string(context_length_));
  }
  const int H = c.hidden_size, D = c.head_dim, F = c.ffn_size;
  const int q_dim = c.n_heads * D, kv_dim = c.n_kv_heads * D;
  const int group = c.n_heads / c.n_kv_heads;
  const int pos = pos_;

  std::vector<float> x(tok_embeddings_.begin() + static_cast<size_t>(token) * H,
                       tok_embeddings_.begin() + static_cast<size_t>(token + 1) * H);
  std::vector<float> xb(H), q(q_dim), k(kv_dim), v(kv_dim), attn(q_dim), proj(H);
  std::vector<float> gate(F), up(F), scores(pos + 1);

  for (int l = 0; l < c.n_layers; ++l) {
    const Layer& w = layers_[l];
    RmsNorm(x.data(), w.attention_norm, H, c.rms_eps, xb.data());
    MatVec(w.wq, w.bq, xb.data(), q_dim, H, q.data());
    MatVec(w.wk, w.bk, xb.data(), kv_dim, H, k.data());
    MatVec(w.wv, w.bv, xb.data(), kv_dim, H, v.data());
    for (int h = 0; h < c.n_heads; ++h) Rotate(&q[h * D], pos, inv_freq_, c.rope_style);
    for (int h = 0; h < c.n_kv_heads; ++h) Rotate(&k[h * D], pos, inv_freq_, c.rope_style);

    std::vector<float>& keys = key_cache_[l];
    std::vector<float>& values = value_cache_[l];
    keys.resize(static_cast<size_t>(pos + 1) * kv_dim);
    values.resize(static_cast<size_t>(pos + 1) * kv_dim);
    std::copy(k.begin(), k.end(), keys.begin() + static_cast<size_t>(pos) * kv_dim);
    std::copy(v.begin(), v.end(), values.begin() + static_cast<size_t>(pos) * kv_dim);

    // Each query head h reads key/value head h / group; positions before the window are unseen.
    const int first = c.sliding_window > 0 ? std::max(0, pos - c.sliding_window + 1) : 0;
    for (int h = 0; h < c.n_heads; ++h) {
      const float* qh = &q[h * D];
      const int kvh = h / group;
      double max_score = -INFINITY;
      for (int t = first; t <= pos; ++t) {
        const float* kt = &keys[static_cast<size_t>(t) * kv_dim + kvh * D];
        double dot = 0;
        for (int i = 0; i < D; ++i) dot += static_cast<double>(qh[i]) * kt[i];
        scores[t] = static_cast<float>(dot / std::sqrt(static_cast<double>(D)));
        max_score = std::max(max_score, static_cast<double>(scores[t]));
      }
      double total = 0;
      for (int t = first; t <= pos; ++t) total += std::exp(scores[t] - max_score);
      for (int i = 0; i < D; ++i) {
        double sum = 0;
        for (int t = first; t <= pos; ++t) {
          sum += std::exp(scores[t] - max_score) / total *
                 values[static_cast<size_t>(t) * kv_dim + kvh * D + i];
        }
        attn[h * D + i] = static_cast<float>(sum);
      }
    }
    MatVec(w.wo, {}, attn.data(), H, q_dim, proj.data());
    for (int i = 0; i < H; ++i) x[i] += proj[i];

    RmsNorm(x.data(), w.ffn_norm, H, c.rms_eps, xb.data());
    MatVec(w.w1, {}, xb.data(), F, H, gate.data());
    MatVec(w.w3, {}, xb.data(), F, H, up.data());
    for (int i = 0; i < F; ++i) {
      const double g = gate[i];
      gate[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);  // silu(gate) * up
    }
    MatVec(w.w2, {}, gate.data(), H, F, proj.data());
    for (int i = 0; i < H; ++i) x[i] += proj[i];
  }
  RmsNorm(x.data(), norm_, H, c.rms_eps, xb.data());
  std::vector<float> logits(c.vocab_size);
  MatVec(output_, {}, xb.data(), c.vocab_size, H, logits.data());
  ++pos_;
  return logits;
}

Result<std::vector<float>> ReferenceLlama::Run(const std::vector<int32_t>& tokens) {
  Reset();
  std::vector<float> all;
  all.reserve(tokens.size() * config_.vocab_size);
  for (int32_t t : tokens) {
    BF_ASSIGN_OR_RETURN(std::vector<float> logits, Step(t));
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

}  // namespace breakfix::engine
