// The break-fix cycle's driver: a loop over models and rounds whose every step is recorded in the
// store, so a re-run skips what is done and resumes what is not.
#include "breakfix/cycle.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "breakfix/eval.h"
#include "breakfix/hash.h"
#include "breakfix/suite.h"

namespace breakfix {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr char kStepMeasure[] = "measure";
constexpr char kStepCurate[] = "curate";
constexpr char kStepTrain[] = "train";
constexpr char kStepRedteam[] = "redteam";
constexpr char kDone[] = "done";
constexpr char kRunning[] = "running";

std::string RoundLabel(int round) { return "r" + std::to_string(round); }

std::string RoundDir(const CycleConfig& c, const std::string& model, int round) {
  return (fs::path(c.out_dir) / model / RoundLabel(round)).string();
}

std::string RunName(const CycleConfig& c, const std::string& model, int round,
                    const std::string& suite) {
  return c.name + "/" + model + "/" + RoundLabel(round) + "/" + suite;
}

std::string TargetName(const std::string& model, int round) {
  return model + "-" + RoundLabel(round);
}

// SHA-256 over a model file or every regular file of a model folder (names and bytes, in name
// order), so the store ties each round to the exact weights it measured.
Result<std::string> ModelHash(const std::string& path) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    for (const auto& e : fs::directory_iterator(path, ec)) {
      if (e.is_regular_file()) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(path);
  }
  if (ec) return Status::NotFound("cannot list model folder " + path + ": " + ec.message());
  Sha256 sha;
  std::vector<char> buffer(1 << 20);
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) return Status::NotFound("cannot read model file " + f.string());
    sha.Update(f.filename().string());
    sha.Update(std::string_view("\0", 1));
    while (in) {
      in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      sha.Update(std::string_view(buffer.data(), static_cast<size_t>(in.gcount())));
    }
  }
  return sha.HexDigest().substr(0, 16);
}

class Cycle {
 public:
  Cycle(const CycleConfig& config, Store* store, CycleServices* services, Env* env,
        const CycleProgressFn& progress, const std::atomic<bool>* stop)
      : c_(config),
        store_(store),
        services_(services),
        env_(env),
        progress_(progress),
        stop_(stop) {}

  Result<CycleResult> Run() {
    BF_RETURN_IF_ERROR(Validate());
    BF_ASSIGN_OR_RETURN(suite_, LoadSuite(c_.suite, env_));
    if (!c_.over_refusal_suite.empty()) {
      BF_ASSIGN_OR_RETURN(over_refusal_suite_, LoadSuite(c_.over_refusal_suite, env_));
    }
    if (!c_.redteam.empty()) {
      Result<std::string> text = env_->ReadFile(c_.redteam);
      if (!text.ok()) return Status::InvalidArgument("cannot read red-team campaign " + c_.redteam);
      BF_ASSIGN_OR_RETURN(campaign_, ParseCampaignConfig(*text, c_.redteam));
    }
    BF_ASSIGN_OR_RETURN(std::vector<CycleStepRecord> steps, store_->CycleSteps(c_.name));
    for (CycleStepRecord& s : steps) steps_[{s.model, s.round, s.step}] = std::move(s);

    CycleResult result;
    for (const CycleModel& model : c_.models) {
      std::string path = model.path;
      for (int round = 0; round <= c_.rounds; ++round) {
        CycleRoundResult r;
        r.model = model.name;
        r.round = round;
        r.model_path = path;
        r.pairs = -1;
        BF_ASSIGN_OR_RETURN(json measured, Measure(model, round, path));
        if (Stopped()) return Interrupted(std::move(result));
        r.run = measured.value("run", "");
        r.over_refusal_run = measured.value("over_refusal_run", "");
        std::string campaign;
        if (!c_.redteam.empty()) {
          BF_ASSIGN_OR_RETURN(json attacked, RedTeam(model, round, path));
          if (Stopped() || attacked.is_null()) return Interrupted(std::move(result));
          campaign = attacked.value("campaign", "");
        }
        if (round < c_.rounds) {
          BF_ASSIGN_OR_RETURN(json curated, CurateRound(model, round, path, measured, campaign));
          if (Stopped()) return Interrupted(std::move(result));
          r.pairs = curated.value("pairs", int64_t{0});
          BF_ASSIGN_OR_RETURN(json trained, TrainRound(model, round, path));
          if (Stopped() || trained.is_null()) return Interrupted(std::move(result));
          r.trained_model = trained.value("model_path", "");
          services_->Release(path);
          path = r.trained_model;
        }
        result.rounds.push_back(std::move(r));
      }
      services_->Release(path);
    }
    return result;
  }

 private:
  using StepKey = std::tuple<std::string, int, std::string>;

  Status Validate() const {
    if (c_.name.empty()) return Status::InvalidArgument("cycle: name is empty");
    if (c_.out_dir.empty()) return Status::InvalidArgument("cycle: out_dir is empty");
    if (c_.rounds < 0) return Status::InvalidArgument("cycle: rounds must be >= 0");
    if (c_.models.empty()) return Status::InvalidArgument("cycle: no models");
    std::set<std::string> names;
    for (const CycleModel& m : c_.models) {
      if (m.name.empty() || m.name.find('/') != std::string::npos) {
        return Status::InvalidArgument("cycle: model name \"" + m.name +
                                       "\" must be non-empty and contain no '/'");
      }
      if (!names.insert(m.name).second) {
        return Status::InvalidArgument("cycle: model name \"" + m.name + "\" appears twice");
      }
      if (m.path.empty()) return Status::InvalidArgument("cycle: model " + m.name + " has no path");
    }
    return Status::OK();
  }

  bool Stopped() const { return stop_ != nullptr && stop_->load(); }

  Result<CycleResult> Interrupted(CycleResult result) {
    result.interrupted = true;
    Say("stopped; run the same command again to resume");
    return result;
  }

  void Say(const std::string& line) {
    if (progress_) progress_(line);
  }

  const CycleStepRecord* Done(const std::string& model, int round, const std::string& step) {
    auto it = steps_.find({model, round, step});
    if (it == steps_.end() || it->second.status != kDone) return nullptr;
    return &it->second;
  }

  Status Record(const std::string& model, int round, const std::string& step,
                const std::string& status, const json& detail) {
    CycleStepRecord r;
    r.cycle = c_.name;
    r.model = model;
    r.round = round;
    r.step = step;
    r.status = status;
    r.detail_json = detail.dump(-1, ' ', false, json::error_handler_t::replace);
    r.updated_us = env_->WallMicros();
    BF_RETURN_IF_ERROR(store_->PutCycleStep(r));
    steps_[{model, round, step}] = r;
    return Status::OK();
  }

  static Result<json> Detail(const CycleStepRecord& r) {
    json j = json::parse(r.detail_json, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return Status::Corruption("cycle " + r.cycle + ": step " + r.step + " of " + r.model +
                                " round " + std::to_string(r.round) + " has unreadable details");
    }
    return j;
  }

  // Progress from a long step, at most every two seconds.
  bool Throttle() {
    const int64_t now = env_->NowMicros();
    if (now - last_line_us_ < 2'000'000) return false;
    last_line_us_ = now;
    return true;
  }

  Result<ChatModel*> RoleModel(const std::string& spec, ChatModel* self) {
    if (spec == "self") return self;
    return services_->Model(spec);
  }

  // `families` selects within the suite (the cycle's own list for the measured suite; all of the
  // over-refusal suite).
  Result<EvalResult> Evaluate(const Suite& suite, const std::vector<std::string>& families,
                              const EvalModels& models, const std::string& run_name,
                              const std::string& tag) {
    EvalOptions o;
    o.run_name = run_name;
    o.seed = c_.seed;
    o.families = families;
    o.limit_per_family = c_.limit_per_family;
    o.max_turns = c_.max_turns;
    o.max_in_flight = c_.max_in_flight;
    o.target_sampling = c_.target_sampling;
    last_line_us_ = 0;
    auto progress = [&](const EvalProgress& p) {
      if (!p.finished && !Throttle()) return;
      Say(tag + ": " + std::to_string(p.done) + "/" + std::to_string(p.total) + " judged" +
          (p.failed > 0 ? ", " + std::to_string(p.failed) + " failed" : "") +
          (p.unscorable > 0 ? ", " + std::to_string(p.unscorable) + " unscorable" : "") + ", " +
          std::to_string(static_cast<int64_t>(p.elapsed_s)) + " s");
    };
    BF_ASSIGN_OR_RETURN(EvalResult r, RunEval(suite, models, store_, o, env_, progress, stop_));
    if (!Stopped() && r.progress.failed > 0) {
      return Status::Unavailable(tag + ": " + std::to_string(r.progress.failed) +
                                 " conversations failed (first error: " + r.first_error.ToString() +
                                 "); finished work is stored: run the cycle again to retry them");
    }
    return r;
  }

  Result<json> Measure(const CycleModel& model, int round, const std::string& path) {
    if (const CycleStepRecord* done = Done(model.name, round, kStepMeasure)) return Detail(*done);
    const std::string tag = "[" + model.name + " " + RoundLabel(round) + "] measure";
    BF_ASSIGN_OR_RETURN(std::string hash, ModelHash(path));
    json detail = {{"model_path", path}, {"model_sha256", hash}};
    BF_RETURN_IF_ERROR(Record(model.name, round, kStepMeasure, kRunning, detail));
    BF_ASSIGN_OR_RETURN(ChatModel * target,
                        services_->LocalModel(path, TargetName(model.name, round)));
    BF_ASSIGN_OR_RETURN(ChatModel * simulator, RoleModel(c_.simulator, target));
    BF_ASSIGN_OR_RETURN(Judge * judge, services_->JudgeFor(c_.judge));
    EvalModels models{{target}, simulator, judge};
    const std::string run = RunName(c_, model.name, round, suite_->name());
    BF_ASSIGN_OR_RETURN(EvalResult r,
                        Evaluate(*suite_, c_.families, models, run, tag + " " + suite_->name()));
    if (Stopped()) return json();
    detail["run"] = run;
    detail["run_status"] = RunStatusName(r.run.status);
    if (over_refusal_suite_) {
      BF_ASSIGN_OR_RETURN(Judge * refusal, services_->JudgeFor(c_.over_refusal_judge));
      EvalModels benign{{target}, simulator, refusal};
      const std::string or_run = RunName(c_, model.name, round, over_refusal_suite_->name());
      BF_RETURN_IF_ERROR(Evaluate(*over_refusal_suite_, {}, benign, or_run,
                                  tag + " " + over_refusal_suite_->name())
                             .status());
      if (Stopped()) return json();
      detail["over_refusal_run"] = or_run;
    }
    BF_RETURN_IF_ERROR(Record(model.name, round, kStepMeasure, kDone, detail));
    return detail;
  }

  // Runs the red-team campaign against the round's model; null when stopped.
  Result<json> RedTeam(const CycleModel& model, int round, const std::string& path) {
    if (const CycleStepRecord* done = Done(model.name, round, kStepRedteam)) return Detail(*done);
    const std::string tag = "[" + model.name + " " + RoundLabel(round) + "] redteam";
    CampaignConfig campaign = campaign_;
    campaign.name = c_.name + "/" + model.name + "/" + RoundLabel(round) + "/redteam";
    campaign.targets = {"self"};
    json detail = {{"campaign", campaign.name}};
    BF_RETURN_IF_ERROR(Record(model.name, round, kStepRedteam, kRunning, detail));
    BF_ASSIGN_OR_RETURN(ChatModel * self,
                        services_->LocalModel(path, TargetName(model.name, round)));
    // The round's model is the target; the campaign's other roles come from its own specs.
    class Models : public CampaignModels {
     public:
      Models(CycleServices* services, ChatModel* self, const CampaignConfig& c)
          : services_(services), self_(self), c_(c) {}
      Result<ChatModel*> Model(const std::string& spec) override {
        if (spec == "self") return self_;
        return services_->CampaignModel(spec, c_.models_yaml, c_.file);
      }

     private:
      CycleServices* services_;
      ChatModel* self_;
      const CampaignConfig& c_;
    } models(services_, self, campaign);
    last_line_us_ = 0;
    std::mutex say_mu;
    auto progress = [&](const CampaignProgress& p) {
      std::lock_guard<std::mutex> lock(say_mu);
      if (p.done + p.failed < p.total && !Throttle()) return;
      Say(tag + ": " + std::to_string(p.done) + "/" + std::to_string(p.total) + " attacks, " +
          std::to_string(p.succeeded) + " succeeded" +
          (p.failed > 0 ? ", " + std::to_string(p.failed) + " failed" : ""));
    };
    Result<CampaignResult> r = RunCampaign(campaign, store_, &models, progress, stop_);
    if (Stopped()) return json();
    if (!r.ok()) return r.status().WithContext(tag);
    if (!r->errors.empty()) {
      return Status::Unavailable(tag + ": " + std::to_string(r->errors.size()) +
                                 " attacks failed (first: " + r->errors.front() +
                                 "); finished attacks are stored: run the cycle again to retry");
    }
    detail["attacks"] = r->progress.total;
    detail["succeeded"] = r->progress.succeeded;
    BF_RETURN_IF_ERROR(Record(model.name, round, kStepRedteam, kDone, detail));
    return detail;
  }

  Result<json> CurateRound(const CycleModel& model, int round, const std::string& path,
                           const json& measured, const std::string& campaign) {
    if (const CycleStepRecord* done = Done(model.name, round, kStepCurate)) return Detail(*done);
    const std::string tag = "[" + model.name + " " + RoundLabel(round) + "] curate";
    const std::string dir = RoundDir(c_, model.name, round);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Status::Unavailable("cannot create " + dir + ": " + ec.message());
    BF_RETURN_IF_ERROR(Record(model.name, round, kStepCurate, kRunning, json::object()));

    BF_ASSIGN_OR_RETURN(ChatModel * self,
                        services_->LocalModel(path, TargetName(model.name, round)));
    BF_ASSIGN_OR_RETURN(ChatModel * fixer, RoleModel(c_.fixer, self));
    BF_ASSIGN_OR_RETURN(Judge * judge, services_->JudgeFor(c_.judge));
    CurateOptions o = c_.curate;
    o.seed = c_.seed + static_cast<uint64_t>(round);
    o.cache_path = (fs::path(dir) / "curate-cache.jsonl").string();
    o.env = env_;
    const std::string or_run = measured.value("over_refusal_run", "");
    if (!or_run.empty()) o.over_refusal_runs = {or_run};
    if (!campaign.empty()) o.campaigns = {campaign};
    last_line_us_ = 0;
    auto progress = [&](const CurateProgress& p) {
      if (!p.finished && !Throttle()) return;
      Say(tag + ": " + std::to_string(p.done) + "/" + std::to_string(p.total) + " decided, " +
          std::to_string(p.kept) + " kept, " + std::to_string(p.dropped) + " dropped");
    };
    Result<CurateResult> r =
        Curate(store_, {measured.value("run", "")}, fixer, judge, o, progress, stop_);
    if (Stopped()) return json();
    if (!r.ok()) return r.status();

    const std::string file = (fs::path(dir) / "pairs.jsonl").string();
    BF_RETURN_IF_ERROR(WritePreferenceJsonl(file, r->pairs));
    BF_RETURN_IF_ERROR(store_->PutPreferencePairs(c_.name, model.name, round, r->pairs));
    json detail = {{"pairs", static_cast<int64_t>(r->pairs.size())},
                   {"file", file},
                   {"defects_seen", r->defects_seen},
                   {"refusals_seen", r->refusals_seen},
                   {"kept", r->kept},
                   {"dropped", r->dropped},
                   {"over_refusal_share", r->over_refusal_share}};
    if (!r->mix_note.empty()) detail["mix_note"] = r->mix_note;
    if (!r->first_error.ok()) detail["first_error"] = r->first_error.ToString();
    BF_RETURN_IF_ERROR(Record(model.name, round, kStepCurate, kDone, detail));
    std::string kept;
    for (const auto& [kind, n] : r->kept) kept += " " + kind + "=" + std::to_string(n);
    Say(tag + ": " + std::to_string(r->defects_seen) + " defects and " +
        std::to_string(r->refusals_seen) + " needless refusals seen; " +
        std::to_string(r->pairs.size()) + " pairs kept (" + (kept.empty() ? " none" : kept) + " )");
    return detail;
  }

  // Returns the step's details, or null when stopped.
  Result<json> TrainRound(const CycleModel& model, int round, const std::string& path) {
    if (const CycleStepRecord* done = Done(model.name, round, kStepTrain)) return Detail(*done);
    const std::string tag = "[" + model.name + " " + RoundLabel(round) + "] train";
    BF_ASSIGN_OR_RETURN(std::vector<PreferencePair> pairs,
                        store_->PreferencePairs(c_.name, model.name, round));
    if (pairs.empty()) {
      json detail = {{"model_path", path}, {"skipped", "no preference pairs: the model is kept"}};
      Say(tag + ": no preference pairs; the model goes into the next round unchanged");
      BF_RETURN_IF_ERROR(Record(model.name, round, kStepTrain, kDone, detail));
      return detail;
    }
    BF_RETURN_IF_ERROR(Record(model.name, round, kStepTrain, kRunning, json::object()));
    TrainOptions o = c_.train;
    o.base_model = path;
    o.output_dir = (fs::path(RoundDir(c_, model.name, round)) / "train").string();
    TrainData data;
    data.pairs = std::move(pairs);
    services_->Release(path);  // the trainer holds its own copy of the weights
    last_line_us_ = 0;
    auto progress = [&](const TrainProgress& p) {
      if (!p.is_step) {
        Say(tag + ": " + p.note);
        return;
      }
      const TrainStepLog& s = p.step;
      if (s.step != s.total_steps && !Throttle()) return;
      char line[256];
      std::snprintf(line, sizeof line,
                    ": step %lld/%lld loss %.4f margin %.3f accuracy %.2f lr %.2e %.0f tok/s",
                    static_cast<long long>(s.step), static_cast<long long>(s.total_steps), s.loss,
                    s.reward_margin, s.accuracy, s.learning_rate, s.tokens_per_s);
      Say(tag + line);
    };
    BF_ASSIGN_OR_RETURN(TrainResult r, services_->Train(o, data, progress, stop_));
    if (r.interrupted || r.final_model.empty()) return json();
    json detail = {{"model_path", r.final_model},
                   {"pairs", static_cast<int64_t>(data.pairs.size())},
                   {"steps", r.steps},
                   {"method", TrainMethodName(o.method)},
                   {"loss", r.last.loss},
                   {"reward_margin", r.last.reward_margin},
                   {"accuracy", r.last.accuracy},
                   {"truncated_sequences", r.truncated_sequences}};
    BF_RETURN_IF_ERROR(Record(model.name, round, kStepTrain, kDone, detail));
    return detail;
  }

  const CycleConfig& c_;
  Store* store_;
  CycleServices* services_;
  Env* env_;
  CycleProgressFn progress_;
  const std::atomic<bool>* stop_;
  std::unique_ptr<Suite> suite_, over_refusal_suite_;
  CampaignConfig campaign_;  // the red-team campaign, when c_.redteam is set
  std::map<StepKey, CycleStepRecord> steps_;
  int64_t last_line_us_ = 0;
};

}  // namespace

Result<CycleResult> RunCycle(const CycleConfig& config, Store* store, CycleServices* services,
                             Env* env, const CycleProgressFn& progress,
                             const std::atomic<bool>* stop) {
  if (env == nullptr) env = Env::Default();
  Cycle cycle(config, store, services, env, progress, stop);
  return cycle.Run();
}

}  // namespace breakfix
