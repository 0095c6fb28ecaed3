// breakfix cycle: run (or resume) a break-fix cycle from a YAML file, and report it round over
// round.

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>

#include "cycle_command.h"

#include "breakfix/cycle.h"
#include "cli_common.h"
#include "engine_plugin.h"

namespace breakfix::cli {
namespace {

// Local models get a ModelSet each, so a round's model can be released (its engine shut down
// and its memory returned) once the cycle moves on; judges and endpoint models share one.
class CliCycleServices : public CycleServices {
 public:
  CliCycleServices(Env* env, const CycleFlags& flags) : env_(env), flags_(flags) {}

  Status Init() {
    BF_ASSIGN_OR_RETURN(shared_, ModelSet::Create(env_));
    return Status::OK();
  }

  Result<ChatModel*> LocalModel(const std::string& path, const std::string& name) override {
    auto key = std::make_pair(path, name);
    if (auto it = local_models_.find(key); it != local_models_.end()) return it->second;
    auto& set = local_sets_[path];
    if (!set) {
      BF_ASSIGN_OR_RETURN(set, ModelSet::Create(env_));
    }
    const std::string spec = std::string(kLocalSpecPrefix) + path + ",name=" + name +
                             ",threads=" + std::to_string(flags_.threads) +
                             ",max_batch=" + std::to_string(flags_.max_batch);
    BF_ASSIGN_OR_RETURN(EndpointOptions options, ResolveEndpoint(spec, {}, name));
    BF_ASSIGN_OR_RETURN(ChatModel * model, set->AddModel(options));
    local_models_[key] = model;
    return model;
  }

  Result<ChatModel*> Model(const std::string& spec) override {
    BF_ASSIGN_OR_RETURN(EndpointOptions options, ResolveEndpoint(spec, {}, "model"));
    return shared_->AddModel(options);
  }

  Result<ChatModel*> CampaignModel(const std::string& spec, const std::string& models_yaml,
                                   const std::string& file) override {
    const std::string key = file + "\n" + spec;
    if (auto it = campaign_models_.find(key); it != campaign_models_.end()) return it->second;
    ModelTable table;
    if (!models_yaml.empty()) {
      BF_ASSIGN_OR_RETURN(table, ModelTableFromYaml(YAML::Load(models_yaml), file));
    }
    BF_ASSIGN_OR_RETURN(EndpointOptions options, ResolveEndpoint(spec, table, "model"));
    BF_ASSIGN_OR_RETURN(ChatModel * model, shared_->AddModel(options));
    campaign_models_[key] = model;
    return model;
  }

  Result<Judge*> JudgeFor(const std::string& spec) override {
    if (auto it = judges_.find(spec); it != judges_.end()) return it->second;
    BF_ASSIGN_OR_RETURN(Judge * judge, shared_->AddJudge(spec, {}));
    judges_[spec] = judge;
    return judge;
  }

  Result<TrainResult> Train(const TrainOptions& options, const TrainData& data,
                            const TrainProgressFn& progress,
                            const std::atomic<bool>* stop) override {
    TrainOptions o = options;
    if (o.threads < flags_.threads) o.threads = flags_.threads;
    return TrainViaPlugin(o, data, progress, stop);
  }

  void Release(const std::string& path) override {
    auto it = local_sets_.find(path);
    if (it == local_sets_.end()) return;
    for (auto m = local_models_.begin(); m != local_models_.end();) {
      m = m->first.first == path ? local_models_.erase(m) : std::next(m);
    }
    it->second->CancelAll();
    local_sets_.erase(it);
  }

  void CancelAll() {
    for (auto& [path, set] : local_sets_) set->CancelAll();
    if (shared_) shared_->CancelAll();
  }

 private:
  Env* env_;
  const CycleFlags& flags_;
  std::unique_ptr<ModelSet> shared_;
  std::map<std::string, std::unique_ptr<ModelSet>> local_sets_;
  std::map<std::pair<std::string, std::string>, ChatModel*> local_models_;
  std::map<std::string, Judge*> judges_;
  std::map<std::string, ChatModel*> campaign_models_;
};

std::string StorePath(const CycleFlags& flags, const CycleConfig& config) {
  if (!flags.store.empty()) return flags.store;
  return (std::filesystem::path(config.out_dir) / "breakfix.db").string();
}

// Writes cycle-report.md, .json and .html into the report folder and prints the Markdown.
int WriteReport(Store* store, const CycleConfig& config, const CycleFlags& flags, Env* env) {
  Result<CycleReport> report = BuildCycleReport(store, config, config.seed);
  if (!report.ok()) return Fail(report.status());
  const std::string dir = flags.out.empty() ? config.out_dir : flags.out;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string markdown = RenderCycleMarkdown(*report);
  for (const auto& [name, text] :
       {std::pair<std::string, std::string>{"cycle-report.md", markdown},
        std::pair<std::string, std::string>{"cycle-report.json", RenderCycleJson(*report)}}) {
    const std::string path = (std::filesystem::path(dir) / name).string();
    Status s = env->WriteFileAtomic(path, text);
    if (!s.ok()) return Fail(s);
  }
  const std::string html = (std::filesystem::path(dir) / "cycle-report.html").string();
  if (Status s = WriteCycleHtml(*report, store, html); !s.ok()) return Fail(s);
  if (!flags.quiet && flags.print_report) {
    std::fputs(markdown.c_str(), stdout);
    std::printf("\nreport: %s/cycle-report.md, .json and .html\n", dir.c_str());
  }
  return kExitOk;
}

}  // namespace

int RunCycleCommand(const CycleFlags& flags) {
  Env* env = Env::Default();
  Result<CycleConfig> config = LoadCycleConfig(flags.config, env);
  if (!config.ok()) return Fail(config.status());
  std::error_code ec;
  std::filesystem::create_directories(config->out_dir, ec);
  if (ec) {
    return Fail(
        Status::InvalidArgument("cannot create out_dir " + config->out_dir + ": " + ec.message()));
  }
  const std::string store_path = StorePath(flags, *config);
  auto store = OpenStore(store_path, /*create=*/true);
  if (!store.ok()) return Fail(store.status());
  CliCycleServices services(env, flags);
  if (Status s = services.Init(); !s.ok()) return Fail(s);

  StopOnSignals signals;
  const bool quiet = flags.quiet;
  auto progress = [quiet](const std::string& line) {
    if (!quiet) std::fprintf(stderr, "%s\n", line.c_str());
  };
  Result<CycleResult> result =
      RunCycle(*config, store->get(), &services, env, progress, signals.flag());
  services.CancelAll();
  signals.Restore();
  if (!result.ok()) return Fail(result.status());
  if (result->interrupted) {
    std::fprintf(stderr, "breakfix: cycle interrupted; finished steps are stored in %s\n",
                 store_path.c_str());
    return kExitFailed;
  }
  return WriteReport(store->get(), *config, flags, env);
}

namespace {

int ReportCycleCommand(const CycleFlags& flags) {
  Env* env = Env::Default();
  Result<CycleConfig> config = LoadCycleConfig(flags.config, env);
  if (!config.ok()) return Fail(config.status());
  auto store = OpenStore(StorePath(flags, *config), /*create=*/false);
  if (!store.ok()) return FailLookup(store.status());
  return WriteReport(store->get(), *config, flags, env);
}

}  // namespace

CommandFn AddCycleCommand(CLI::App& app) {
  auto flags = std::make_shared<CycleFlags>();
  CLI::App* cmd = app.add_subcommand(
      "cycle", "Run break-fix rounds from a YAML file: measure, curate, train, measure again");
  cmd->require_subcommand(1);
  CLI::App* run = cmd->add_subcommand("run", "Run or resume the cycle, then write its report");
  CLI::App* report = cmd->add_subcommand("report", "Write the round-over-round report");
  for (CLI::App* sub : {run, report}) {
    sub->add_option("config", flags->config, "Cycle YAML file (see docs/cycle.md)")->required();
    sub->add_option("--store", flags->store, "Result store (default: <out_dir>/breakfix.db)");
    sub->add_option("--out", flags->out, "Report folder (default: the cycle's out_dir)");
    sub->add_flag("-q,--quiet", flags->quiet, "No progress lines and no printed report");
  }
  run->add_option("--threads", flags->threads, "Tensor library threads for local models")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  run->add_option("--max-batch", flags->max_batch, "Sequences a local model decodes together")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  return [flags, run, report]() -> int {
    if (run->parsed()) return RunCycleCommand(*flags);
    if (report->parsed()) return ReportCycleCommand(*flags);
    return kExitUsage;
  };
}

}  // namespace breakfix::cli
