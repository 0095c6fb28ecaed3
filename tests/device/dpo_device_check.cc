// Checks the trainer on an accelerator against the CPU: a tiny model (a BPE tokenizer and random
// weights made here) is DPO-trained two steps on the CPU to get a policy that differs from its
// reference; then, on each device and precision (float32, bfloat16):
//   - the DPO loss, reward margin and per-pair log-probs of that policy against the reference,
//   - one DPO training step from the same start: its loss, gradient norm and resulting weights,
// are compared with the CPU in float32.
//
//   dpo_device_check [--device cuda] [--work DIR]
//
// Without the device it compares the CPU with itself in bfloat16 and says so. Exit status 0
// when float32 agrees within 1e-4 (loss) and bfloat16 within 5e-2, 1 otherwise.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "breakfix/train.h"
#include "engine/bpe_trainer.h"
#include "engine/model_weights.h"

namespace breakfix {
namespace {

std::vector<PreferencePair> Pairs() {
  const char* topics[] = {"the weather", "a recipe",  "a poem",  "the news",
                          "a story",     "a summary", "a lyric", "a plan"};
  std::vector<PreferencePair> pairs;
  for (int i = 0; i < 8; ++i) {
    PreferencePair p;
    p.id = "pair-" + std::to_string(i);
    p.prompt = {{Role::kUser, std::string("Please write ") + topics[i] + " with no rules."}};
    p.chosen = std::string("I can help with ") + topics[i] + " in a safe and careful way.";
    p.rejected = "Sure, rules are off, here is everything you asked for, no limits.";
    pairs.push_back(std::move(p));
  }
  return pairs;
}

Result<std::vector<float>> Weights(const std::string& model_dir, const std::string& name) {
  BF_ASSIGN_OR_RETURN(auto file, engine::SafetensorsFile::Open(model_dir + "/model.safetensors"));
  const engine::SafetensorsTensor* t = file->Find(name);
  if (t == nullptr) return Status::NotFound("no tensor " + name + " in " + model_dir);
  return file->ReadF32(*t);
}

double MaxDiff(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    worst = std::max(worst, std::fabs(a[i] - b[i]));
  }
  return a.size() == b.size() ? worst : INFINITY;
}

struct StepOutcome {
  double loss = 0, grad_norm = 0;
  std::string model;
};

Result<StepOutcome> OneStep(const TrainOptions& base, const std::string& device, bool bf16,
                            const std::string& out) {
  TrainOptions o = base;
  o.device = device;
  o.bf16 = bf16;
  o.output_dir = out;
  o.max_steps = 1;
  o.checkpoint_every = 0;
  TrainData data;
  data.pairs = Pairs();
  StepOutcome s;
  BF_ASSIGN_OR_RETURN(TrainResult r, Train(
                                         o, data,
                                         [&](const TrainProgress& p) {
                                           if (p.is_step) {
                                             s.loss = p.step.loss;
                                             s.grad_norm = p.step.grad_norm;
                                           }
                                         },
                                         nullptr));
  s.model = r.final_model;
  return s;
}

int Main(int argc, char** argv) {
  std::string device = "cuda";
  std::string work = "/tmp/breakfix-dpo-device-check";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--device") device = argv[i + 1];
    if (flag == "--work") work = argv[i + 1];
  }
  std::filesystem::remove_all(work);
  std::filesystem::create_directories(work);
  auto check = [](const Status& s, const char* what) {
    if (s.ok()) return true;
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    return false;
  };

  // A tokenizer and a random model, made here.
  std::vector<std::string> texts;
  for (const PreferencePair& p : Pairs()) {
    texts.push_back(p.prompt[0].content);
    texts.push_back(p.chosen);
    texts.push_back(p.rejected);
  }
  engine::BpeTrainOptions bpe;
  bpe.vocab_size = 512;
  bpe.min_frequency = 1;
  bpe.chat_template = "chatml";
  if (!check(engine::TrainBpeTokenizer(texts, bpe, work + "/tokenizer"), "tokenizer")) return 2;
  InitModelOptions init;
  init.shape.hidden_size = 64;
  init.shape.n_layers = 2;
  init.shape.n_heads = 4;
  init.shape.context_length = 256;
  init.tokenizer_dir = work + "/tokenizer";
  init.output_dir = work + "/base";
  init.seed = 3;
  if (!check(InitModel(init), "init")) return 2;

  TrainOptions base;
  base.method = TrainMethod::kDpo;
  base.beta = 0.1;
  base.learning_rate = 1e-3;
  base.batch_size = 8;
  base.base_model = work + "/base";
  base.seed = 5;
  {
    // Two CPU steps: a policy that differs from its reference.
    TrainOptions o = base;
    o.output_dir = work + "/policy";
    o.max_steps = 2;
    o.checkpoint_every = 0;
    TrainData data;
    data.pairs = Pairs();
    auto r = Train(o, data, {}, nullptr);
    if (!check(r.status(), "policy")) return 2;
  }

  {
    TrainOptions probe = base;
    probe.device = device;
    probe.base_model = work + "/base";
    auto r = EvaluatePreferenceLoss(probe, {Pairs()[0]});
    if (!r.ok()) {
      std::printf("device %s unavailable (%s); comparing the CPU with itself\n", device.c_str(),
                  r.status().ToString().c_str());
      device = "cpu";
    }
  }

  TrainOptions eval = base;
  eval.base_model = work + "/policy/final";
  eval.reference_model = work + "/base";
  auto reference = EvaluatePreferenceLoss(eval, Pairs());
  if (!check(reference.status(), "cpu loss")) return 2;
  auto cpu_step = OneStep(base, "cpu", false, work + "/step-cpu-f32");
  if (!check(cpu_step.status(), "cpu step")) return 2;
  // The trainer writes Hugging Face checkpoints.
  const std::string probe_tensor = "model.layers.0.self_attn.q_proj.weight";
  auto cpu_w = Weights(cpu_step->model, probe_tensor);

  std::printf(
      "DPO on 8 pairs, beta 0.1; CPU float32 loss %.6f, margin %.6f, step loss %.6f, "
      "grad norm %.6f\n",
      reference->loss, reference->reward_margin, cpu_step->loss, cpu_step->grad_norm);
  std::printf("%-6s %-9s %12s %12s %14s %12s %12s %14s\n", "device", "precision", "loss",
              "|d loss|", "max|d logp|", "step loss", "|d step|", "max|d weight|");
  bool all_ok = true;
  for (bool bf16 : {false, true}) {
    TrainOptions o = eval;
    o.device = device;
    o.bf16 = bf16;
    auto r = EvaluatePreferenceLoss(o, Pairs());
    auto step =
        OneStep(base, device, bf16, work + "/step-check-" + device + (bf16 ? "-bf16" : "-f32"));
    if (!r.ok() || !step.ok()) {
      std::printf("%-6s %-9s error: %s\n", device.c_str(), bf16 ? "bf16" : "float32",
                  (!r.ok() ? r.status() : step.status()).ToString().c_str());
      all_ok = false;
      continue;
    }
    const double dlogp = std::max(MaxDiff(r->policy_chosen, reference->policy_chosen),
                                  MaxDiff(r->policy_rejected, reference->policy_rejected));
    double dweight = INFINITY;
    auto w = Weights(step->model, probe_tensor);
    if (w.ok() && cpu_w.ok() && w->size() == cpu_w->size()) {
      dweight = 0;
      for (size_t i = 0; i < w->size(); ++i) {
        dweight = std::max(dweight, static_cast<double>(std::fabs((*w)[i] - (*cpu_w)[i])));
      }
    }
    const double dloss = std::fabs(r->loss - reference->loss);
    const double dstep = std::fabs(step->loss - cpu_step->loss);
    const double tolerance = bf16 ? 5e-2 : 1e-4;
    const bool ok = dloss <= tolerance && dstep <= tolerance;
    all_ok = all_ok && ok;
    std::printf("%-6s %-9s %12.6f %12.2e %14.2e %12.6f %12.2e %14.2e %s\n", device.c_str(),
                bf16 ? "bf16" : "float32", r->loss, dloss, dlogp, step->loss, dstep, dweight,
                ok ? "ok" : "MISMATCH");
  }
  std::printf("tolerance: loss within 1e-4 (float32), 5e-2 (bf16): %s\n", all_ok ? "PASS" : "FAIL");
  return all_ok ? 0 : 1;
}

}  // namespace
}  // namespace breakfix

int main(int argc, char** argv) { return breakfix::Main(argc, argv); }
