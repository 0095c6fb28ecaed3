// Train(), ScoreReplies() and EvaluatePreferenceLoss(): the training loop (AdamW, warmup +
// cosine schedule, clipping, gradient accumulation), DPO/IPO against cached reference
// log-probabilities, and checkpoints that resume bit for bit.
//
// Reproducibility: the data order of epoch e is a shuffle seeded by (seed, e); LoRA dropout of
// step s, micro-batch k is seeded by (seed, s, k); LoRA adapters start from (seed). Nothing else
// is random, so a checkpoint needs only the step number besides weights and AdamW moments.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <dlfcn.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <numbers>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "breakfix/env.h"
#include "breakfix/hash.h"
#include "breakfix/train.h"
#include "core/atomic_file.h"
#include "engine/model_weights.h"
#include "train/model.h"
#include "train/model_files.h"
#include "train/train_data.h"

namespace breakfix {
namespace train {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr char kStateFormat[] = "breakfix-train-state-1";
constexpr char kTrainerState[] = "trainer_state.json";
constexpr char kOptimizerState[] = "training_state.safetensors";
constexpr char kReferenceCache[] = "reference_logps.safetensors";
constexpr char kLogFile[] = "train_log.jsonl";
constexpr char kFinalDir[] = "final";
constexpr char kCheckpointPrefix[] = "checkpoint-";

// Intra-op threads for ATen and for the BLAS libtorch loaded (found at run time, as the engine
// does, so no BLAS is needed on the link line).
void UseThreads(int threads) {
  at::set_num_threads(threads);
  using SetThreadsFn = void (*)(int);
  static const auto openblas_set =
      reinterpret_cast<SetThreadsFn>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (openblas_set != nullptr) openblas_set(threads);
}

// A model on disk: weights, their format and the chat codec.
struct OpenedModel {
  std::string path;
  std::unique_ptr<engine::WeightSource> weights;
  ChatCodec codec;
};

Result<OpenedModel> OpenModel(const std::string& path, const std::string& chat_template) {
  if (path.empty()) return Status::InvalidArgument("no model path given");
  OpenedModel m;
  m.path = path;
  auto weights = engine::OpenWeights(path);
  if (!weights.ok()) return weights.status();
  m.weights = std::move(weights).value();
  const engine::ModelConfig& c = m.weights->config();
  BF_ASSIGN_OR_RETURN(m.codec, LoadChatCodec(path, chat_template, c.architecture, c.vocab_size));
  return m;
}

Status CheckOptions(const TrainOptions& o) {
  auto fail = [](const std::string& field, const std::string& what) {
    return Status::InvalidArgument("train option " + field + " " + what);
  };
  if (o.base_model.empty()) return fail("base_model", "is empty; name a model directory or GGUF");
  if (o.output_dir.empty()) return fail("output_dir", "is empty");
  if (!(o.learning_rate > 0)) return fail("learning_rate", "must be positive");
  if (!(o.min_lr_ratio >= 0 && o.min_lr_ratio <= 1))
    return fail("min_lr_ratio", "must be in [0, 1]");
  if (o.warmup_steps < 0) return fail("warmup_steps", "must be >= 0");
  if (o.epochs < 1) return fail("epochs", "must be >= 1");
  if (o.max_steps < 0) return fail("max_steps", "must be >= 0 (0 = epochs decide)");
  if (o.batch_size < 1) return fail("batch_size", "must be >= 1");
  if (o.grad_accum < 1) return fail("grad_accum", "must be >= 1");
  if (!(o.weight_decay >= 0)) return fail("weight_decay", "must be >= 0");
  if (!(o.adam_beta1 >= 0 && o.adam_beta1 < 1)) return fail("adam_beta1", "must be in [0, 1)");
  if (!(o.adam_beta2 >= 0 && o.adam_beta2 < 1)) return fail("adam_beta2", "must be in [0, 1)");
  if (!(o.adam_eps > 0)) return fail("adam_eps", "must be positive");
  if (!(o.max_grad_norm >= 0)) return fail("max_grad_norm", "must be >= 0 (0 = off)");
  if (o.method != TrainMethod::kSft && !(o.beta > 0)) return fail("beta", "must be positive");
  if (o.max_seq_len < 2) return fail("max_seq_len", "must be >= 2");
  if (o.checkpoint_every < 0) return fail("checkpoint_every", "must be >= 0 (0 = final only)");
  if (o.threads < 1 || o.threads > 1024) return fail("threads", "must be in 1..1024");
  if (o.halt_after_step < 0) return fail("halt_after_step", "must be >= 0");
  if (o.method == TrainMethod::kSft && !o.reference_model.empty()) {
    return fail("reference_model", "is only used by dpo and ipo");
  }
  return Status::OK();
}

double LearningRate(const TrainOptions& o, int64_t step_index, int64_t total_steps) {
  if (o.warmup_steps > 0 && step_index < o.warmup_steps) {
    return o.learning_rate * static_cast<double>(step_index + 1) / o.warmup_steps;
  }
  const int64_t decay_steps = total_steps - o.warmup_steps;
  if (decay_steps <= 0) return o.learning_rate;
  const double progress = static_cast<double>(step_index - o.warmup_steps) / decay_steps;
  const double cosine = 0.5 * (1 + std::cos(std::numbers::pi * progress));
  return o.learning_rate * (o.min_lr_ratio + (1 - o.min_lr_ratio) * cosine);
}

std::vector<const TokenSequence*> Pointers(const std::vector<TokenSequence>& s) {
  std::vector<const TokenSequence*> out;
  for (const TokenSequence& t : s) out.push_back(&t);
  return out;
}

// Summed target log-probs per sequence, in micro-batches, without gradients: [n] float64 CPU.
at::Tensor SequenceLogProbs(TrainModel& model, const std::vector<const TokenSequence*>& seqs,
                            int batch_size) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> parts;
  for (size_t begin = 0; begin < seqs.size(); begin += batch_size) {
    const size_t end = std::min(seqs.size(), begin + batch_size);
    std::vector<const TokenSequence*> chunk(seqs.begin() + begin, seqs.begin() + end);
    const Batch batch = MakeBatch(chunk, model.setup().device, model.setup().dtype);
    parts.push_back(model.TargetLogProbs(batch, false, 0).sum(1).to(at::kCPU, at::kDouble));
  }
  return at::cat(parts);
}

// Policy log-probs of a micro-batch of pairs, chosen and rejected in one forward pass: the
// training path, also used for evaluation (under no_grad).
std::pair<at::Tensor, at::Tensor> PairLogProbs(TrainModel& model,
                                               const std::vector<PairSequences>& pairs,
                                               const std::vector<int64_t>& indices, bool train,
                                               uint64_t dropout_seed, int64_t* tokens) {
  std::vector<const TokenSequence*> seqs;
  for (int64_t i : indices) seqs.push_back(&pairs[i].chosen);
  for (int64_t i : indices) seqs.push_back(&pairs[i].rejected);
  const Batch batch = MakeBatch(seqs, model.setup().device, model.setup().dtype);
  if (tokens != nullptr) *tokens += batch.tokens;
  const at::Tensor sums = model.TargetLogProbs(batch, train, dropout_seed).sum(1);
  const int64_t n = static_cast<int64_t>(indices.size());
  return {sums.narrow(0, 0, n), sums.narrow(0, n, n)};
}

// Reference log-probs of every pair (float32 values, as cached), chosen and rejected.
struct ReferenceLogProbs {
  std::vector<float> chosen, rejected;
};

Result<ReferenceLogProbs> ComputeReference(TrainModel& model,
                                           const std::vector<PairSequences>& pairs,
                                           int batch_size) {
  ReferenceLogProbs ref;
  at::NoGradGuard no_grad;
  for (size_t begin = 0; begin < pairs.size(); begin += batch_size) {
    std::vector<int64_t> idx;
    for (size_t i = begin; i < std::min(pairs.size(), begin + batch_size); ++i) idx.push_back(i);
    auto [c, r] = PairLogProbs(model, pairs, idx, false, 0, nullptr);
    at::Tensor cf = c.to(at::kCPU, at::kFloat).contiguous();
    at::Tensor rf = r.to(at::kCPU, at::kFloat).contiguous();
    ref.chosen.insert(ref.chosen.end(), cf.data_ptr<float>(), cf.data_ptr<float>() + cf.numel());
    ref.rejected.insert(ref.rejected.end(), rf.data_ptr<float>(),
                        rf.data_ptr<float>() + rf.numel());
  }
  return ref;
}

Result<std::map<std::string, engine::FloatTensor>> ReadSafetensors(const std::string& path) {
  BF_ASSIGN_OR_RETURN(auto file, engine::SafetensorsFile::Open(path));
  std::map<std::string, engine::FloatTensor> out;
  for (const engine::SafetensorsTensor& t : file->tensors()) {
    engine::FloatTensor f;
    f.shape = t.shape;
    BF_ASSIGN_OR_RETURN(f.data, file->ReadF32(t));
    out[t.name] = std::move(f);
  }
  return out;
}

Result<Json> ReadJsonFile(const std::string& path) {
  BF_ASSIGN_OR_RETURN(std::string text, Env::Default()->ReadFile(path));
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    return Status::Corruption(path + ": not valid JSON: " + e.what());
  }
}

Status WriteJsonFile(const std::string& path, const Json& j) {
  BF_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path));
  file->Write(j.dump(2));
  file->Write("\n");
  return file->Commit();
}

// The newest checkpoint-<step> directory with a trainer state; 0 when none.
int64_t LatestCheckpoint(const std::string& output_dir) {
  int64_t best = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(output_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kCheckpointPrefix, 0) != 0) continue;
    const std::string digits = name.substr(std::char_traits<char>::length(kCheckpointPrefix));
    if (digits.empty() || digits.size() > 15 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    if (!fs::is_regular_file(entry.path() / kTrainerState, ec)) continue;
    best = std::max<int64_t>(best, std::stoll(digits));
  }
  return best;
}

std::string CheckpointName(int64_t step) { return kCheckpointPrefix + std::to_string(step); }

// The trainer: one run of Train().
class Trainer {
 public:
  Trainer(const TrainOptions& options, const TrainProgressFn& progress,
          const std::atomic<bool>* stop)
      : o_(options), progress_(progress), stop_(stop) {}

  Result<TrainResult> Run(const TrainData& data);

 private:
  void Note(const std::string& text) {
    if (!progress_) return;
    TrainProgress p;
    p.note = text;
    progress_(p);
  }
  Status Prepare(const TrainData& data);
  Json Fingerprint() const;
  Status CheckSameRun(const Json& state, const std::string& where) const;
  Status LoadReference();
  Status Resume(int64_t step);
  Status PrepareLog(int64_t keep_up_to);
  Result<TrainStepLog> Step(int64_t step_index);
  Status AppendLog(const TrainStepLog& log);
  Status WriteCheckpoint(const std::string& name, int64_t step, bool finished);
  Result<std::unique_ptr<TrainModel>> LoadModel(const engine::WeightSource& weights);

  const TrainOptions o_;
  const TrainProgressFn& progress_;
  const std::atomic<bool>* stop_;

  OpenedModel base_;
  std::string reference_hash_;
  at::Device device_ = at::kCPU;
  int max_seq_len_ = 0;
  std::vector<TokenSequence> sft_;
  std::vector<PairSequences> pairs_;
  std::string data_fingerprint_;
  int truncated_ = 0;
  int64_t examples_ = 0;
  int64_t steps_per_epoch_ = 0;
  int64_t total_steps_ = 0;
  std::unique_ptr<TrainModel> model_;
  std::vector<at::Tensor> adam_m_, adam_v_;
  ReferenceLogProbs reference_;
  int64_t cached_epoch_ = -1;
  std::vector<int64_t> order_;
  std::vector<int64_t> lengths_;  // padded length of each example or pair (group_by_length)
};

Status Trainer::Prepare(const TrainData& data) {
  BF_RETURN_IF_ERROR(CheckOptions(o_));
  BF_ASSIGN_OR_RETURN(device_, ParseDevice(o_.device));
  // Checked before the slow work, so a bad target fails at once.
  BF_RETURN_IF_ERROR(CheckLora(o_.lora));
  auto base = OpenModel(o_.base_model, o_.chat_template);
  if (!base.ok()) return base.status().WithContext("base model");
  base_ = std::move(base).value();
  const engine::ModelConfig& c = base_.weights->config();
  max_seq_len_ = std::min(o_.max_seq_len, c.context_length);

  if (o_.method == TrainMethod::kSft) {
    if (!data.pairs.empty()) {
      return Status::InvalidArgument(
          "sft trains on chat examples, but preference pairs were given");
    }
    BF_ASSIGN_OR_RETURN(sft_, EncodeSftData(base_.codec, data.examples, max_seq_len_));
    for (const TokenSequence& s : sft_) truncated_ += s.dropped > 0;
    data_fingerprint_ = FingerprintSequences(Pointers(sft_));
    examples_ = static_cast<int64_t>(sft_.size());
  } else {
    if (!data.examples.empty()) {
      return Status::InvalidArgument(std::string(TrainMethodName(o_.method)) +
                                     " trains on preference pairs, but chat examples were given");
    }
    BF_ASSIGN_OR_RETURN(pairs_, EncodePairData(base_.codec, data.pairs, max_seq_len_));
    std::vector<const TokenSequence*> all;
    for (const PairSequences& p : pairs_) {
      all.push_back(&p.chosen);
      all.push_back(&p.rejected);
      truncated_ += (p.chosen.dropped > 0) + (p.rejected.dropped > 0);
    }
    data_fingerprint_ = FingerprintSequences(all);
    examples_ = static_cast<int64_t>(pairs_.size());
  }
  if (truncated_ > 0) {
    Note(std::to_string(truncated_) +
         " sequence(s) lost prompt tokens from the left to max_seq_len " +
         std::to_string(max_seq_len_));
  }
  int64_t tokens = 0, targets = 0;
  for (const TokenSequence& t : sft_) {
    lengths_.push_back(static_cast<int64_t>(t.tokens.size()));
    tokens += static_cast<int64_t>(t.tokens.size());
    targets += t.target_count();
  }
  for (const PairSequences& p : pairs_) {
    lengths_.push_back(
        static_cast<int64_t>(std::max(p.chosen.tokens.size(), p.rejected.tokens.size())));
    tokens += static_cast<int64_t>(p.chosen.tokens.size() + p.rejected.tokens.size());
    targets += p.chosen.target_count() + p.rejected.target_count();
  }
  Note(std::to_string(examples_) + (o_.method == TrainMethod::kSft ? " sequences, " : " pairs, ") +
       std::to_string(tokens) + " tokens, " + std::to_string(targets) + " of them trained on");
  const int64_t per_step = int64_t{o_.batch_size} * o_.grad_accum;
  steps_per_epoch_ = (examples_ + per_step - 1) / per_step;
  total_steps_ = o_.max_steps > 0 ? o_.max_steps : steps_per_epoch_ * o_.epochs;
  reference_hash_ = base_.weights->content_hash();
  if (!o_.reference_model.empty()) {
    auto ref = engine::OpenWeights(o_.reference_model);
    if (!ref.ok()) return ref.status().WithContext("reference model");
    reference_hash_ = (*ref)->content_hash();
  }
  return Status::OK();
}

// What must not change between a run and its resumption.
Json Trainer::Fingerprint() const {
  Json lora = {{"rank", o_.lora.rank}};
  if (o_.lora.rank > 0) {
    lora["alpha"] = o_.lora.alpha;
    lora["targets"] = o_.lora.targets;
    lora["dropout"] = o_.lora.dropout;
  }
  Json j = {{"method", TrainMethodName(o_.method)},
            {"base_model_hash", base_.weights->content_hash()},
            {"chat_template", ChatTemplateName(base_.codec.chat_template)},
            {"data", data_fingerprint_},
            {"learning_rate", o_.learning_rate},
            {"min_lr_ratio", o_.min_lr_ratio},
            {"warmup_steps", o_.warmup_steps},
            {"epochs", o_.epochs},
            {"max_steps", o_.max_steps},
            {"batch_size", o_.batch_size},
            {"grad_accum", o_.grad_accum},
            {"weight_decay", o_.weight_decay},
            {"adam_beta1", o_.adam_beta1},
            {"adam_beta2", o_.adam_beta2},
            {"adam_eps", o_.adam_eps},
            {"max_grad_norm", o_.max_grad_norm},
            {"max_seq_len", max_seq_len_},
            {"seed", o_.seed},
            {"bf16", o_.bf16},
            {"lora", lora}};
  if (o_.group_by_length) j["group_by_length"] = true;
  if (o_.method != TrainMethod::kSft) {
    j["beta"] = o_.beta;
    j["reference_model_hash"] = reference_hash_;
  }
  return j;
}

Status Trainer::CheckSameRun(const Json& state, const std::string& where) const {
  if (!state.is_object() || state.value("format", "") != kStateFormat || !state.contains("run") ||
      !state["run"].is_object()) {
    return Status::Corruption(where + ": not a breakfix trainer state (format " +
                              std::string(kStateFormat) + ")");
  }
  const Json mine = Fingerprint();
  const Json& theirs = state["run"];
  for (const auto& [key, value] : mine.items()) {
    if (!theirs.contains(key) || theirs[key] != value) {
      const std::string was = theirs.contains(key) ? theirs[key].dump() : "(absent)";
      return Status::FailedPrecondition(o_.output_dir + " holds a run with " + key + " " + was +
                                        ", but this run has " + value.dump() + " (" + where +
                                        "); resume with the same options and data, or choose a "
                                        "new output directory");
    }
  }
  return Status::OK();
}

Result<std::unique_ptr<TrainModel>> Trainer::LoadModel(const engine::WeightSource& weights) {
  ModelSetup setup;
  setup.device = device_;
  setup.dtype = at::kFloat;
  setup.bf16 = o_.bf16;
  setup.lora = o_.lora;
  setup.seed = o_.seed;
  return TrainModel::Load(weights, setup);
}

Status Trainer::LoadReference() {
  const std::string path = (fs::path(o_.output_dir) / kReferenceCache).string();
  // The cache is valid for this reference model, data and precision.
  const std::string key = KeyBuilder()
                              .Add(reference_hash_)
                              .Add(data_fingerprint_)
                              .Add(int64_t{o_.bf16})
                              .Add(int64_t{max_seq_len_})
                              .Hex();
  std::error_code ec;
  if (fs::exists(path, ec)) {
    auto file = engine::SafetensorsFile::Open(path);
    if (file.ok()) {
      auto it = (*file)->metadata().find("key");
      const engine::SafetensorsTensor* c = (*file)->Find("chosen");
      const engine::SafetensorsTensor* r = (*file)->Find("rejected");
      if (it != (*file)->metadata().end() && it->second == key && c != nullptr && r != nullptr) {
        BF_ASSIGN_OR_RETURN(reference_.chosen, (*file)->ReadF32(*c));
        BF_ASSIGN_OR_RETURN(reference_.rejected, (*file)->ReadF32(*r));
        if (static_cast<int64_t>(reference_.chosen.size()) == examples_ &&
            static_cast<int64_t>(reference_.rejected.size()) == examples_) {
          Note("reference log-probs: reusing " + path);
          return Status::OK();
        }
      }
    }
  }
  Note("reference log-probs: computing them for " + std::to_string(examples_) + " pairs");
  std::unique_ptr<engine::WeightSource> other;
  const engine::WeightSource* weights = base_.weights.get();
  if (!o_.reference_model.empty()) {
    BF_ASSIGN_OR_RETURN(other, engine::OpenWeights(o_.reference_model));
    if (other->config().vocab_size != base_.weights->config().vocab_size) {
      return Status::InvalidArgument(
          "reference model " + o_.reference_model + " has " +
          std::to_string(other->config().vocab_size) + " tokens, the base model " +
          std::to_string(base_.weights->config().vocab_size) + "; they must share the tokenizer");
    }
    weights = other.get();
  }
  ModelSetup setup;
  setup.device = device_;
  setup.bf16 = o_.bf16;
  BF_ASSIGN_OR_RETURN(auto reference, TrainModel::Load(*weights, setup));
  BF_ASSIGN_OR_RETURN(reference_, ComputeReference(*reference, pairs_, o_.batch_size));
  const int64_t n = examples_;
  engine::FloatTensor c{{n}, reference_.chosen}, r{{n}, reference_.rejected};
  return engine::WriteSafetensors(path, {{"chosen", c}, {"rejected", r}}, {{"key", key}});
}

Status Trainer::PrepareLog(int64_t keep_up_to) {
  const std::string path = (fs::path(o_.output_dir) / kLogFile).string();
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::OK();
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    // Lines after the checkpoint are redone; a torn last line from a crash is dropped.
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("step") && j["step"].is_number_integer() &&
        j["step"].get<int64_t>() <= keep_up_to) {
      kept += line + "\n";
    }
  }
  return Env::Default()->WriteFileAtomic(path, kept);
}

Status Trainer::AppendLog(const TrainStepLog& s) {
  Json j = {{"step", s.step},
            {"epoch", s.epoch},
            {"loss", s.loss},
            {"lr", s.learning_rate},
            {"grad_norm", s.grad_norm},
            {"tokens", s.tokens},
            {"tokens_per_s", s.tokens_per_s}};
  if (o_.method != TrainMethod::kSft) {
    j["reward_margin"] = s.reward_margin;
    j["accuracy"] = s.accuracy;
    j["chosen_logp"] = s.chosen_logp;
    j["rejected_logp"] = s.rejected_logp;
  }
  const std::string path = (fs::path(o_.output_dir) / kLogFile).string();
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (f == nullptr) return Status::IOError(path + ": cannot append: " + std::strerror(errno));
  const std::string line = j.dump() + "\n";
  const bool ok = std::fwrite(line.data(), 1, line.size(), f) == line.size();
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) return Status::IOError(path + ": write failed");
  return Status::OK();
}

Status Trainer::Resume(int64_t step) {
  const fs::path dir = fs::path(o_.output_dir) / CheckpointName(step);
  BF_ASSIGN_OR_RETURN(Json state, ReadJsonFile((dir / kTrainerState).string()));
  BF_RETURN_IF_ERROR(CheckSameRun(state, (dir / kTrainerState).string()));
  if (o_.lora.rank > 0) {
    BF_ASSIGN_OR_RETURN(model_, LoadModel(*base_.weights));
  } else {
    // Full fine-tuning: the checkpoint's float32 weights are the master weights.
    BF_ASSIGN_OR_RETURN(auto weights,
                        engine::OpenWeights(ModelPathIn(dir.string(), base_.weights->format())));
    BF_ASSIGN_OR_RETURN(model_, LoadModel(*weights));
  }
  BF_ASSIGN_OR_RETURN(auto tensors, ReadSafetensors((dir / kOptimizerState).string()));
  if (o_.lora.rank > 0) {
    std::map<std::string, engine::FloatTensor> adapters;
    for (const auto& [name, t] : tensors) {
      if (name.rfind("adapter.", 0) == 0) adapters[name.substr(8)] = t;
    }
    BF_RETURN_IF_ERROR(model_->SetAdapterWeights(adapters));
  }
  adam_m_.clear();
  adam_v_.clear();
  for (const Parameter& p : model_->trainable()) {
    for (auto [prefix, out] : {std::pair{"adam_m.", &adam_m_}, {"adam_v.", &adam_v_}}) {
      auto it = tensors.find(prefix + p.name);
      const std::vector<int64_t> want(p.value.sizes().begin(), p.value.sizes().end());
      if (it == tensors.end() || it->second.shape != want) {
        return Status::Corruption((dir / kOptimizerState).string() + ": " + prefix + p.name +
                                  " is missing or has the wrong shape");
      }
      out->push_back(at::from_blob(it->second.data.data(), want, at::kFloat)
                         .clone()
                         .to(device_, p.value.scalar_type()));
    }
  }
  return Status::OK();
}

Status Trainer::WriteCheckpoint(const std::string& name, int64_t step, bool finished) {
  const fs::path out = fs::path(o_.output_dir) / name;
  const fs::path tmp = fs::path(o_.output_dir) / (".tmp-" + name);
  std::error_code ec;
  fs::remove_all(tmp, ec);
  BF_RETURN_IF_ERROR(MakeDirs(tmp.string()));
  BF_RETURN_IF_ERROR(WriteModelLike(tmp.string(), base_.path, base_.weights->format(),
                                    base_.weights->config(), model_->MergedWeights()));
  if (!finished) {
    NamedTensors state;
    for (const auto& [adapter, t] : model_->AdapterWeights())
      state.push_back({"adapter." + adapter, t});
    const std::vector<Parameter>& params = model_->trainable();
    for (size_t i = 0; i < params.size(); ++i) {
      for (auto [prefix, moments] : {std::pair{"adam_m.", &adam_m_}, {"adam_v.", &adam_v_}}) {
        at::Tensor c = (*moments)[i].to(at::kCPU, at::kFloat).contiguous();
        engine::FloatTensor f;
        f.shape.assign(c.sizes().begin(), c.sizes().end());
        f.data.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
        state.push_back({prefix + params[i].name, std::move(f)});
      }
    }
    BF_RETURN_IF_ERROR(engine::WriteSafetensors((tmp / kOptimizerState).string(), state,
                                                {{"step", std::to_string(step)}}));
  }
  std::vector<std::string> trainable;
  for (const Parameter& p : model_->trainable()) trainable.push_back(p.name);
  Json state = {
      {"format", kStateFormat},
      {"step", step},
      {"total_steps", total_steps_},
      {"finished", finished},
      {"steps_per_epoch", steps_per_epoch_},
      {"examples", examples_},
      {"data_order", o_.group_by_length ? "Fisher-Yates shuffle per epoch seeded by (seed, epoch), "
                                          "grouped by length"
                                        : "Fisher-Yates shuffle per epoch seeded by (seed, epoch)"},
      {"trainable", trainable},
      {"run", Fingerprint()}};
  BF_RETURN_IF_ERROR(WriteJsonFile((tmp / kTrainerState).string(), state));
  // The rename makes the checkpoint appear whole; a crash before it leaves only the .tmp- dir.
  fs::remove_all(out, ec);
  fs::rename(tmp, out, ec);
  if (ec) {
    return Status::IOError(tmp.string() + ": cannot rename to " + out.string() + ": " +
                           ec.message());
  }
  return Status::OK();
}

Result<TrainStepLog> Trainer::Step(int64_t s) {
  const int64_t start_us = Env::Default()->NowMicros();
  TrainStepLog log;
  log.step = s + 1;
  log.total_steps = total_steps_;
  log.epoch = static_cast<int>(s / steps_per_epoch_);
  if (log.epoch != cached_epoch_) {
    order_ = o_.group_by_length ? GroupedEpochOrder(lengths_, o_.batch_size, o_.seed, log.epoch)
                                : EpochOrder(examples_, o_.seed, log.epoch);
    cached_epoch_ = log.epoch;
  }
  const int64_t per_step = int64_t{o_.batch_size} * o_.grad_accum;
  const int64_t begin = (s % steps_per_epoch_) * per_step;
  const int64_t end = std::min(examples_, begin + per_step);
  const std::vector<int64_t> chosen(order_.begin() + begin, order_.begin() + end);

  for (const Parameter& p : model_->trainable()) {
    if (p.value.grad().defined()) p.value.mutable_grad().zero_();
  }
  // Loss normalisers over the whole step, so accumulation gives the mean of the full batch.
  double denominator = static_cast<double>(chosen.size());
  if (o_.method == TrainMethod::kSft) {
    int64_t targets = 0;
    for (int64_t i : chosen) targets += sft_[i].target_count();
    denominator = static_cast<double>(targets);
  }
  double loss_sum = 0, margin_sum = 0, correct = 0, chosen_sum = 0, rejected_sum = 0;
  int micro = 0;
  for (int64_t mb = 0; mb < static_cast<int64_t>(chosen.size()); mb += o_.batch_size, ++micro) {
    const std::vector<int64_t> idx(
        chosen.begin() + mb, chosen.begin() + std::min<int64_t>(chosen.size(), mb + o_.batch_size));
    const uint64_t dropout_seed =
        Random(o_.seed)
            .Fork((static_cast<uint64_t>(s) << 16) ^ static_cast<uint64_t>(micro))
            .Next();
    at::Tensor loss;
    if (o_.method == TrainMethod::kSft) {
      std::vector<const TokenSequence*> seqs;
      for (int64_t i : idx) seqs.push_back(&sft_[i]);
      const Batch batch = MakeBatch(seqs, device_, at::kFloat);
      log.tokens += batch.tokens;
      loss = -model_->TargetLogProbs(batch, true, dropout_seed).sum() / denominator;
    } else {
      auto [pc, pr] = PairLogProbs(*model_, pairs_, idx, true, dropout_seed, &log.tokens);
      std::vector<float> rc, rr;
      for (int64_t i : idx) {
        rc.push_back(reference_.chosen[i]);
        rr.push_back(reference_.rejected[i]);
      }
      const int64_t n = static_cast<int64_t>(idx.size());
      at::Tensor ref_c = at::from_blob(rc.data(), {n}, at::kFloat).clone().to(device_);
      at::Tensor ref_r = at::from_blob(rr.data(), {n}, at::kFloat).clone().to(device_);
      at::Tensor losses = PreferenceLosses(o_.method, o_.beta, pc, pr, ref_c, ref_r);
      loss = losses.sum() / denominator;
      at::NoGradGuard no_grad;
      at::Tensor margin = (((pc - ref_c) - (pr - ref_r)) * o_.beta).to(at::kCPU, at::kDouble);
      margin_sum += margin.sum().item<double>();
      correct += (margin > 0).sum().item<double>();
      chosen_sum += pc.to(at::kCPU, at::kDouble).sum().item<double>();
      rejected_sum += pr.to(at::kCPU, at::kDouble).sum().item<double>();
    }
    loss.backward();
    loss_sum += loss.item<double>();
  }

  at::NoGradGuard no_grad;
  const std::vector<Parameter>& params = model_->trainable();
  double squares = 0;
  for (const Parameter& p : params) {
    if (p.value.grad().defined()) {
      squares += p.value.grad().to(at::kDouble).pow(2).sum().item<double>();
    }
  }
  log.grad_norm = std::sqrt(squares);
  if (!std::isfinite(log.grad_norm) || !std::isfinite(loss_sum)) {
    return Status::Internal("step " + std::to_string(log.step) +
                            ": the loss or the gradient is not finite (loss " +
                            std::to_string(loss_sum) + "); lower the learning rate");
  }
  const double clip = o_.max_grad_norm > 0 && log.grad_norm > o_.max_grad_norm
                          ? o_.max_grad_norm / (log.grad_norm + 1e-6)
                          : 1.0;
  log.learning_rate = LearningRate(o_, s, total_steps_);
  const double lr = log.learning_rate;
  const double t = static_cast<double>(s + 1);
  const double bias1 = 1 - std::pow(o_.adam_beta1, t);
  const double bias2 = 1 - std::pow(o_.adam_beta2, t);
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor p = params[i].value;
    if (!p.grad().defined()) continue;
    at::Tensor g = p.grad();
    if (clip < 1.0) g = g * clip;
    adam_m_[i].mul_(o_.adam_beta1).add_(g, 1 - o_.adam_beta1);
    adam_v_[i].mul_(o_.adam_beta2).addcmul_(g, g, 1 - o_.adam_beta2);
    if (params[i].decay && o_.weight_decay > 0) p.mul_(1 - lr * o_.weight_decay);
    at::Tensor denom = (adam_v_[i].sqrt() / std::sqrt(bias2)).add_(o_.adam_eps);
    p.addcdiv_(adam_m_[i], denom, -lr / bias1);
  }

  log.loss = loss_sum;
  if (o_.method != TrainMethod::kSft) {
    const double n = static_cast<double>(chosen.size());
    log.reward_margin = margin_sum / n;
    log.accuracy = correct / n;
    log.chosen_logp = chosen_sum / n;
    log.rejected_logp = rejected_sum / n;
  }
  const double seconds = (Env::Default()->NowMicros() - start_us) / 1e6;
  log.tokens_per_s = seconds > 0 ? log.tokens / seconds : 0;
  return log;
}

Result<TrainResult> Trainer::Run(const TrainData& data) {
  BF_RETURN_IF_ERROR(Prepare(data));
  UseThreads(o_.threads);
  BF_RETURN_IF_ERROR(MakeDirs(o_.output_dir));
  TrainResult result;
  result.total_steps = total_steps_;
  result.truncated_sequences = truncated_;
  const std::string format = base_.weights->format();

  const fs::path final_dir = fs::path(o_.output_dir) / kFinalDir;
  std::error_code ec;
  if (fs::is_regular_file(final_dir / kTrainerState, ec)) {
    BF_ASSIGN_OR_RETURN(Json state, ReadJsonFile((final_dir / kTrainerState).string()));
    BF_RETURN_IF_ERROR(CheckSameRun(state, (final_dir / kTrainerState).string()));
    result.already_complete = true;
    result.steps = state.value("step", int64_t{0});
    result.final_model = ModelPathIn(final_dir.string(), format);
    Note("training already complete: " + result.final_model);
    return result;
  }
  // Half-written checkpoints of a crashed run.
  for (const auto& entry : fs::directory_iterator(o_.output_dir, ec)) {
    if (entry.path().filename().string().rfind(".tmp-", 0) == 0) fs::remove_all(entry.path(), ec);
  }

  const int64_t resume_step = LatestCheckpoint(o_.output_dir);
  if (resume_step > 0) {
    BF_RETURN_IF_ERROR(Resume(resume_step));
    result.resumed_from = resume_step;
    result.last_checkpoint =
        ModelPathIn((fs::path(o_.output_dir) / CheckpointName(resume_step)).string(), format);
    Note("resuming from " + CheckpointName(resume_step) + " of " + std::to_string(total_steps_) +
         " steps");
  } else {
    BF_ASSIGN_OR_RETURN(model_, LoadModel(*base_.weights));
    for (const Parameter& p : model_->trainable()) {
      adam_m_.push_back(at::zeros_like(p.value).detach());
      adam_v_.push_back(at::zeros_like(p.value).detach());
    }
  }
  result.trainable_parameters = model_->trainable_count();
  BF_RETURN_IF_ERROR(PrepareLog(resume_step));
  if (o_.method != TrainMethod::kSft) BF_RETURN_IF_ERROR(LoadReference());

  int64_t last_checkpoint = resume_step;
  for (int64_t s = resume_step; s < total_steps_; ++s) {
    BF_ASSIGN_OR_RETURN(TrainStepLog log, Step(s));
    BF_RETURN_IF_ERROR(AppendLog(log));
    result.steps = log.step;
    result.last = log;
    if (progress_) {
      TrainProgress p;
      p.is_step = true;
      p.step = log;
      progress_(p);
    }
    const bool last = log.step == total_steps_;
    if (!last && o_.checkpoint_every > 0 && log.step % o_.checkpoint_every == 0) {
      BF_RETURN_IF_ERROR(WriteCheckpoint(CheckpointName(log.step), log.step, false));
      last_checkpoint = log.step;
      result.last_checkpoint =
          ModelPathIn((fs::path(o_.output_dir) / CheckpointName(log.step)).string(), format);
    }
    if (o_.halt_after_step > 0 && log.step == o_.halt_after_step && !last) {
      result.interrupted = true;
      return result;
    }
    if (stop_ != nullptr && stop_->load() && !last) {
      if (last_checkpoint != log.step) {
        BF_RETURN_IF_ERROR(WriteCheckpoint(CheckpointName(log.step), log.step, false));
        result.last_checkpoint =
            ModelPathIn((fs::path(o_.output_dir) / CheckpointName(log.step)).string(), format);
      }
      Note("stopped after step " + std::to_string(log.step) + "; run the same command to resume");
      result.interrupted = true;
      return result;
    }
  }
  BF_RETURN_IF_ERROR(WriteCheckpoint(kFinalDir, total_steps_, true));
  result.final_model = ModelPathIn(final_dir.string(), format);
  Note("final model written to " + result.final_model);
  return result;
}

}  // namespace
}  // namespace train

Result<TrainResult> Train(const TrainOptions& options, const TrainData& data,
                          const TrainProgressFn& progress, const std::atomic<bool>* stop) {
  try {
    train::Trainer trainer(options, progress, stop);
    return trainer.Run(data);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("training failed: ") + e.what());
  }
}

Result<std::vector<ReplyScore>> ScoreReplies(const std::string& model_path,
                                             const std::vector<ScoredReply>& items,
                                             const ScoreOptions& options) {
  if (options.batch_size < 1) return Status::InvalidArgument("batch_size must be >= 1");
  if (options.threads < 1) return Status::InvalidArgument("threads must be >= 1");
  try {
    BF_ASSIGN_OR_RETURN(at::Device device, train::ParseDevice(options.device));
    BF_ASSIGN_OR_RETURN(train::OpenedModel model,
                        train::OpenModel(model_path, options.chat_template));
    const int max_len = std::min(options.max_seq_len, model.weights->config().context_length);
    std::vector<train::TokenSequence> seqs;
    for (size_t i = 0; i < items.size(); ++i) {
      BF_ASSIGN_OR_RETURN(train::TokenSequence s,
                          train::EncodeReply(model.codec, items[i].prompt, items[i].reply, max_len,
                                             train::ExampleName("item", i, "")));
      seqs.push_back(std::move(s));
    }
    train::UseThreads(options.threads);
    train::ModelSetup setup;
    setup.device = device;
    setup.bf16 = options.bf16;
    BF_ASSIGN_OR_RETURN(auto net, train::TrainModel::Load(*model.weights, setup));
    std::vector<ReplyScore> out;
    if (seqs.empty()) return out;
    at::Tensor sums = train::SequenceLogProbs(*net, train::Pointers(seqs), options.batch_size);
    for (size_t i = 0; i < seqs.size(); ++i) {
      ReplyScore r;
      r.logprob = sums[static_cast<int64_t>(i)].item<double>();
      r.tokens = seqs[i].target_count();
      r.truncated = seqs[i].dropped > 0;
      out.push_back(r);
    }
    return out;
  } catch (const std::exception& e) {
    return Status::Internal(std::string("scoring failed: ") + e.what());
  }
}

Result<PreferenceLossReport> EvaluatePreferenceLoss(const TrainOptions& options,
                                                    const std::vector<PreferencePair>& pairs) {
  if (options.method == TrainMethod::kSft) {
    return Status::InvalidArgument("EvaluatePreferenceLoss needs method dpo or ipo");
  }
  if (!(options.beta > 0)) return Status::InvalidArgument("beta must be positive");
  if (options.batch_size < 1) return Status::InvalidArgument("batch_size must be >= 1");
  try {
    BF_ASSIGN_OR_RETURN(at::Device device, train::ParseDevice(options.device));
    BF_ASSIGN_OR_RETURN(train::OpenedModel policy,
                        train::OpenModel(options.base_model, options.chat_template));
    const int max_len = std::min(options.max_seq_len, policy.weights->config().context_length);
    BF_ASSIGN_OR_RETURN(auto seqs, train::EncodePairData(policy.codec, pairs, max_len));
    train::UseThreads(options.threads);
    train::ModelSetup setup;
    setup.device = device;
    setup.bf16 = options.bf16;
    auto log_probs =
        [&](const engine::WeightSource& weights) -> Result<std::pair<at::Tensor, at::Tensor>> {
      BF_ASSIGN_OR_RETURN(auto net, train::TrainModel::Load(weights, setup));
      at::NoGradGuard no_grad;
      std::vector<at::Tensor> c, r;
      for (size_t begin = 0; begin < seqs.size(); begin += options.batch_size) {
        std::vector<int64_t> idx;
        for (size_t i = begin; i < std::min(seqs.size(), begin + options.batch_size); ++i) {
          idx.push_back(static_cast<int64_t>(i));
        }
        auto [pc, pr] = train::PairLogProbs(*net, seqs, idx, false, 0, nullptr);
        c.push_back(pc.to(at::kCPU, at::kDouble));
        r.push_back(pr.to(at::kCPU, at::kDouble));
      }
      return std::pair{at::cat(c), at::cat(r)};
    };
    BF_ASSIGN_OR_RETURN(auto pol, log_probs(*policy.weights));
    std::pair<at::Tensor, at::Tensor> ref = pol;
    if (!options.reference_model.empty()) {
      BF_ASSIGN_OR_RETURN(auto weights, engine::OpenWeights(options.reference_model));
      BF_ASSIGN_OR_RETURN(ref, log_probs(*weights));
    }
    const at::Tensor losses = train::PreferenceLosses(options.method, options.beta, pol.first,
                                                      pol.second, ref.first, ref.second);
    const at::Tensor margin = ((pol.first - ref.first) - (pol.second - ref.second)) * options.beta;
    PreferenceLossReport report;
    report.loss = losses.mean().item<double>();
    report.reward_margin = margin.mean().item<double>();
    report.accuracy = (margin > 0).to(at::kDouble).mean().item<double>();
    auto values = [](const at::Tensor& t) {
      at::Tensor c = t.contiguous();
      return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
    };
    report.policy_chosen = values(pol.first);
    report.policy_rejected = values(pol.second);
    report.reference_chosen = values(ref.first);
    report.reference_rejected = values(ref.second);
    return report;
  } catch (const std::exception& e) {
    return Status::Internal(std::string("evaluating the preference loss failed: ") + e.what());
  }
}

}  // namespace breakfix
