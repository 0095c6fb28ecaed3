// Cycle YAML files (format in docs/cycle.md). Every key is checked: an unknown key or a value of
// the wrong type is an error naming file:line:column, so a typo never silently falls back to a
// default.
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "breakfix/cycle.h"
#include "dataset/yaml_reader.h"

namespace breakfix {
namespace {

namespace fs = std::filesystem;

using Reader = dataset::YamlReader;

Status ParseTrain(const Reader& r, const YAML::Node& t, TrainOptions* o) {
  BF_RETURN_IF_ERROR(r.Keys(
      t, "train",
      {"method", "beta", "learning_rate", "min_lr_ratio", "warmup_steps", "epochs", "max_steps",
       "batch_size", "grad_accum", "weight_decay", "max_grad_norm", "max_seq_len", "seed",
       "group_by_length", "checkpoint_every", "threads", "device", "bf16", "lora"}));
  std::string method = TrainMethodName(o->method);
  BF_RETURN_IF_ERROR(r.Get(t, "method", &method, "dpo or ipo"));
  Result<TrainMethod> m = ParseTrainMethod(method);
  if (!m.ok() || *m == TrainMethod::kSft) {
    return r.At(t["method"], "method: expected dpo or ipo (a cycle trains on preference pairs)");
  }
  o->method = *m;
  BF_RETURN_IF_ERROR(r.Get(t, "beta", &o->beta, "a number"));
  BF_RETURN_IF_ERROR(r.Positive(t, "beta", o->beta, false));
  BF_RETURN_IF_ERROR(r.Get(t, "learning_rate", &o->learning_rate, "a number"));
  BF_RETURN_IF_ERROR(r.Positive(t, "learning_rate", o->learning_rate, false));
  BF_RETURN_IF_ERROR(r.Get(t, "min_lr_ratio", &o->min_lr_ratio, "a number"));
  BF_RETURN_IF_ERROR(r.Get(t, "warmup_steps", &o->warmup_steps, "an integer"));
  BF_RETURN_IF_ERROR(r.Get(t, "epochs", &o->epochs, "an integer"));
  BF_RETURN_IF_ERROR(r.Positive(t, "epochs", o->epochs, false));
  BF_RETURN_IF_ERROR(r.Get(t, "max_steps", &o->max_steps, "an integer"));
  BF_RETURN_IF_ERROR(r.Get(t, "batch_size", &o->batch_size, "an integer"));
  BF_RETURN_IF_ERROR(r.Positive(t, "batch_size", o->batch_size, false));
  BF_RETURN_IF_ERROR(r.Get(t, "grad_accum", &o->grad_accum, "an integer"));
  BF_RETURN_IF_ERROR(r.Positive(t, "grad_accum", o->grad_accum, false));
  BF_RETURN_IF_ERROR(r.Get(t, "weight_decay", &o->weight_decay, "a number"));
  BF_RETURN_IF_ERROR(r.Get(t, "max_grad_norm", &o->max_grad_norm, "a number"));
  BF_RETURN_IF_ERROR(r.Get(t, "max_seq_len", &o->max_seq_len, "an integer"));
  BF_RETURN_IF_ERROR(r.Positive(t, "max_seq_len", o->max_seq_len, false));
  BF_RETURN_IF_ERROR(r.Get(t, "seed", &o->seed, "an unsigned integer"));
  BF_RETURN_IF_ERROR(r.Get(t, "group_by_length", &o->group_by_length, "true or false"));
  BF_RETURN_IF_ERROR(r.Get(t, "checkpoint_every", &o->checkpoint_every, "an integer"));
  BF_RETURN_IF_ERROR(r.Get(t, "threads", &o->threads, "an integer"));
  BF_RETURN_IF_ERROR(r.Positive(t, "threads", o->threads, false));
  BF_RETURN_IF_ERROR(r.Get(t, "device", &o->device, "a device name"));
  BF_RETURN_IF_ERROR(r.Get(t, "bf16", &o->bf16, "true or false"));
  if (const YAML::Node l = t["lora"]) {
    BF_RETURN_IF_ERROR(r.Keys(l, "train.lora", {"rank", "alpha", "targets", "dropout"}));
    BF_RETURN_IF_ERROR(r.Get(l, "rank", &o->lora.rank, "an integer"));
    BF_RETURN_IF_ERROR(r.Positive(l, "rank", o->lora.rank, true));
    BF_RETURN_IF_ERROR(r.Get(l, "alpha", &o->lora.alpha, "a number"));
    BF_RETURN_IF_ERROR(r.Strings(l, "targets", &o->lora.targets));
    BF_RETURN_IF_ERROR(r.Get(l, "dropout", &o->lora.dropout, "a number"));
  }
  return Status::OK();
}

Status ParseCurate(const Reader& r, const YAML::Node& n, const std::string& base, Env* env,
                   CurateOptions* o) {
  BF_RETURN_IF_ERROR(
      r.Keys(n, "curate",
             {"dedup", "dedup_threshold", "dedup_ngram", "min_help_words", "refusal_ok_families",
              "refusal_ok_categories", "over_refusal_min_share", "over_refusal_max_share",
              "max_tokens", "max_in_flight", "policy_file"}));
  BF_RETURN_IF_ERROR(r.Get(n, "dedup", &o->dedup, "true or false"));
  BF_RETURN_IF_ERROR(r.Get(n, "dedup_threshold", &o->dedup_threshold, "a number in (0, 1]"));
  if (o->dedup_threshold <= 0 || o->dedup_threshold > 1) {
    return r.At(n["dedup_threshold"], "dedup_threshold must be in (0, 1]");
  }
  BF_RETURN_IF_ERROR(r.Get(n, "dedup_ngram", &o->dedup_ngram, "an integer"));
  BF_RETURN_IF_ERROR(r.Get(n, "min_help_words", &o->min_help_words, "an integer"));
  BF_RETURN_IF_ERROR(r.Strings(n, "refusal_ok_families", &o->refusal_ok_families));
  BF_RETURN_IF_ERROR(r.Strings(n, "refusal_ok_categories", &o->refusal_ok_categories));
  BF_RETURN_IF_ERROR(r.Get(n, "over_refusal_min_share", &o->over_refusal_min_share, "a number"));
  BF_RETURN_IF_ERROR(r.Get(n, "over_refusal_max_share", &o->over_refusal_max_share, "a number"));
  BF_RETURN_IF_ERROR(r.Get(n, "max_tokens", &o->fixer_sampling.max_tokens, "an integer"));
  BF_RETURN_IF_ERROR(r.Get(n, "max_in_flight", &o->max_in_flight, "an integer"));
  std::string policy_file;
  BF_RETURN_IF_ERROR(r.Get(n, "policy_file", &policy_file, "a file path"));
  if (!policy_file.empty()) {
    const std::string path = dataset::ResolvePath(base, policy_file);
    Result<std::string> text = env->ReadFile(path);
    if (!text.ok()) return r.At(n["policy_file"], "cannot read " + path);
    o->policy = *text;
  }
  return Status::OK();
}

}  // namespace

Result<CycleConfig> ParseCycleConfig(const std::string& yaml_text, const std::string& file) {
  Reader r(file);
  BF_ASSIGN_OR_RETURN(YAML::Node root, r.LoadMap(yaml_text));
  BF_RETURN_IF_ERROR(r.Keys(root, "the cycle file",
                            {"name", "out_dir", "rounds", "seed", "models", "measure", "roles",
                             "redteam", "judge_validation", "curate", "train"}));
  const std::string base = fs::path(file).parent_path().string();
  Env* env = Env::Default();
  CycleConfig c;
  BF_RETURN_IF_ERROR(r.Get(root, "name", &c.name, "a string"));
  if (c.name.empty()) return r.At(root, "name: required (names the cycle's runs)");
  std::string out_dir;
  BF_RETURN_IF_ERROR(r.Get(root, "out_dir", &out_dir, "a folder path"));
  c.out_dir = out_dir.empty() ? dataset::ResolvePath(base, "cycle-" + c.name)
                              : dataset::ResolvePath(base, out_dir);
  BF_RETURN_IF_ERROR(r.Get(root, "rounds", &c.rounds, "an integer"));
  if (c.rounds < 0) return r.At(root["rounds"], "rounds must be >= 0");
  BF_RETURN_IF_ERROR(r.Get(root, "seed", &c.seed, "an unsigned integer"));
  c.train.seed = c.seed;

  const YAML::Node models = root["models"];
  if (!models || !models.IsSequence() || models.size() == 0) {
    return r.At(models ? models : root, "models: expected a list of {name, path}");
  }
  for (const YAML::Node& m : models) {
    BF_RETURN_IF_ERROR(r.Keys(m, "a model", {"name", "path"}));
    CycleModel model;
    BF_RETURN_IF_ERROR(r.Get(m, "name", &model.name, "a string"));
    BF_RETURN_IF_ERROR(r.Get(m, "path", &model.path, "a path"));
    if (model.name.empty() || model.path.empty()) return r.At(m, "a model needs name and path");
    model.path = dataset::ResolvePath(base, model.path);
    c.models.push_back(std::move(model));
  }

  if (const YAML::Node m = root["measure"]) {
    BF_RETURN_IF_ERROR(
        r.Keys(m, "measure",
               {"suite", "families", "limit_per_family", "max_turns", "max_tokens", "temperature",
                "top_p", "max_in_flight", "over_refusal_suite", "over_refusal_judge"}));
    BF_RETURN_IF_ERROR(r.Get(m, "suite", &c.suite, "a suite name or file"));
    c.suite = dataset::ResolveSuitePath(base, c.suite);
    BF_RETURN_IF_ERROR(r.Strings(m, "families", &c.families));
    BF_RETURN_IF_ERROR(r.Get(m, "limit_per_family", &c.limit_per_family, "an integer"));
    BF_RETURN_IF_ERROR(r.Get(m, "max_turns", &c.max_turns, "an integer"));
    BF_RETURN_IF_ERROR(r.Get(m, "max_tokens", &c.target_sampling.max_tokens, "an integer"));
    BF_RETURN_IF_ERROR(r.Get(m, "temperature", &c.target_sampling.temperature, "a number"));
    if (c.target_sampling.temperature < 0) {
      return r.At(m["temperature"], "temperature must be >= 0 (0 = greedy)");
    }
    BF_RETURN_IF_ERROR(r.Get(m, "top_p", &c.target_sampling.top_p, "a number"));
    if (c.target_sampling.top_p <= 0 || c.target_sampling.top_p > 1) {
      return r.At(m["top_p"], "top_p must be in (0, 1]");
    }
    BF_RETURN_IF_ERROR(r.Get(m, "max_in_flight", &c.max_in_flight, "an integer"));
    BF_RETURN_IF_ERROR(r.Get(m, "over_refusal_suite", &c.over_refusal_suite, "a suite name"));
    c.over_refusal_suite = dataset::ResolveSuitePath(base, c.over_refusal_suite);
    BF_RETURN_IF_ERROR(r.Get(m, "over_refusal_judge", &c.over_refusal_judge, "a judge spec"));
  }
  if (const YAML::Node roles = root["roles"]) {
    BF_RETURN_IF_ERROR(r.Keys(roles, "roles", {"simulator", "judge", "fixer"}));
    BF_RETURN_IF_ERROR(r.Get(roles, "simulator", &c.simulator, "a model spec or self"));
    BF_RETURN_IF_ERROR(r.Get(roles, "judge", &c.judge, "a judge spec"));
    BF_RETURN_IF_ERROR(r.Get(roles, "fixer", &c.fixer, "a model spec or self"));
  }
  BF_RETURN_IF_ERROR(r.Get(root, "redteam", &c.redteam, "a campaign file"));
  if (!c.redteam.empty()) c.redteam = dataset::ResolvePath(base, c.redteam);
  BF_RETURN_IF_ERROR(
      r.Get(root, "judge_validation", &c.judge_validation, "a judge validation file"));
  if (!c.judge_validation.empty()) {
    c.judge_validation = dataset::ResolvePath(base, c.judge_validation);
    // Read it now, so a bad file stops the cycle before any work rather than at the report.
    BF_RETURN_IF_ERROR(ReadJudgeValidation(c.judge_validation).status());
  }
  c.simulator = dataset::ResolveSpecPath(base, c.simulator);
  c.judge = dataset::ResolveSpecPath(base, c.judge);
  c.fixer = dataset::ResolveSpecPath(base, c.fixer);
  c.over_refusal_judge = dataset::ResolveSpecPath(base, c.over_refusal_judge);
  if (const YAML::Node n = root["curate"]) {
    BF_RETURN_IF_ERROR(ParseCurate(r, n, base, env, &c.curate));
  }
  if (const YAML::Node t = root["train"]) BF_RETURN_IF_ERROR(ParseTrain(r, t, &c.train));
  return c;
}

Result<CycleConfig> LoadCycleConfig(const std::string& path, Env* env) {
  if (env == nullptr) env = Env::Default();
  Result<std::string> text = env->ReadFile(path);
  if (!text.ok()) return Status::InvalidArgument("cannot read cycle file " + path);
  return ParseCycleConfig(*text, path);
}

}  // namespace breakfix
