// engine_bench: how fast the in-process engine runs, and how close it comes to what this machine
// can do at most.
//
//   1. The machine's limits, measured here on one thread: memory bandwidth (STREAM-style copy,
//      triad and a read-only sum over arrays far larger than the last-level cache, best of N) and
//      float32 GEMM FLOP/s through ATen (the OpenBLAS sgemm libtorch uses), square sizes.
//   2. Per model, through the Transformer interface (the engine's forward pass, no scheduler):
//      prompt processing tokens/s (one prefill of a P-token prompt), generation tokens/s at
//      batch 1 (one slot decoding) and at batch 32 (32 slots decoding together), and the same
//      step's matrix products alone (same shapes, same ATen calls) as a floor. From the model's
//      sizes: bytes read and FLOPs per token, hence achieved bandwidth and FLOP/s as fractions of
//      the measured limits.
//   3. The Engine itself under a chat load (continuous batching, sampling, detokenizing), the
//      same requests serve_load later sends over HTTP, so the two throughputs can be compared.
//
// Prints a table and writes everything as JSON (--out). bench/engine_run.sh runs it; see
// bench/README.md, section "Engine". Timings never decide a test's pass/fail.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <dlfcn.h>
#include <sys/utsname.h>
#include <torch/version.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "breakfix/engine.h"
#include "breakfix/env.h"
#include "breakfix/status.h"
#include "engine/model_weights.h"
#include "engine/transformer.h"
#include "engine_workload.h"

namespace breakfix::bench {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr char kStoriesFile[] = "tinyllamas-stories260K/stories260K.gguf";
constexpr char kTinyRandomFile[] = "llama-2-tiny-random-gguf/llama-2-tiny-random.gguf";
constexpr double kGiga = 1e9;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Keeps `value` observable so the compiler cannot drop the loop that computed it.
template <typename T>
void KeepAlive(const T& value) {
  asm volatile("" : : "g"(&value) : "memory");
}

// Timings of repeated runs of one thing, in seconds per run.
struct Samples {
  std::vector<double> seconds;
  double Best() const { return *std::min_element(seconds.begin(), seconds.end()); }
  double Median() const { return Quantile(seconds, 0.5); }
  json ToJson() const { return {{"best", Best()}, {"median", Median()}, {"all", seconds}}; }
};

// Runs `once` `reps` times after one warm-up; each sample repeats it until at least
// `min_sample_seconds` have passed and records the mean time per call.
Samples Time(int reps, double min_sample_seconds, const std::function<void()>& once) {
  once();  // warm-up: first-touch page faults, allocator pools, BLAS buffers
  Samples s;
  for (int r = 0; r < reps; ++r) {
    int calls = 0;
    const Clock::time_point start = Clock::now();
    double elapsed = 0;
    do {
      once();
      ++calls;
      elapsed = SecondsSince(start);
    } while (elapsed < min_sample_seconds);
    s.seconds.push_back(elapsed / calls);
  }
  return s;
}

// One intra-op thread in ATen and in OpenBLAS's own pool (the engine's default, threads = 1).
void UseOneThread() {
  at::set_num_threads(1);
  using SetThreadsFn = void (*)(int);
  const auto set =
      reinterpret_cast<SetThreadsFn>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (set != nullptr) set(1);
}

std::string BlasDescription() {
  using ConfigFn = char* (*)();
  const auto config = reinterpret_cast<ConfigFn>(::dlsym(RTLD_DEFAULT, "openblas_get_config"));
  const auto core = reinterpret_cast<ConfigFn>(::dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (config == nullptr) return "unknown BLAS (no openblas_get_config in the process)";
  std::string s = config();
  if (core != nullptr) s += " (kernels: " + std::string(core()) + ")";
  return s;
}

// --- The machine ------------------------------------------------------------------------------

std::string FirstLineWith(const std::string& path, const std::string& prefix) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return line;
  }
  return "";
}

std::string ValueAfterColon(const std::string& line) {
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return "";
  size_t begin = line.find_first_not_of(" \t", colon + 1);
  return begin == std::string::npos ? "" : line.substr(begin);
}

// Cache size in bytes at sysfs index `index` of cpu0 (e.g. "2048K"); 0 when unknown.
int64_t CacheBytes(int index) {
  std::ifstream in("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/size");
  std::string text;
  if (!(in >> text) || text.empty()) return 0;
  int64_t value = std::atoll(text.c_str());
  if (text.back() == 'K') value <<= 10;
  if (text.back() == 'M') value <<= 20;
  return value;
}

json MachineJson() {
  utsname u{};
  ::uname(&u);
  std::ifstream loadavg("/proc/loadavg");
  double load1 = 0;
  loadavg >> load1;
  const long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGESIZE);
  return {
      {"cpu", ValueAfterColon(FirstLineWith("/proc/cpuinfo", "model name"))},
      {"cpus", std::thread::hardware_concurrency()},
      {"l1d_bytes", CacheBytes(0)},
      {"l2_bytes", CacheBytes(2)},
      {"llc_bytes", CacheBytes(3)},
      {"memory_bytes", static_cast<int64_t>(pages) * page_size},
      {"kernel", std::string(u.sysname) + " " + u.release},
      {"load1_at_start", load1},
      {"blas", BlasDescription()},
      {"torch_threads", 1},
  };
}

struct Bandwidth {
  int64_t array_bytes = 0;
  double copy = 0, triad = 0, read = 0;  // bytes per second
};

// The kernels are separate functions so that each is compiled as a plain streaming loop (copy is
// kept from turning into a memcpy call, whose large-size strategy varies with the C library),
// cloned for the widest vector unit the CPU has (chosen at run time), as the BLAS is.
#define BF_BENCH_KERNEL __attribute__((noinline, target_clones("avx512f", "avx2", "default")))

BF_BENCH_KERNEL __attribute__((optimize("no-tree-loop-distribute-patterns"))) void CopyKernel(
    const double* a, double* c, size_t n) {
  for (size_t i = 0; i < n; ++i) c[i] = a[i];
}

BF_BENCH_KERNEL void TriadKernel(double* a, const double* b, const double* c, double scalar,
                                 size_t n) {
  for (size_t i = 0; i < n; ++i) a[i] = b[i] + scalar * c[i];
}

// Sums the array as kReadStreams sequential streams, one per slice, each with kReadLanes
// partial sums over consecutive elements (which the compiler turns into vector adds). One core
// keeps more cache-line misses in flight following several streams than one, as a
// matrix-vector product over many rows does: on the reference machine one stream reads about
// 10 GB/s from memory, eight about 17.
constexpr int kReadStreams = 8;
constexpr int kReadLanes = 8;
BF_BENCH_KERNEL double ReadKernel(const double* a, size_t n) {
  const size_t slice = n / kReadStreams / kReadLanes * kReadLanes;
  double s[kReadStreams][kReadLanes] = {};
  for (size_t i = 0; i < slice; i += kReadLanes) {
    for (int k = 0; k < kReadStreams; ++k) {
      for (int j = 0; j < kReadLanes; ++j) s[k][j] += a[k * slice + i + j];
    }
  }
  double total = 0;
  for (size_t i = slice * kReadStreams; i < n; ++i) total += a[i];
  for (const auto& lanes : s) {
    for (double v : lanes) total += v;
  }
  return total;
}

// STREAM conventions: copy moves 2 words per element, triad 3 (the write-allocate read is not
// counted), read 1. Best of `reps` passes over arrays of `array_bytes` each.
Result<Bandwidth> MeasureBandwidth(int64_t array_bytes, int reps) {
  const size_t n = static_cast<size_t>(array_bytes) / sizeof(double);
  std::vector<double> a, b, c;
  try {
    a.assign(n, 1.0);
    b.assign(n, 2.0);
    c.assign(n, 0.5);
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("memory bandwidth: cannot allocate 3 arrays of " +
                                     std::to_string(array_bytes >> 20) +
                                     " MiB; lower --stream-mib");
  }
  Bandwidth bw;
  bw.array_bytes = static_cast<int64_t>(n * sizeof(double));
  // Small arrays take microseconds per pass: repeat them so a sample lasts long enough to time.
  const int passes = static_cast<int>(std::max<int64_t>(1, (int64_t{64} << 20) / array_bytes));
  double best_copy = 1e30, best_triad = 1e30, best_read = 1e30;
  for (int r = 0; r < reps; ++r) {
    Clock::time_point t = Clock::now();
    for (int p = 0; p < passes; ++p) CopyKernel(a.data(), c.data(), n);
    best_copy = std::min(best_copy, SecondsSince(t) / passes);
    KeepAlive(c[n / 2]);
    t = Clock::now();
    for (int p = 0; p < passes; ++p) TriadKernel(a.data(), b.data(), c.data(), 0.5, n);
    best_triad = std::min(best_triad, SecondsSince(t) / passes);
    KeepAlive(a[n / 3]);
    t = Clock::now();
    double sum = 0;
    for (int p = 0; p < passes; ++p) sum += ReadKernel(b.data(), n);
    best_read = std::min(best_read, SecondsSince(t) / passes);
    KeepAlive(sum);
  }
  const double bytes = static_cast<double>(n * sizeof(double));
  bw.copy = 2 * bytes / best_copy;
  bw.triad = 3 * bytes / best_triad;
  bw.read = bytes / best_read;
  return bw;
}

json BandwidthJson(const Bandwidth& bw) {
  return {{"array_bytes", bw.array_bytes},
          {"copy_gb_s", bw.copy / kGiga},
          {"triad_gb_s", bw.triad / kGiga},
          {"read_gb_s", bw.read / kGiga}};
}

struct GemmPoint {
  int n = 0;
  double flops = 0;  // per second, best of the samples
};

// C = A B for square float32 matrices through ATen (at::mm_out: no allocation in the loop).
std::vector<GemmPoint> MeasureGemm(const std::vector<int>& sizes, int reps) {
  c10::InferenceMode inference;
  std::vector<GemmPoint> points;
  for (int n : sizes) {
    at::Tensor a = at::randn({n, n}, at::kFloat), b = at::randn({n, n}, at::kFloat);
    at::Tensor c = at::empty({n, n}, at::kFloat);
    const Samples s = Time(reps, 0.2, [&] { at::mm_out(c, a, b); });
    points.push_back({n, 2.0 * n * n * n / s.Best()});
  }
  return points;
}

// x W^T for x [rows, in] and one weight matrix W [out, in], the call the engine makes for every
// projection (at::mv for one row), repeated on the same W so that W stays in the caches: how
// fast the BLAS is at the engine's shapes when memory is not the limit.
json MeasureEngineShapeGemm(int64_t out, int64_t in, const std::vector<int>& rows_list, int reps) {
  c10::InferenceMode inference;
  at::Tensor w = at::rand({out, in}, at::kFloat).sub_(0.5);
  json points = json::array();
  for (int rows : rows_list) {
    at::Tensor x = at::rand({rows, in}, at::kFloat).sub_(0.5);
    const Samples s = Time(reps, 0.1, [&] {
      at::Tensor y = rows == 1 ? at::mv(w, x[0]) : at::mm(x, w.t());
      KeepAlive(y);
    });
    points.push_back({{"rows", rows},
                      {"gflops", 2.0 * rows * out * in / s.Best() / kGiga},
                      {"weight_gb_s", 4.0 * out * in / s.Best() / kGiga}});
  }
  return {{"out", out}, {"in", in}, {"weight_bytes", 4 * out * in}, {"points", points}};
}

// --- Models -----------------------------------------------------------------------------------

// Random llama weights generated on request from the tensor's name (nothing is stored, so the
// benchmark holds one copy of the weights: the transformer's). Values are scaled like the test
// models' so activations stay of order one (no overflow, no denormals slowing the arithmetic).
class SyntheticWeights : public engine::WeightSource {
 public:
  explicit SyntheticWeights(const engine::ModelConfig& config) : config_(config) {}

  const engine::ModelConfig& config() const override { return config_; }
  const std::string& format() const override { return format_; }
  const std::string& content_hash() const override { return hash_; }

  Result<engine::FloatTensor> Get(const std::string& name) const override {
    const int64_t V = config_.vocab_size, H = config_.hidden_size, F = config_.ffn_size;
    const int64_t q_dim = int64_t{config_.n_heads} * config_.head_dim;
    const int64_t kv_dim = int64_t{config_.n_kv_heads} * config_.head_dim;
    const double in_h = 1.0 / std::sqrt(static_cast<double>(H));
    std::string leaf = name;
    if (name.rfind("layers.", 0) == 0) {
      const size_t dot = name.find('.', 7);
      if (dot == std::string::npos) return Status::NotFound("synthetic weights: no tensor " + name);
      leaf = name.substr(dot + 1);
    }
    if (leaf == "tok_embeddings") return Random(name, {V, H}, 0, 1.0);
    if (leaf == "output") return Random(name, {V, H}, 0, 2 * in_h);
    if (leaf == "norm" || leaf == "attention_norm" || leaf == "ffn_norm") {
      return Random(name, {H}, 1.0, 0.2);
    }
    if (leaf == "wq") return Random(name, {q_dim, H}, 0, 2 * in_h);
    if (leaf == "wk") return Random(name, {kv_dim, H}, 0, 2 * in_h);
    if (leaf == "wv") return Random(name, {kv_dim, H}, 0, in_h);
    if (leaf == "wo") return Random(name, {H, q_dim}, 0, 1.0 / std::sqrt(double(q_dim)));
    if (leaf == "w1" || leaf == "w3") return Random(name, {F, H}, 0, 2 * in_h);
    if (leaf == "w2") return Random(name, {H, F}, 0, 1.0 / std::sqrt(double(F)));
    return Status::NotFound("synthetic weights: no tensor " + name);
  }

 private:
  static engine::FloatTensor Random(const std::string& name, std::vector<int64_t> shape,
                                    double center, double spread) {
    uint64_t seed = 1469598103934665603ull;  // FNV-1a of the name: the same values every run
    for (unsigned char ch : name) seed = (seed ^ ch) * 1099511628211ull;
    breakfix::Random rng(seed);
    engine::FloatTensor t;
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    t.shape = std::move(shape);
    t.data.resize(n);
    for (float& v : t.data) v = static_cast<float>(center + spread * (2 * rng.Uniform() - 1));
    return t;
  }

  engine::ModelConfig config_;
  std::string format_ = "synthetic";
  std::string hash_ = "synthetic";
};

// Sizes derived from a model's configuration, per generated token.
struct ModelCost {
  int64_t parameters = 0;
  int64_t matrix_parameters = 0;       // read by every token: all but the embedding table
  int64_t kv_floats_per_position = 0;  // keys + values over all layers, per cached position
  int64_t q_dim = 0;
  int n_layers = 0;
  int64_t vocab = 0, hidden = 0;

  // A decode token at position `pos` reads every matrix weight once and the cached keys and
  // values of positions 0..pos.
  double DecodeBytes(int pos) const {
    return 4.0 * matrix_parameters + 4.0 * kv_floats_per_position * (pos + 1);
  }
  // Two FLOPs per weight, plus scores and weighted values over pos + 1 cached positions.
  double DecodeFlops(int pos) const {
    return 2.0 * matrix_parameters + 4.0 * n_layers * q_dim * (pos + 1);
  }
  // A prefill of `n` tokens: every token through every layer, the output projection for the
  // last one only, causal attention over the prompt.
  double PrefillFlops(int n) const {
    const double layer_weights = static_cast<double>(matrix_parameters - vocab * hidden);
    const double attention = 4.0 * n_layers * q_dim * (static_cast<double>(n) * (n + 1) / 2);
    return 2.0 * layer_weights * n + 2.0 * vocab * hidden + attention;
  }
};

ModelCost CostOf(const engine::Transformer& t) {
  const engine::ModelConfig& c = t.config();
  ModelCost m;
  m.parameters = t.parameter_count();
  m.vocab = c.vocab_size;
  m.hidden = c.hidden_size;
  // The embedding table is read one row per token; when it doubles as the output matrix the
  // output projection reads all of it anyway.
  m.matrix_parameters = m.parameters - (c.tied_embeddings ? 0 : m.vocab * m.hidden);
  m.kv_floats_per_position = int64_t{2} * c.n_layers * c.n_kv_heads * c.head_dim;
  m.q_dim = int64_t{c.n_heads} * c.head_dim;
  m.n_layers = c.n_layers;
  return m;
}

// The matrix products of one decode step and nothing else: random matrices of the model's
// shapes, multiplied with the same ATen calls the engine's Linear/AddLinear make (matrix-vector
// for one row, x W^T GEMM for several). The gap between this and a real step is everything
// outside the matrix products: attention, norms, RoPE, activations, tensor bookkeeping, copying
// the logits out.
class MatrixFloor {
 public:
  static Result<std::unique_ptr<MatrixFloor>> Create(const engine::ModelConfig& c) {
    c10::InferenceMode inference;
    auto f = std::unique_ptr<MatrixFloor>(new MatrixFloor());
    const int64_t H = c.hidden_size, F = c.ffn_size, D = c.head_dim;
    const int64_t q_dim = int64_t{c.n_heads} * D, kv_dim = int64_t{c.n_kv_heads} * D;
    try {
      for (int i = 0; i < c.n_layers; ++i) {
        f->wqkv_.push_back(at::rand({q_dim + 2 * kv_dim, H}, at::kFloat).sub_(0.5).mul_(0.1));
        f->wo_.push_back(at::rand({H, q_dim}, at::kFloat).sub_(0.5).mul_(0.1));
        f->w13_.push_back(at::rand({2 * F, H}, at::kFloat).sub_(0.5).mul_(0.1));
        f->w2_.push_back(at::rand({H, F}, at::kFloat).sub_(0.5).mul_(0.1));
      }
      f->output_ = at::rand({int64_t{c.vocab_size}, H}, at::kFloat).sub_(0.5).mul_(0.1);
    } catch (const std::exception& e) {
      return Status::ResourceExhausted(std::string("matrix floor: allocation failed: ") + e.what());
    }
    f->q_dim_ = q_dim;
    f->ffn_ = F;
    f->hidden_ = H;
    return f;
  }

  // One step for `rows` sequences.
  void Step(int rows) {
    c10::InferenceMode inference;
    if (x0_.size(0) != rows) {
      x0_ = at::rand({rows, hidden_}, at::kFloat).sub_(0.5);
      attention_ = at::rand({rows, q_dim_}, at::kFloat).sub_(0.5);
      act_ = at::rand({rows, ffn_}, at::kFloat).sub_(0.5);
    }
    at::Tensor x = x0_.clone();
    for (size_t i = 0; i < wqkv_.size(); ++i) {
      at::Tensor qkv = Linear(x, wqkv_[i]);
      KeepAlive(qkv);
      AddLinear(x, attention_, wo_[i]);
      at::Tensor gate_up = Linear(x, w13_[i]);
      KeepAlive(gate_up);
      AddLinear(x, act_, w2_[i]);
    }
    at::Tensor logits = Linear(x, output_);
    KeepAlive(logits);
  }

 private:
  MatrixFloor() : x0_(at::empty({0, 0}, at::kFloat)) {}

  static at::Tensor Linear(const at::Tensor& x, const at::Tensor& w) {
    if (x.size(0) == 1) return at::mv(w, x[0]).unsqueeze(0);
    return at::mm(x, w.t());
  }
  static void AddLinear(at::Tensor& x, const at::Tensor& in, const at::Tensor& w) {
    if (x.size(0) == 1) {
      x[0].addmv_(w, in[0]);
    } else {
      x.addmm_(in, w.t());
    }
  }

  std::vector<at::Tensor> wqkv_, wo_, w13_, w2_;
  at::Tensor output_;
  at::Tensor x0_, attention_, act_;
  int64_t q_dim_ = 0, ffn_ = 0, hidden_ = 0;
};

// How a model's runs are sized.
struct RunPlan {
  int prompt_tokens = 128;  // prefill measurement; batch-1 decoding continues after it
  int decode_steps = 256;   // batch-1 steps per sample
  int batch = 32;
  int batch_prompt_tokens = 16;  // each batch slot's prompt before it decodes
  int batch_steps = 128;         // batch steps per sample
  int reps = 5;
  double min_sample_seconds = 0.05;
};

// Deterministic token ids in [0, vocab): the transformer's cost does not depend on which tokens
// it sees, and a fixed list keeps sampling out of the forward-pass timings.
std::vector<int32_t> TokenStream(int64_t vocab, size_t n, uint64_t seed) {
  breakfix::Random rng(seed);
  std::vector<int32_t> ids(n);
  for (int32_t& id : ids) id = static_cast<int32_t>(rng.Below(static_cast<uint64_t>(vocab)));
  return ids;
}

struct ModelResult {
  std::string name, source;
  engine::ModelConfig config;
  ModelCost cost;
  RunPlan plan;
  double build_seconds = 0;
  Samples prefill;              // seconds per prefill of plan.prompt_tokens
  Samples decode1;              // seconds per batch-1 step
  Samples decode_batch;         // seconds per batch step (plan.batch tokens)
  Samples floor1, floor_batch;  // matrix products only, seconds per step
};

Status CheckForward(const Status& s, const std::string& what) {
  if (s.ok()) return s;
  return s.WithContext(what);
}

Result<ModelResult> MeasureModel(const std::string& name, const std::string& source,
                                 const engine::WeightSource& weights, const RunPlan& plan) {
  ModelResult r;
  r.name = name;
  r.source = source;
  r.plan = plan;
  r.config = weights.config();
  const int need = std::max(plan.prompt_tokens + plan.decode_steps,
                            plan.batch_prompt_tokens + plan.batch_steps) +
                   1;
  if (r.config.context_length > 0 && need > r.config.context_length) {
    return Status::InvalidArgument(name + ": the runs need " + std::to_string(need) +
                                   " positions but the model's context is " +
                                   std::to_string(r.config.context_length) +
                                   "; lower --prompt-tokens or the step counts");
  }

  // The floor first, then free it: for the big model it is as large as the model itself.
  {
    BF_ASSIGN_OR_RETURN(std::unique_ptr<MatrixFloor> floor, MatrixFloor::Create(r.config));
    r.floor1 = Time(plan.reps, plan.min_sample_seconds, [&] { floor->Step(1); });
    r.floor_batch = Time(plan.reps, plan.min_sample_seconds, [&] { floor->Step(plan.batch); });
  }

  engine::TransformerOptions options;
  options.max_slots = plan.batch;
  options.context_length = need;
  options.threads = 1;
  const Clock::time_point build_start = Clock::now();
  BF_ASSIGN_OR_RETURN(std::unique_ptr<engine::Transformer> t,
                      engine::Transformer::Create(weights, options));
  r.build_seconds = SecondsSince(build_start);
  r.cost = CostOf(*t);
  const int64_t V = r.config.vocab_size;

  const std::vector<int32_t> prompt = TokenStream(V, plan.prompt_tokens, 1);
  const std::vector<int32_t> continuation = TokenStream(V, plan.decode_steps, 2);
  std::vector<std::vector<float>> logits;
  Status status;

  // Prompt processing: a new sequence in slot 0 (start_pos 0 resets it each time).
  r.prefill = Time(plan.reps, plan.min_sample_seconds, [&] {
    if (status.ok()) status = t->Forward({{0, 0, prompt, false}}, &logits);
  });
  BF_RETURN_IF_ERROR(CheckForward(status, name + " prefill"));

  // Batch 1: the prompt (untimed), then decode_steps single-token steps.
  for (int rep = 0; rep < plan.reps; ++rep) {
    BF_RETURN_IF_ERROR(CheckForward(t->Forward({{0, 0, prompt, false}}, &logits), name));
    const Clock::time_point start = Clock::now();
    for (int s = 0; s < plan.decode_steps && status.ok(); ++s) {
      status = t->Forward({{0, plan.prompt_tokens + s, {continuation[s]}, false}}, &logits);
    }
    BF_RETURN_IF_ERROR(CheckForward(status, name + " batch-1 decode"));
    r.decode1.seconds.push_back(SecondsSince(start) / plan.decode_steps);
  }

  // Batch `plan.batch`: every slot gets its own short prompt (untimed), then all decode together.
  std::vector<std::vector<int32_t>> slot_prompts, slot_tokens;
  for (int b = 0; b < plan.batch; ++b) {
    slot_prompts.push_back(TokenStream(V, plan.batch_prompt_tokens, 100 + b));
    slot_tokens.push_back(TokenStream(V, plan.batch_steps, 1000 + b));
  }
  for (int rep = 0; rep < plan.reps; ++rep) {
    std::vector<engine::SequenceChunk> chunks;
    for (int b = 0; b < plan.batch; ++b) chunks.push_back({b, 0, slot_prompts[b], false});
    BF_RETURN_IF_ERROR(CheckForward(t->Forward(chunks, &logits), name + " batch prompts"));
    const Clock::time_point start = Clock::now();
    for (int s = 0; s < plan.batch_steps && status.ok(); ++s) {
      for (int b = 0; b < plan.batch; ++b) {
        chunks[b] = {b, plan.batch_prompt_tokens + s, {slot_tokens[b][s]}, false};
      }
      status = t->Forward(chunks, &logits);
    }
    BF_RETURN_IF_ERROR(CheckForward(status, name + " batch decode"));
    r.decode_batch.seconds.push_back(SecondsSince(start) / plan.batch_steps);
  }
  return r;
}

struct Limits {
  Bandwidth bandwidth;
  Bandwidth cached;  // the same kernels on arrays that fit in the caches, for contrast
  std::vector<GemmPoint> gemm;
  double gemm_peak = 0;  // FLOP/s, best over the sizes
};

// What one model's numbers mean against the machine's limits.
json Analyze(const ModelResult& r, const Limits& limits, int64_t l2_bytes) {
  const ModelCost& c = r.cost;
  const RunPlan& p = r.plan;
  const double bw = limits.bandwidth.read;
  const double peak = limits.gemm_peak;
  json j;
  j["name"] = r.name;
  j["source"] = r.source;
  const engine::ModelConfig& cfg = r.config;
  j["config"] = {{"vocab", cfg.vocab_size},    {"hidden", cfg.hidden_size},
                 {"layers", cfg.n_layers},     {"heads", cfg.n_heads},
                 {"kv_heads", cfg.n_kv_heads}, {"head_dim", cfg.head_dim},
                 {"ffn", cfg.ffn_size},        {"tied_embeddings", cfg.tied_embeddings}};
  j["parameters"] = c.parameters;
  j["matrix_parameters"] = c.matrix_parameters;
  j["weight_bytes_read_per_token"] = 4 * c.matrix_parameters;
  j["fits_in_l2"] = 4 * c.matrix_parameters <= l2_bytes;
  j["transformer_build_s"] = r.build_seconds;
  j["plan"] = {{"prompt_tokens", p.prompt_tokens},
               {"decode_steps", p.decode_steps},
               {"batch", p.batch},
               {"batch_prompt_tokens", p.batch_prompt_tokens},
               {"batch_steps", p.batch_steps},
               {"reps", p.reps}};

  // Prompt processing.
  const double prefill_tps = p.prompt_tokens / r.prefill.Median();
  const double prefill_flops = c.PrefillFlops(p.prompt_tokens) / r.prefill.Median();
  j["prefill"] = {{"tokens_per_s", prefill_tps},
                  {"tokens_per_s_best", p.prompt_tokens / r.prefill.Best()},
                  {"seconds", r.prefill.ToJson()},
                  {"flops_per_s", prefill_flops},
                  {"fraction_of_gemm_peak", prefill_flops / peak}};

  // Batch 1: bytes per token averaged over the decoded positions.
  double bytes = 0, flops1 = 0;
  for (int s = 0; s < p.decode_steps; ++s) {
    bytes += c.DecodeBytes(p.prompt_tokens + s);
    flops1 += c.DecodeFlops(p.prompt_tokens + s);
  }
  bytes /= p.decode_steps;
  flops1 /= p.decode_steps;
  const double step1 = r.decode1.Median();
  const double ideal1 = std::max(bytes / bw, flops1 / peak);  // roofline time per token
  j["decode_batch1"] = {
      {"tokens_per_s", 1 / step1},
      {"tokens_per_s_best", 1 / r.decode1.Best()},
      {"step_us", 1e6 * step1},
      {"seconds_per_step", r.decode1.ToJson()},
      {"bytes_per_token", bytes},
      {"achieved_bytes_per_s", bytes / step1},
      {"fraction_of_read_bandwidth", bytes / step1 / bw},
      {"fraction_of_triad_bandwidth", bytes / step1 / limits.bandwidth.triad},
      {"roofline_tokens_per_s", 1 / ideal1},
      {"fraction_of_roofline", ideal1 / step1},
      {"matrix_floor_step_us", 1e6 * r.floor1.Median()},
      {"outside_matrix_products_us", 1e6 * (step1 - r.floor1.Median())},
  };

  // Batch B: FLOPs per step from every row; weights read once per step for all rows.
  double flops_b = 0, bytes_b = 0;
  for (int s = 0; s < p.batch_steps; ++s) {
    flops_b += p.batch * c.DecodeFlops(p.batch_prompt_tokens + s);
    bytes_b += 4.0 * c.matrix_parameters +
               p.batch * 4.0 * c.kv_floats_per_position * (p.batch_prompt_tokens + s + 1);
  }
  flops_b /= p.batch_steps;
  bytes_b /= p.batch_steps;
  const double step_b = r.decode_batch.Median();
  const double ideal_b = std::max(bytes_b / bw, flops_b / peak);
  j["decode_batch"] = {
      {"batch", p.batch},
      {"tokens_per_s", p.batch / step_b},
      {"tokens_per_s_best", p.batch / r.decode_batch.Best()},
      {"step_us", 1e6 * step_b},
      {"seconds_per_step", r.decode_batch.ToJson()},
      {"flops_per_step", flops_b},
      {"achieved_flops_per_s", flops_b / step_b},
      {"fraction_of_gemm_peak", flops_b / step_b / peak},
      {"achieved_bytes_per_s", bytes_b / step_b},
      {"roofline_tokens_per_s", p.batch / ideal_b},
      {"roofline_bound", bytes_b / bw > flops_b / peak ? "memory" : "compute"},
      {"fraction_of_roofline", ideal_b / step_b},
      {"matrix_floor_step_us", 1e6 * r.floor_batch.Median()},
      {"matrix_floor_flops_per_s", 2.0 * p.batch * c.matrix_parameters / r.floor_batch.Median()},
      {"outside_matrix_products_us", 1e6 * (step_b - r.floor_batch.Median())},
      {"speedup_over_batch1", (p.batch / step_b) * step1},
  };

  // What limits it. Weights that fit in L2 never come from memory, so the DRAM roofline does
  // not apply: compare with the in-cache read bandwidth instead, and call it per-step overhead.
  // Otherwise the roofline only means something once the time it allows is a real share of a
  // step.
  const bool in_l2 = 4 * c.matrix_parameters <= l2_bytes;
  const double cache_bw = limits.cached.read;
  const double cache_ideal1 = std::max(bytes / cache_bw, flops1 / peak);
  const double cache_ideal_b = std::max(bytes_b / cache_bw, flops_b / peak);
  j["decode_batch1"]["fraction_of_cache_roofline"] = cache_ideal1 / step1;
  j["decode_batch1"]["reference_bandwidth"] = in_l2 ? "L2 read" : "memory read";
  j["decode_batch1"]["fraction_of_reference_bandwidth"] = bytes / step1 / (in_l2 ? cache_bw : bw);
  j["decode_batch"]["fraction_of_cache_roofline"] = cache_ideal_b / step_b;
  const auto limit = [&](double ideal, double step, double memory_s, double compute_s) {
    if (in_l2) return std::string("per-step overhead (weights fit in L2)");
    if (ideal / step < 0.2) return std::string("per-step overhead");
    return std::string(memory_s > compute_s ? "memory bandwidth" : "FLOPs");
  };
  const std::string limit1 = limit(ideal1, step1, bytes / bw, flops1 / peak);
  const std::string limit_b = limit(ideal_b, step_b, bytes_b / bw, flops_b / peak);
  j["limited_by"] = {{"batch1", limit1}, {"batch", limit_b}};
  return j;
}

// --- The Engine under load ---------------------------------------------------------------------

// Keeps `settings.clients` chat requests in flight on an Engine for `settings.seconds`, the same
// requests serve_load sends over HTTP.
Result<json> RunEngineLoad(const std::string& path, const LoadSettings& settings) {
  EngineOptions options;  // the defaults `breakfix serve` uses: batch 32, one thread
  BF_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, LoadEngine(path, options));

  std::mutex mu;
  std::condition_variable cv;
  std::deque<RequestRecord> records;  // by request number; guarded by mu
  int outstanding = 0;                // guarded by mu
  const Clock::time_point start = Clock::now();
  const double deadline = settings.seconds;

  // Starts request number `i`; called from this thread and from the engine's callbacks (never
  // with `mu` held: Submit reports a rejected request through the callback at once).
  std::function<void(uint64_t)> submit;
  uint64_t next_request = 0;  // guarded by mu
  submit = [&](uint64_t i) {
    std::vector<int32_t> prompt = engine->EncodeChat({{Role::kUser, LoadPrompt(i)}});
    GenerationParams params;
    params.max_tokens = settings.max_tokens;
    params.temperature = settings.temperature;
    params.seed = LoadSeed(i);
    engine->Submit(std::move(prompt), std::move(params), [&, i](const GenerationEvent& e) {
      const double now = SecondsSince(start);
      bool again = false;
      uint64_t follow = 0;
      {
        std::lock_guard<std::mutex> lock(mu);
        RequestRecord& r = records[i];
        if (!e.text.empty()) {
          ++r.content_events;
          if (r.first_token < 0) r.first_token = now;
        }
        if (!e.done) return;
        r.end = now;
        r.completion_tokens = e.completion_tokens;
        r.prompt_tokens = e.prompt_tokens;
        r.finish_reason = e.finish_reason;
        if (e.finish_reason == "error" || e.finish_reason == "cancelled") {
          r.error = e.finish_reason + ": " + e.error;
        }
        --outstanding;
        if (now < deadline) {
          again = true;
          follow = next_request++;
          records.emplace_back().start = now;
          ++outstanding;
        }
      }
      if (again) submit(follow);
      cv.notify_all();
    });
  };
  std::vector<uint64_t> first;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (int c = 0; c < settings.clients; ++c) {
      first.push_back(next_request++);
      records.emplace_back().start = SecondsSince(start);
      ++outstanding;
    }
  }
  for (uint64_t i : first) submit(i);
  double wall = 0;
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return outstanding == 0; });
    for (const RequestRecord& r : records) wall = std::max(wall, r.end);
  }
  engine->Shutdown(/*finish_in_flight=*/false);
  json j = SummarizeLoad({records.begin(), records.end()}, settings, wall);
  j["model"] = engine->info().description;
  return j;
}

// --- Output -----------------------------------------------------------------------------------

std::string Si(double v, const char* unit) {
  const char* prefixes[] = {"", "k", "M", "G", "T"};
  int i = 0;
  while (std::abs(v) >= 1000 && i < 4) {
    v /= 1000;
    ++i;
  }
  return fmt::format("{:.3g} {}{}", v, prefixes[i], unit);
}

std::string Percent(double fraction) { return fmt::format("{:.1f}%", 100 * fraction); }

void PrintSummary(const json& out) {
  const json& lim = out["limits"];
  fmt::print("\nMachine limits (1 thread):\n");
  fmt::print(
      "  memory bandwidth, {} MiB arrays: read {:.1f} GB/s, copy {:.1f} GB/s, "
      "triad {:.1f} GB/s\n",
      lim["memory_bandwidth"]["array_bytes"].get<int64_t>() >> 20,
      lim["memory_bandwidth"]["read_gb_s"].get<double>(),
      lim["memory_bandwidth"]["copy_gb_s"].get<double>(),
      lim["memory_bandwidth"]["triad_gb_s"].get<double>());
  fmt::print("  in cache, {} KiB arrays: read {:.1f} GB/s, triad {:.1f} GB/s\n",
             lim["cached_bandwidth"]["array_bytes"].get<int64_t>() >> 10,
             lim["cached_bandwidth"]["read_gb_s"].get<double>(),
             lim["cached_bandwidth"]["triad_gb_s"].get<double>());
  std::string gemm;
  for (const json& g : lim["gemm"]) {
    gemm += fmt::format("{}{}: {:.1f}", gemm.empty() ? "" : ", ", g["n"].get<int>(),
                        g["gflops"].get<double>());
  }
  fmt::print("  float32 GEMM GFLOP/s (n x n): {}; peak {:.1f}\n", gemm,
             lim["gemm_peak_gflops"].get<double>());
  std::string shape;
  for (const json& p : lim["gemm_engine_shape"]["points"]) {
    shape += fmt::format("{}{}: {:.1f}", shape.empty() ? "" : ", ", p["rows"].get<int>(),
                         p["gflops"].get<double>());
  }
  fmt::print("  x W^T with W [{} x {}] warm in cache, GFLOP/s by rows of x: {}\n",
             lim["gemm_engine_shape"]["out"].get<int64_t>(),
             lim["gemm_engine_shape"]["in"].get<int64_t>(), shape);

  fmt::print("\n{:<20} {:>7} {:>8} {:>10} {:>10} {:>9} {:>8} {:>10} {:>10} {:>8}\n", "model",
             "params", "weights", "prefill/s", "gen b=1/s", "b=1 GB/s", "of limit", "gen b=32/s",
             "b=32 GF/s", "of peak");
  for (const json& m : out["models"]) {
    const json& d1 = m["decode_batch1"];
    const json& db = m["decode_batch"];
    fmt::print("{:<20} {:>7} {:>8} {:>10.0f} {:>10.1f} {:>9.1f} {:>8} {:>10.1f} {:>10.1f} {:>8}\n",
               m["name"].get<std::string>(), Si(m["parameters"].get<double>(), ""),
               Si(m["weight_bytes_read_per_token"].get<double>(), "B"),
               m["prefill"]["tokens_per_s"].get<double>(), d1["tokens_per_s"].get<double>(),
               d1["achieved_bytes_per_s"].get<double>() / kGiga,
               Percent(d1["fraction_of_reference_bandwidth"].get<double>()),
               db["tokens_per_s"].get<double>(), db["achieved_flops_per_s"].get<double>() / kGiga,
               Percent(db["fraction_of_gemm_peak"].get<double>()));
  }
  fmt::print(
      "\n  b=1 GB/s: weight + KV-cache bytes read per token x tokens/s; \"of limit\": of the "
      "measured memory read\n  bandwidth, or of the L2 read bandwidth when the weights fit "
      "in L2. b=32 GF/s: (2 x matrix parameters\n  + attention) x 32 FLOPs per step x "
      "steps/s; \"of peak\": of the best square GEMM.\n\n");
  fmt::print("{:<20} {:>10} {:>12} {:>10} {:>10} {:>12} {:>10}  {}\n", "per step (us)", "b=1",
             "b=1 matmuls", "b=1 rest", "b=32", "b=32 matmuls", "b=32 rest",
             "limited by (b=1 / b=32)");
  for (const json& m : out["models"]) {
    const json& d1 = m["decode_batch1"];
    const json& db = m["decode_batch"];
    fmt::print(
        "{:<20} {:>10.0f} {:>12.0f} {:>10.0f} {:>10.0f} {:>12.0f} {:>10.0f}  {} / {}\n",
        m["name"].get<std::string>(), d1["step_us"].get<double>(),
        d1["matrix_floor_step_us"].get<double>(), d1["outside_matrix_products_us"].get<double>(),
        db["step_us"].get<double>(), db["matrix_floor_step_us"].get<double>(),
        db["outside_matrix_products_us"].get<double>(),
        m["limited_by"]["batch1"].get<std::string>(), m["limited_by"]["batch"].get<std::string>());
  }
  fmt::print(
      "  matmuls: the step's matrix products alone (same shapes and ATen calls, random "
      "matrices); rest: everything else.\n");
  if (out.contains("engine_load")) {
    const json& e = out["engine_load"];
    fmt::print(
        "\nEngine under load ({} requests in flight, {} s, max_tokens {}): {:.0f} tokens/s, "
        "{:.1f} requests/s, TTFT median {:.0f} ms / p90 {:.0f} ms, {} requests, {} errors\n",
        e["clients"].get<int>(), e["duration_s"].get<double>(), e["max_tokens"].get<int>(),
        e["tokens_per_s"].get<double>(), e["requests_per_s"].get<double>(),
        e["ttft_ms"]["median"].get<double>(), e["ttft_ms"]["p90"].get<double>(),
        e["requests"].get<int64_t>(), e["errors"].get<int64_t>());
  }
}

// --- Main -------------------------------------------------------------------------------------

struct Flags {
  std::string data_dir;
  std::string out = "bench/work/engine_results.json";
  std::vector<std::string> models = {"stories260K", "llama-2-tiny-random", "synthetic"};
  int64_t stream_mib = 512;
  std::vector<int> gemm_sizes = {512, 1024, 2048};
  int reps = 5;
  int prompt_tokens = 128;
  int synthetic_layers = 12;
  int synthetic_hidden = 1024;
  int synthetic_ffn = 2816;
  int synthetic_heads = 16;
  int synthetic_kv_heads = 4;
  int synthetic_vocab = 32000;
  double load_seconds = 15;
  int load_clients = 64;
  int load_max_tokens = 128;
  bool quick = false;
  int cpu_busy_before = -1;  // percent, as the calling script measured it; -1 = not given
};

engine::ModelConfig SyntheticConfig(const Flags& f) {
  engine::ModelConfig c;
  c.architecture = "llama";
  c.vocab_size = f.synthetic_vocab;
  c.hidden_size = f.synthetic_hidden;
  c.n_layers = f.synthetic_layers;
  c.n_heads = f.synthetic_heads;
  c.n_kv_heads = f.synthetic_kv_heads;
  c.head_dim = f.synthetic_heads > 0 ? f.synthetic_hidden / f.synthetic_heads : 0;
  c.ffn_size = f.synthetic_ffn;
  c.context_length = 2048;
  c.rope_dim = c.head_dim;
  c.rope_style = engine::RopeStyle::kHalfSplit;
  return c;
}

int Run(Flags& f) {
  if (f.quick) {  // a smoke test of every path in seconds, numbers meaningless
    f.stream_mib = 16;
    f.gemm_sizes = {128, 256};
    f.reps = 2;
    f.prompt_tokens = 32;
    f.synthetic_layers = 2;
    f.synthetic_hidden = 256;
    f.synthetic_ffn = 512;
    f.synthetic_heads = 4;
    f.synthetic_kv_heads = 2;
    f.synthetic_vocab = 1000;
    f.load_seconds = std::min(f.load_seconds, 1.0);
  }
  if (f.data_dir.empty()) {
    auto env = Env::Default()->GetVar("BREAKFIX_TEST_DATA");
    if (env) f.data_dir = *env;
  }
  const auto wants = [&](const std::string& m) {
    return std::find(f.models.begin(), f.models.end(), m) != f.models.end();
  };
  for (const std::string& m : f.models) {
    if (m != "stories260K" && m != "llama-2-tiny-random" && m != "synthetic" && m != "none") {
      fmt::print(stderr,
                 "engine_bench: --models: unknown model \"{}\" (expected stories260K, "
                 "llama-2-tiny-random, synthetic, or none)\n",
                 m);
      return 2;
    }
  }
  const std::string stories = f.data_dir + "/" + kStoriesFile;
  const std::string tiny = f.data_dir + "/" + kTinyRandomFile;
  const bool needs_data =
      wants("stories260K") || wants("llama-2-tiny-random") || f.load_seconds > 0;
  if (needs_data) {
    if (f.data_dir.empty()) {
      fmt::print(stderr,
                 "engine_bench: no data directory: pass --data or set "
                 "BREAKFIX_TEST_DATA (the shared data, ../shared/data)\n");
      return 2;
    }
    for (const std::string& p : {stories, tiny}) {
      if (!std::filesystem::is_regular_file(p)) {
        fmt::print(stderr, "engine_bench: model file missing: {} (expected under --data {})\n", p,
                   f.data_dir);
        return 2;
      }
    }
  }
  UseOneThread();
  json out;
  out["machine"] = MachineJson();
  if (f.cpu_busy_before >= 0) out["machine"]["cpu_busy_percent_before"] = f.cpu_busy_before;
  out["date_utc"] = [] {
    const std::time_t now = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    return std::string(buf);
  }();
  out["breakfix_version"] = BREAKFIX_VERSION;
  out["torch_version"] = TORCH_VERSION;
  const int64_t l2 = out["machine"]["l2_bytes"].get<int64_t>();

  Limits limits;
  fmt::print(stderr, "engine_bench: memory bandwidth ({} MiB arrays)...\n", f.stream_mib);
  auto bw = MeasureBandwidth(f.stream_mib << 20, f.reps);
  if (!bw.ok()) {
    fmt::print(stderr, "engine_bench: {}\n", bw.status().ToString());
    return 1;
  }
  limits.bandwidth = *bw;
  // Arrays of a quarter of L2 each: the same kernels served from the caches, for contrast.
  const int64_t cached_bytes = std::max<int64_t>(l2 > 0 ? l2 / 4 : 256 << 10, 16 << 10);
  auto cached = MeasureBandwidth(cached_bytes, f.reps);
  if (!cached.ok()) {
    fmt::print(stderr, "engine_bench: {}\n", cached.status().ToString());
    return 1;
  }
  limits.cached = *cached;
  fmt::print(stderr, "engine_bench: GEMM...\n");
  limits.gemm = MeasureGemm(f.gemm_sizes, f.reps);
  json gemm = json::array();
  for (const GemmPoint& g : limits.gemm) {
    limits.gemm_peak = std::max(limits.gemm_peak, g.flops);
    gemm.push_back({{"n", g.n}, {"gflops", g.flops / kGiga}});
  }
  // The synthetic model's gate/up matrix [2F, H].
  fmt::print(stderr, "engine_bench: GEMM at the engine's shapes...\n");
  const json shape_gemm = MeasureEngineShapeGemm(2 * int64_t{f.synthetic_ffn}, f.synthetic_hidden,
                                                 {1, 8, 32, 64, 128}, std::min(f.reps, 3));
  out["limits"] = {
      {"memory_bandwidth", BandwidthJson(limits.bandwidth)}, {"gemm_engine_shape", shape_gemm},
      {"cached_bandwidth", BandwidthJson(limits.cached)},    {"gemm", gemm},
      {"gemm_peak_gflops", limits.gemm_peak / kGiga},        {"roofline_bandwidth", "read"}};

  out["models"] = json::array();
  auto measure = [&](const std::string& name, const std::string& source,
                     const engine::WeightSource& weights, RunPlan plan) -> bool {
    fmt::print(stderr, "engine_bench: {}...\n", name);
    auto r = MeasureModel(name, source, weights, plan);
    if (!r.ok()) {
      fmt::print(stderr, "engine_bench: {}: {}\n", name, r.status().ToString());
      return false;
    }
    out["models"].push_back(Analyze(*r, limits, l2));
    return true;
  };
  RunPlan small;  // models of well under a million parameters: many cheap steps
  small.prompt_tokens = f.prompt_tokens;
  // Batch slots decode from position 64 to 192, about where the load test's chat requests
  // (prompts of about 70 tokens, 128 new tokens) spend their steps, since attention's cost grows
  // with the position and weighs heavily in these tiny models.
  small.batch_prompt_tokens = 64;
  small.reps = f.reps;
  if (f.quick) {
    small.decode_steps = 16;
    small.batch_steps = 8;
  }
  for (const auto& [name, path] : {std::pair{std::string("stories260K"), stories},
                                   std::pair{std::string("llama-2-tiny-random"), tiny}}) {
    if (!wants(name)) continue;
    auto weights = engine::OpenWeights(path);
    if (!weights.ok()) {
      fmt::print(stderr, "engine_bench: {}\n", weights.status().ToString());
      return 1;
    }
    if (!measure(name, path, **weights, small)) return 1;
  }
  if (wants("synthetic")) {
    SyntheticWeights weights(SyntheticConfig(f));
    RunPlan big;  // a step takes tens of milliseconds: fewer of them
    big.prompt_tokens = f.prompt_tokens;
    big.decode_steps = f.quick ? 8 : 32;
    big.batch_steps = f.quick ? 4 : 12;
    big.reps = std::min(f.reps, 3);
    big.min_sample_seconds = 0;
    const engine::ModelConfig& c = weights.config();
    const std::string source = fmt::format(
        "synthetic random llama: hidden {}, {} layers, {} heads ({} kv), ffn {}, vocab {}",
        c.hidden_size, c.n_layers, c.n_heads, c.n_kv_heads, c.ffn_size, c.vocab_size);
    if (!measure("synthetic", source, weights, big)) return 1;
  }

  if (f.load_seconds > 0) {
    LoadSettings settings;
    settings.clients = f.load_clients;
    settings.seconds = f.load_seconds;
    settings.max_tokens = f.load_max_tokens;
    fmt::print(stderr, "engine_bench: Engine load on stories260K ({} clients, {} s)...\n",
               settings.clients, settings.seconds);
    auto load = RunEngineLoad(stories, settings);
    if (!load.ok()) {
      fmt::print(stderr, "engine_bench: engine load: {}\n", load.status().ToString());
      return 1;
    }
    out["engine_load"] = *load;
  }
  const int64_t load_errors =
      out.contains("engine_load") ? out["engine_load"]["errors"].get<int64_t>() : 0;

  PrintSummary(out);
  const std::filesystem::path out_path(f.out);
  if (out_path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(out_path.parent_path(), ec);
  }
  Status written = Env::Default()->WriteFileAtomic(f.out, out.dump(2) + "\n");
  if (!written.ok()) {
    fmt::print(stderr, "engine_bench: {}\n", written.ToString());
    return 1;
  }
  fmt::print("\nwrote {}\n", f.out);
  if (load_errors > 0) {
    fmt::print(stderr, "engine_bench: {} load-test request(s) failed; first: {}\n", load_errors,
               out["engine_load"]["first_error"].get<std::string>());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace breakfix::bench

int main(int argc, char** argv) {
  breakfix::bench::Flags f;
  CLI::App app{"engine_bench: the in-process engine's speed against this machine's limits"};
  app.add_option("--data", f.data_dir, "Shared data folder (default: $BREAKFIX_TEST_DATA)");
  app.add_option("--out", f.out, "JSON results file")->capture_default_str();
  app.add_option("--models", f.models,
                 "Any of: stories260K llama-2-tiny-random synthetic; none = only the machine's "
                 "limits and the Engine load test")
      ->delimiter(',');
  app.add_option("--stream-mib", f.stream_mib, "MiB per memory-bandwidth array")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  app.add_option("--gemm-sizes", f.gemm_sizes, "Square GEMM sizes")
      ->delimiter(',')
      ->check(CLI::Range(16, 8192));
  app.add_option("--reps", f.reps, "Samples per measurement")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--prompt-tokens", f.prompt_tokens, "Prompt length of the prefill measurement")
      ->check(CLI::Range(2, 1024))
      ->capture_default_str();
  app.add_option("--synthetic-layers", f.synthetic_layers)
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--synthetic-hidden", f.synthetic_hidden)
      ->check(CLI::Range(8, 16384))
      ->capture_default_str();
  app.add_option("--synthetic-ffn", f.synthetic_ffn)
      ->check(CLI::Range(8, 65536))
      ->capture_default_str();
  app.add_option("--synthetic-heads", f.synthetic_heads)
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--synthetic-kv-heads", f.synthetic_kv_heads)
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--synthetic-vocab", f.synthetic_vocab)
      ->check(CLI::Range(2, 1 << 20))
      ->capture_default_str();
  app.add_option("--load-seconds", f.load_seconds,
                 "Duration of the Engine load test on stories260K (0 = skip it)")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--load-clients", f.load_clients, "Requests in flight in the Engine load test")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--load-max-tokens", f.load_max_tokens, "max_tokens of each load-test request")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--cpu-busy-before", f.cpu_busy_before,
                 "Recorded as is: how busy (percent) other work kept the CPUs before the run");
  app.add_flag("--quick", f.quick, "Tiny sizes: check that every path runs (numbers meaningless)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (f.synthetic_hidden % f.synthetic_heads != 0 ||
      f.synthetic_heads % f.synthetic_kv_heads != 0) {
    fmt::print(stderr,
               "engine_bench: --synthetic-hidden {} must be a multiple of "
               "--synthetic-heads {}, which must be a multiple of --synthetic-kv-heads {}\n",
               f.synthetic_hidden, f.synthetic_heads, f.synthetic_kv_heads);
    return 2;
  }
  try {
    return breakfix::bench::Run(f);
  } catch (const std::exception& e) {  // libtorch reports allocation and shape errors this way
    fmt::print(stderr, "engine_bench: {}\n", e.what());
    return 1;
  }
}
