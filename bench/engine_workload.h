// The chat workload of the engine benchmark's load tests, shared by the two programs that run it:
// engine_bench (requests submitted straight to an Engine) and serve_load (the same requests sent
// to `breakfix serve` as streaming HTTP calls). Both send request i with the same user message,
// the same sampling settings and the same seed, so the two runs generate the same tokens and
// their throughputs differ only by what lies between the client and the engine.
//
// Header-only; no libtorch or HTTP types.
#ifndef BREAKFIX_BENCH_ENGINE_WORKLOAD_H_
#define BREAKFIX_BENCH_ENGINE_WORKLOAD_H_

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace breakfix::bench {

// What a load test asks for. Defaults are the benchmark's standard run.
struct LoadSettings {
  int clients = 64;          // requests kept in flight (each finished request starts the next)
  double seconds = 15;       // no request starts after this many seconds; running ones finish
  int max_tokens = 128;      // completion tokens per request at most
  double temperature = 0.8;  // sampled with seed LoadSeed(i): varied but reproducible text
};

// User messages, in the register of the TinyStories data that stories260K was trained on, so
// its answers run to a realistic length instead of ending at once.
inline const std::string& LoadPrompt(uint64_t request) {
  static const std::array<std::string, 8> kPrompts = {
      "Tell me a story about a little dog who finds a red ball in the garden.",
      "Once upon a time there was a girl named Mia. What did she do on a rainy day?",
      "Write a short story about a cat and a bird who become friends.",
      "Tell a story about a boy who wants to fly his kite but the wind is gone.",
      "A small frog lived near a big pond. Tell me what happened one morning.",
      "Write a story about two friends who bake a cake for their mom.",
      "Tell me about a bear who could not find his favourite hat.",
      "Once upon a time, a tiny car wanted to go up the tall hill. What happened next?",
  };
  return kPrompts[request % kPrompts.size()];
}

// The sampling seed of request `request` (the same in both programs).
inline uint64_t LoadSeed(uint64_t request) { return 1000 + request; }

// One finished request. Times are seconds since the load test began.
struct RequestRecord {
  double start = 0;
  double first_token = -1;  // first content text received; -1 when none came
  double end = 0;
  int prompt_tokens = 0;  // as the engine (or the server's usage chunk) counted them
  int completion_tokens = 0;
  int content_events = 0;     // events / SSE chunks that carried text
  std::string finish_reason;  // "stop", "length", or what went wrong
  std::string error;          // empty when the request succeeded
};

// The value below which a share `q` (0..1) of `values` lies (nearest rank); 0 when empty.
inline double Quantile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(q * static_cast<double>(values.size()));
  const size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return values[std::min(index, values.size() - 1)];
}

// Throughput and latency of a load test. `wall_seconds` runs from the start to the last
// request's end (the drain after the deadline included, since its tokens are counted).
inline nlohmann::json SummarizeLoad(const std::vector<RequestRecord>& records,
                                    const LoadSettings& settings, double wall_seconds) {
  int64_t tokens = 0, prompt_tokens = 0, events = 0, ok = 0;
  std::vector<double> ttft_ms, latency_ms, per_request_rate;
  std::map<std::string, int> finish;
  std::string first_error;
  for (const RequestRecord& r : records) {
    if (!r.error.empty()) {
      if (first_error.empty()) first_error = r.error;
      continue;
    }
    ++ok;
    tokens += r.completion_tokens;
    prompt_tokens += r.prompt_tokens;
    events += r.content_events;
    ++finish[r.finish_reason];
    latency_ms.push_back(1000 * (r.end - r.start));
    if (r.first_token >= 0) {
      ttft_ms.push_back(1000 * (r.first_token - r.start));
      if (r.end > r.first_token && r.completion_tokens > 1) {
        per_request_rate.push_back((r.completion_tokens - 1) / (r.end - r.first_token));
      }
    }
  }
  const double wall = wall_seconds > 0 ? wall_seconds : 1e-9;
  nlohmann::json j = {
      {"clients", settings.clients},
      {"duration_s", settings.seconds},
      {"max_tokens", settings.max_tokens},
      {"temperature", settings.temperature},
      {"requests", static_cast<int64_t>(records.size())},
      {"ok", ok},
      {"errors", static_cast<int64_t>(records.size()) - ok},
      {"first_error", first_error},
      {"completion_tokens", tokens},
      {"content_events", events},
      {"wall_s", wall_seconds},
      {"tokens_per_s", tokens / wall},
      {"requests_per_s", ok / wall},
      {"mean_completion_tokens", ok > 0 ? static_cast<double>(tokens) / ok : 0.0},
      {"mean_prompt_tokens", ok > 0 ? static_cast<double>(prompt_tokens) / ok : 0.0},
      {"ttft_ms",
       {{"median", Quantile(ttft_ms, 0.5)},
        {"p90", Quantile(ttft_ms, 0.9)},
        {"max", Quantile(ttft_ms, 1.0)}}},
      {"latency_ms", {{"median", Quantile(latency_ms, 0.5)}, {"p90", Quantile(latency_ms, 0.9)}}},
      {"per_request_tokens_per_s", {{"median", Quantile(per_request_rate, 0.5)}}},
      {"finish_reasons", finish},
  };
  return j;
}

}  // namespace breakfix::bench

#endif  // BREAKFIX_BENCH_ENGINE_WORKLOAD_H_
