#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace breakfix::engine {
namespace {

// Orders candidates by value, higher first, then by id, lower first: the one tie-break rule.
struct HigherFirst {
  template <typename C>
  bool operator()(const C& a, const C& b) const {
    return a.value > b.value || (a.value == b.value && a.id < b.id);
  }
};

// Sorting all of a large vocabulary for top-p is wasteful when the nucleus is small: sort the
// best kNucleusProbe first and fall back to a full sort only when their mass falls short.
constexpr size_t kNucleusProbe = 256;

}  // namespace

Status ValidateGenerationParams(const GenerationParams& p) {
  auto bad = [](const std::string& field, double value, const std::string& expected) {
    return Status::InvalidArgument("generation parameter " + field + " = " + std::to_string(value) +
                                   ": expected " + expected);
  };
  if (p.max_tokens < 1) return bad("max_tokens", p.max_tokens, ">= 1");
  if (!std::isfinite(p.temperature) || p.temperature < 0) {
    return bad("temperature", p.temperature, ">= 0 (0 = greedy)");
  }
  if (p.top_k < 0) return bad("top_k", p.top_k, ">= 0 (0 = off)");
  if (!(p.top_p > 0 && p.top_p <= 1)) return bad("top_p", p.top_p, "in (0, 1] (1 = off)");
  if (!(p.min_p >= 0 && p.min_p <= 1)) return bad("min_p", p.min_p, "in [0, 1] (0 = off)");
  if (!std::isfinite(p.repetition_penalty) || !(p.repetition_penalty > 0)) {
    return bad("repetition_penalty", p.repetition_penalty, "> 0 (1 = off)");
  }
  for (size_t i = 0; i < p.stop.size(); ++i) {
    if (p.stop[i].empty()) {
      return Status::InvalidArgument("generation parameter stop[" + std::to_string(i) +
                                     "] is empty: expected non-empty stop strings");
    }
  }
  return Status::OK();
}

Sampler::Sampler(const GenerationParams& params, uint64_t seed) : params_(params), rng_(seed) {}

void Sampler::Observe(std::span<const int32_t> tokens) {
  if (params_.repetition_penalty == 1.0) return;
  for (int32_t t : tokens) {
    if (t < 0) continue;
    if (static_cast<size_t>(t) >= seen_.size()) seen_.resize(static_cast<size_t>(t) + 1, 0);
    if (!seen_[t]) {
      seen_[t] = 1;
      seen_ids_.push_back(t);
    }
  }
}

SampledToken Sampler::Sample(std::span<const float> logits) {
  const size_t n = logits.size();
  SampledToken out;
  if (n == 0) return out;

  // Repetition penalty (as llama.cpp and Hugging Face apply it): a token already in the sequence
  // has a positive logit divided by the penalty and a negative one multiplied by it.
  const float* values = logits.data();
  if (params_.repetition_penalty != 1.0 && !seen_ids_.empty()) {
    work_.assign(logits.begin(), logits.end());
    const float penalty = static_cast<float>(params_.repetition_penalty);
    for (int32_t id : seen_ids_) {
      if (static_cast<size_t>(id) >= n) continue;
      float& v = work_[id];
      v = v > 0 ? v / penalty : v * penalty;
    }
    values = work_.data();
  }

  const bool greedy = params_.temperature <= 0 || params_.top_k == 1;
  if (greedy) {
    // The first maximum wins, so ties go to the lower id. NaN never compares greater.
    size_t best = 0;
    float best_value = -std::numeric_limits<float>::infinity();
    bool found = false;
    for (size_t i = 0; i < n; ++i) {
      if (!found ? !std::isnan(values[i]) : values[i] > best_value) {
        best = i;
        best_value = values[i];
        found = true;
      }
    }
    out.id = static_cast<int32_t>(best);
  } else {
    // Candidates: every finite logit, or the best top_k of them.
    candidates_.clear();
    for (size_t i = 0; i < n; ++i) {
      if (!std::isnan(values[i]) && values[i] != -std::numeric_limits<float>::infinity()) {
        candidates_.push_back({static_cast<int32_t>(i), values[i]});
      }
    }
    if (candidates_.empty()) candidates_.push_back({0, 0.0f});
    bool sorted = false;
    if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < candidates_.size()) {
      std::partial_sort(candidates_.begin(), candidates_.begin() + params_.top_k, candidates_.end(),
                        HigherFirst());
      candidates_.resize(params_.top_k);
      sorted = true;
    }

    // Softmax at the temperature, computed stably from the largest logit.
    float max_logit = -std::numeric_limits<float>::infinity();
    for (const Candidate& c : candidates_) max_logit = std::max(max_logit, c.value);
    const double inv_t = 1.0 / params_.temperature;
    double total = 0;
    for (Candidate& c : candidates_) {
      const double p = std::exp((static_cast<double>(c.value) - max_logit) * inv_t);
      c.value = static_cast<float>(p);
      total += p;
    }
    for (Candidate& c : candidates_) c.value = static_cast<float>(c.value / total);

    if (params_.top_p < 1.0) {
      // Smallest prefix of the sorted distribution whose mass reaches top_p (at least one).
      size_t keep = candidates_.size();
      auto cut = [&](size_t limit) -> bool {
        double mass = 0;
        for (size_t i = 0; i < limit; ++i) {
          mass += candidates_[i].value;
          if (mass >= params_.top_p) {
            keep = i + 1;
            return true;
          }
        }
        return false;
      };
      bool done = false;
      if (!sorted && candidates_.size() > 4 * kNucleusProbe) {
        std::partial_sort(candidates_.begin(), candidates_.begin() + kNucleusProbe,
                          candidates_.end(), HigherFirst());
        done = cut(kNucleusProbe);
      }
      if (!done) {
        if (!sorted) std::sort(candidates_.begin(), candidates_.end(), HigherFirst());
        cut(candidates_.size());
      }
      sorted = true;
      candidates_.resize(keep);
    }

    if (params_.min_p > 0) {
      float p_max = 0;
      for (const Candidate& c : candidates_) p_max = std::max(p_max, c.value);
      const float floor = static_cast<float>(params_.min_p) * p_max;
      std::erase_if(candidates_, [&](const Candidate& c) { return c.value < floor; });
    }

    // Draw from what is left, in its (deterministic) order.
    double mass = 0;
    for (const Candidate& c : candidates_) mass += c.value;
    const double target = rng_.Uniform() * mass;
    double acc = 0;
    out.id = candidates_.back().id;
    for (const Candidate& c : candidates_) {
      acc += c.value;
      if (target < acc) {
        out.id = c.id;
        break;
      }
    }
  }

  if (params_.logprobs) {
    // log-softmax of the unmodified logits: the model's own probability of the chosen token,
    // independent of penalty, temperature and filters.
    double max_raw = -std::numeric_limits<double>::infinity();
    for (float v : logits) {
      if (!std::isnan(v)) max_raw = std::max(max_raw, static_cast<double>(v));
    }
    double sum = 0;
    for (float v : logits) {
      if (!std::isnan(v)) sum += std::exp(static_cast<double>(v) - max_raw);
    }
    const double chosen = logits[out.id];
    const double lp = std::isnan(chosen) ? -std::numeric_limits<double>::infinity()
                                         : chosen - max_raw - std::log(sum);
    out.logprob = static_cast<float>(std::min(lp, 0.0));
  }
  const int32_t id = out.id;
  Observe(std::span<const int32_t>(&id, 1));
  return out;
}

}  // namespace breakfix::engine
