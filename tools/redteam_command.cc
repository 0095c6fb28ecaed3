// breakfix redteam run|report|findings CAMPAIGN.yaml, and breakfix replay KEY: red-team
// campaigns (breakfix/campaign.h, docs/redteam.md).
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <memory>
#include <string>

#include "breakfix/campaign.h"
#include "cli_common.h"

namespace breakfix::cli {
namespace {

struct RedteamFlags {
  std::string config;
  std::string store = "redteam.db";
  std::string out;  // report folder; "" = next to the store
  bool quiet = false;
  // replay
  std::string key;
  int index = 1;
  std::string target;
};

class CliCampaignModels : public CampaignModels {
 public:
  CliCampaignModels(ModelSet* set, ModelTable table) : set_(set), table_(std::move(table)) {}
  Result<ChatModel*> Model(const std::string& spec) override {
    if (auto it = models_.find(spec); it != models_.end()) return it->second;
    BF_ASSIGN_OR_RETURN(EndpointOptions options, ResolveEndpoint(spec, table_, "model"));
    BF_ASSIGN_OR_RETURN(ChatModel * model, set_->AddModel(options));
    models_[spec] = model;
    return model;
  }

 private:
  ModelSet* set_;
  ModelTable table_;
  std::map<std::string, ChatModel*> models_;
};

Result<CampaignConfig> LoadConfig(const std::string& path, Env* env) {
  Result<std::string> text = env->ReadFile(path);
  if (!text.ok()) return Status::InvalidArgument("cannot read campaign file " + path);
  return ParseCampaignConfig(*text, path);
}

Result<ModelTable> TableOf(const CampaignConfig& c) {
  if (c.models_yaml.empty()) return ModelTable{};
  return ModelTableFromYaml(YAML::Load(c.models_yaml), c.file);
}

int WriteReport(const CampaignConfig& config, Store* store, const RedteamFlags& flags, Env* env) {
  Result<CampaignReport> report = BuildCampaignReport(config, store);
  if (!report.ok()) return Fail(report.status());
  const std::string dir =
      flags.out.empty() ? std::filesystem::path(flags.store).parent_path().string() : flags.out;
  const std::string base = (dir.empty() ? std::string(".") : dir) + "/redteam-" + config.name;
  const std::string markdown = RenderCampaignMarkdown(*report);
  for (const auto& [path, text] : {std::pair<std::string, std::string>{base + ".md", markdown},
                                   {base + ".json", RenderCampaignJson(*report)}}) {
    Status s = env->WriteFileAtomic(path, text);
    if (!s.ok()) return Fail(s);
  }
  if (Status s = WriteCampaignHtml(*report, store, base + ".html"); !s.ok()) return Fail(s);
  if (!flags.quiet) {
    std::fputs(markdown.c_str(), stdout);
    std::printf("\nreport: %s.md, .json and .html\n", base.c_str());
  }
  return kExitOk;
}

int RunCommand(const RedteamFlags& flags) {
  Env* env = Env::Default();
  Result<CampaignConfig> config = LoadConfig(flags.config, env);
  if (!config.ok()) return Fail(config.status());
  Result<ModelTable> table = TableOf(*config);
  if (!table.ok()) return Fail(table.status());
  auto store = OpenStore(flags.store, /*create=*/true);
  if (!store.ok()) return Fail(store.status());
  auto set = ModelSet::Create(env);
  if (!set.ok()) return Fail(set.status());
  CliCampaignModels models(set->get(), *table);
  StopOnSignals signals;
  const bool quiet = flags.quiet;
  auto progress = [quiet](const CampaignProgress& p) {
    if (quiet) return;
    std::fprintf(stderr,
                 "[redteam] %lld/%lld attacks (%lld resumed), %lld succeeded, %lld failed; "
                 "calls: %lld new, %lld from the journal\n",
                 static_cast<long long>(p.done), static_cast<long long>(p.total),
                 static_cast<long long>(p.resumed), static_cast<long long>(p.succeeded),
                 static_cast<long long>(p.failed), static_cast<long long>(p.calls_made),
                 static_cast<long long>(p.calls_replayed));
  };
  Result<CampaignResult> result =
      RunCampaign(*config, store->get(), &models, progress, signals.flag());
  (*set)->CancelAll();
  signals.Restore();
  if (!result.ok()) return Fail(result.status());
  for (const std::string& e : result->errors)
    std::fprintf(stderr, "breakfix: attack failed: %s\n", e.c_str());
  if (result->interrupted) {
    std::fprintf(stderr, "breakfix: campaign interrupted; rerun the command to resume\n");
    return kExitFailed;
  }
  int rc = WriteReport(*config, store->get(), flags, env);
  if (rc != kExitOk) return rc;
  if (!result->errors.empty()) {
    std::fprintf(stderr, "breakfix: %zu attack(s) failed; rerun to retry them\n",
                 result->errors.size());
    return kExitFailed;
  }
  return kExitOk;
}

int ReportCommand(const RedteamFlags& flags) {
  Env* env = Env::Default();
  Result<CampaignConfig> config = LoadConfig(flags.config, env);
  if (!config.ok()) return Fail(config.status());
  auto store = OpenStore(flags.store, /*create=*/false);
  if (!store.ok()) return FailLookup(store.status());
  return WriteReport(*config, store->get(), flags, env);
}

int FindingsCommand(const RedteamFlags& flags) {
  Env* env = Env::Default();
  Result<CampaignConfig> config = LoadConfig(flags.config, env);
  if (!config.ok()) return Fail(config.status());
  auto store = OpenStore(flags.store, /*create=*/false);
  if (!store.ok()) return FailLookup(store.status());
  Result<std::vector<std::string>> lines = CampaignFindingsJsonl(config->name, store->get());
  if (!lines.ok()) return Fail(lines.status());
  std::string text;
  for (const std::string& l : *lines) text += l + "\n";
  if (flags.out.empty()) {
    std::fputs(text.c_str(), stdout);
  } else {
    Status s = env->WriteFileAtomic(flags.out, text);
    if (!s.ok()) return Fail(s);
    std::printf("%zu finding(s) -> %s\n", lines->size(), flags.out.c_str());
  }
  return kExitOk;
}

// The finding to replay: line `index` (1-based) of a findings file, or the attack with that key
// in the store.
Result<AttackRecord> FindFinding(const RedteamFlags& flags, Env* env) {
  if (std::filesystem::is_regular_file(flags.key)) {
    BF_ASSIGN_OR_RETURN(std::string text, env->ReadFile(flags.key));
    std::istringstream lines(text);
    std::string line;
    for (int n = 1; std::getline(lines, line); ++n) {
      if (n != flags.index) continue;
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_object() || !j.contains("key") || !j["key"].is_string()) {
        return Status::InvalidArgument(flags.key + ":" + std::to_string(n) +
                                       ": not a finding (expected a JSON object with \"key\")");
      }
      AttackRecord a;
      a.key = j["key"].get<std::string>();
      a.result_json = line;
      return a;
    }
    return Status::InvalidArgument(flags.key + ": has no line " + std::to_string(flags.index));
  }
  BF_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, OpenStore(flags.store, /*create=*/false));
  BF_ASSIGN_OR_RETURN(std::optional<AttackRecord> attack, store->FindAttack(flags.key));
  if (!attack) {
    return Status::InvalidArgument("no attack with key " + flags.key + " in " + flags.store +
                                   " (see `breakfix redteam findings`)");
  }
  return *attack;
}

int ReplayCommand(const RedteamFlags& flags) {
  Env* env = Env::Default();
  Result<AttackRecord> attack = FindFinding(flags, env);
  if (!attack.ok()) return FailLookup(attack.status());
  ModelTable table;
  if (!flags.config.empty()) {
    Result<CampaignConfig> config = LoadConfig(flags.config, env);
    if (!config.ok()) return Fail(config.status());
    Result<ModelTable> t = TableOf(*config);
    if (!t.ok()) return Fail(t.status());
    table = *t;
  }
  auto set = ModelSet::Create(env);
  if (!set.ok()) return Fail(set.status());
  CliCampaignModels models(set->get(), table);
  Result<ChatModel*> target = models.Model(flags.target);
  if (!target.ok()) return Fail(target.status());
  Result<std::vector<ReplayTurn>> turns = ReplayAttack(*attack, *target);
  (*set)->CancelAll();
  if (!turns.ok()) return Fail(turns.status());
  int same = 0;
  for (size_t i = 0; i < turns->size(); ++i) {
    const ReplayTurn& t = (*turns)[i];
    same += t.same;
    std::printf("turn %zu: %s\n  sent:     %s\n  recorded: %s\n  now:      %s\n", i + 1,
                t.same ? "same reply" : "DIFFERENT reply", t.sent.c_str(), t.recorded_reply.c_str(),
                t.new_reply.c_str());
  }
  std::printf("%d of %zu replies reproduced\n", same, turns->size());
  return kExitOk;
}

}  // namespace

CommandFn AddRedteamCommand(CLI::App& app) {
  auto flags = std::make_shared<RedteamFlags>();
  CLI::App* cmd = app.add_subcommand(
      "redteam", "Red-team campaigns: attack strategies x converters x targets (docs/redteam.md)");
  cmd->require_subcommand(1);
  CLI::App* run = cmd->add_subcommand("run", "Run or resume a campaign, then write its report");
  CLI::App* report = cmd->add_subcommand("report", "Write a campaign's report");
  CLI::App* findings = cmd->add_subcommand(
      "findings", "Successful attacks as JSON Lines, with everything to replay");
  for (CLI::App* sub : {run, report, findings}) {
    sub->add_option("config", flags->config, "Campaign YAML file")->required();
    sub->add_option("--store", flags->store, "Result store")->capture_default_str();
    sub->add_flag("-q,--quiet", flags->quiet, "No progress lines and no printed report");
  }
  run->add_option("--out", flags->out, "Report folder (default: the store's folder)");
  report->add_option("--out", flags->out, "Report folder (default: the store's folder)");
  findings->add_option("--out", flags->out, "Write the findings here instead of stdout");
  return [flags, run, report, findings]() -> int {
    if (run->parsed()) return RunCommand(*flags);
    if (report->parsed()) return ReportCommand(*flags);
    if (findings->parsed()) return FindingsCommand(*flags);
    return kExitUsage;
  };
}

CommandFn AddReplayCommand(CLI::App& app) {
  auto flags = std::make_shared<RedteamFlags>();
  CLI::App* cmd = app.add_subcommand(
      "replay", "Send a stored attack's turns to a target again and compare the replies");
  cmd->add_option("finding", flags->key,
                  "A findings file (breakfix redteam findings --out) or an attack's key in --store")
      ->required();
  cmd->add_option("--index", flags->index, "Which line of the findings file (1-based)")
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  cmd->add_option("--store", flags->store, "Result store")->capture_default_str();
  cmd->add_option("--target", flags->target, "Model spec of the target to replay against")
      ->required();
  cmd->add_option("--config", flags->config, "Campaign file whose `models:` names --target uses");
  return [flags] { return ReplayCommand(*flags); };
}

}  // namespace breakfix::cli
