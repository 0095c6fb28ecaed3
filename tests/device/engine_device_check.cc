// Checks the engine on an accelerator against the CPU: the same weights run through the CPU
// kernels and through the portable formulation on `--device` (default cuda), and every logit of
// a full recomputation and of batched, cached greedy decoding is compared.
//
//   engine_device_check [--device cuda] [--tolerance 1e-3] [--steps 48] MODEL.gguf ...
//
// Besides the GGUF files named, two random models built here cover the half-split RoPE with
// q/k/v biases, tied embeddings and a sliding window (qwen2/mistral features) and a partial
// rotary dimension (phi3). Without the device (a CPU-only libtorch) it compares the portable
// formulation on the CPU instead and says so. Exit status: 0 all within tolerance, 1 a
// mismatch, 2 bad usage or unreadable model.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "breakfix/env.h"
#include "engine/memory_weights.h"
#include "engine/model_weights.h"
#include "engine/transformer.h"

namespace breakfix::engine {
namespace {

ModelConfig RandomConfig(const std::string& kind) {
  ModelConfig c;
  c.architecture = kind;
  c.vocab_size = 1000;
  c.hidden_size = 128;
  c.n_layers = 3;
  c.n_heads = 8;
  c.n_kv_heads = 2;
  c.head_dim = 16;
  c.ffn_size = 344;
  c.context_length = 512;
  c.rope_style = RopeStyle::kHalfSplit;
  if (kind == "qwen2") {
    c.qkv_bias = true;
    c.tied_embeddings = true;
    c.sliding_window = 24;
    c.rope_theta = 1000000.0;
  } else {  // phi3: partial rotary dimension, no grouping
    c.n_kv_heads = 8;
    c.rope_dim = 8;
  }
  return c;
}

float MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  float worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

int32_t Argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

struct Outcome {
  float full = 0, decode = 0;  // largest |logit difference|
  int steps = 0, same_tokens = 0;
  double cpu_s = 0, device_s = 0;
  bool ok = true;
  std::string error;
};

Outcome Compare(const WeightSource& weights, const std::string& device, int steps) {
  Outcome out;
  const int V = weights.config().vocab_size;
  TransformerOptions cpu_options, device_options;
  cpu_options.max_slots = device_options.max_slots = 4;
  cpu_options.context_length = device_options.context_length = 256;
  device_options.device = device;
  device_options.portable_kernels = true;
  auto cpu = Transformer::Create(weights, cpu_options);
  auto dev = Transformer::Create(weights, device_options);
  if (!cpu.ok() || !dev.ok()) {
    out.ok = false;
    out.error = (!cpu.ok() ? cpu.status() : dev.status()).ToString();
    return out;
  }
  Random rng(42);
  std::vector<int32_t> tokens(48);
  for (int32_t& t : tokens) t = static_cast<int32_t>(rng.Below(V));
  auto a = (*cpu)->ForwardFull(tokens);
  auto b = (*dev)->ForwardFull(tokens);
  if (!a.ok() || !b.ok()) {
    out.ok = false;
    out.error = (!a.ok() ? a.status() : b.status()).ToString();
    return out;
  }
  out.full = MaxDiff(*a, *b);

  // Four sequences decoded together; both sides are fed the CPU's greedy choice so that they
  // stay on the same path, and the device's own choice is counted against it.
  const std::vector<int> lengths = {1, 7, 19, 3};
  std::vector<std::vector<int32_t>> seqs;
  for (size_t s = 0; s < lengths.size(); ++s) {
    std::vector<int32_t> p(lengths[s]);
    for (int32_t& t : p) t = static_cast<int32_t>(rng.Below(V));
    if (s == 0) p[0] = 1;  // BOS alone, as generation from nothing starts
    seqs.push_back(p);
  }
  for (int step = 0; step <= steps; ++step) {
    std::vector<SequenceChunk> chunks;
    for (size_t s = 0; s < seqs.size(); ++s) {
      SequenceChunk c;
      c.slot = static_cast<int>(s);
      if (step == 0) {
        c.start_pos = 0;
        c.tokens = seqs[s];
      } else {
        c.start_pos = static_cast<int>(seqs[s].size()) - 1;
        c.tokens = {seqs[s].back()};
      }
      chunks.push_back(std::move(c));
    }
    std::vector<std::vector<float>> la, lb;
    auto t0 = std::chrono::steady_clock::now();
    Status sa = (*cpu)->Forward(chunks, &la);
    auto t1 = std::chrono::steady_clock::now();
    Status sb = (*dev)->Forward(chunks, &lb);
    auto t2 = std::chrono::steady_clock::now();
    out.cpu_s += std::chrono::duration<double>(t1 - t0).count();
    out.device_s += std::chrono::duration<double>(t2 - t1).count();
    if (!sa.ok() || !sb.ok()) {
      out.ok = false;
      out.error = (!sa.ok() ? sa : sb).ToString();
      return out;
    }
    for (size_t s = 0; s < seqs.size(); ++s) {
      out.decode = std::max(out.decode, MaxDiff(la[s], lb[s]));
      const int32_t next = Argmax(la[s]);
      out.same_tokens += Argmax(lb[s]) == next ? 1 : 0;
      ++out.steps;
      seqs[s].push_back(next);
    }
  }
  return out;
}

int Main(int argc, char** argv) {
  std::string device = "cuda";
  double tolerance = 1e-3;
  int steps = 48;
  std::vector<std::string> models;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--device" || arg == "--tolerance" || arg == "--steps") && i + 1 < argc) {
      const std::string value = argv[++i];
      if (arg == "--device") device = value;
      if (arg == "--tolerance") tolerance = std::atof(value.c_str());
      if (arg == "--steps") steps = std::atoi(value.c_str());
    } else if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr,
                   "usage: engine_device_check [--device D] [--tolerance T] [--steps N] "
                   "MODEL.gguf ...\n");
      return 2;
    } else {
      models.push_back(arg);
    }
  }
  {
    // Is the device there at all? Otherwise compare the portable formulation on the CPU.
    MemoryWeights probe(RandomConfig("qwen2"), 1);
    TransformerOptions o;
    o.device = device;
    o.max_slots = 1;
    o.context_length = 8;
    auto t = Transformer::Create(probe, o);
    if (!t.ok()) {
      std::printf("device %s unavailable (%s); comparing the portable formulation on the CPU\n",
                  device.c_str(), t.status().ToString().c_str());
      device = "cpu";
    }
  }
  std::printf("%-28s %-8s %12s %12s %14s %9s %9s\n", "model", "device", "max|d| full",
              "max|d| decode", "greedy agree", "cpu s", "device s");
  bool all_ok = true;
  auto report = [&](const std::string& name, const Outcome& o) {
    if (!o.ok) {
      std::printf("%-28s error: %s\n", name.c_str(), o.error.c_str());
      all_ok = false;
      return;
    }
    const bool within = o.full <= tolerance && o.decode <= tolerance;
    all_ok = all_ok && within;
    std::printf("%-28s %-8s %12.2e %12.2e %8d/%-5d %9.3f %9.3f %s\n", name.c_str(), device.c_str(),
                o.full, o.decode, o.same_tokens, o.steps, o.cpu_s, o.device_s,
                within ? "ok" : "MISMATCH");
  };
  for (const std::string& path : models) {
    auto weights = OpenWeights(path);
    if (!weights.ok()) {
      std::fprintf(stderr, "%s: %s\n", path.c_str(), weights.status().ToString().c_str());
      return 2;
    }
    const std::string name = path.substr(path.find_last_of('/') + 1);
    report(name, Compare(**weights, device, steps));
  }
  for (const std::string kind : {"qwen2", "phi3"}) {
    MemoryWeights weights(RandomConfig(kind), 7);
    report("random-" + kind, Compare(weights, device, steps));
  }
  std::printf("tolerance %.1e: %s\n", tolerance, all_ok ? "PASS" : "FAIL");
  return all_ok ? 0 : 1;
}

}  // namespace
}  // namespace breakfix::engine

int main(int argc, char** argv) { return breakfix::engine::Main(argc, argv); }
