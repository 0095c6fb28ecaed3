// breakfix runs: list the runs in a store; `breakfix runs show RUN` prints one run's manifest.
#include <cstdio>
#include <ctime>

#include <nlohmann/json.hpp>

#include "breakfix/manifest.h"
#include "cli_common.h"

namespace breakfix::cli {
namespace {

struct RunsFlags {
  std::string store = "breakfix.db";
  CLI::App* show = nullptr;
  std::string show_run;
  CLI::Option* show_store_option = nullptr;  // `runs show --store`; else `runs --store` applies
  std::string show_store = "breakfix.db";
  bool show_json = false;
};

std::string Timestamp(int64_t us) {
  std::time_t t = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

int RunRunsCommand(const RunsFlags& f) {
  auto store = OpenStore(f.store, /*create=*/false);
  if (!store.ok()) return FailLookup(store.status());
  auto runs = (*store)->ListRuns();
  if (!runs.ok()) return Fail(runs.status());
  if (runs->empty()) {
    std::printf("no runs in %s\n", f.store.c_str());
    return kExitOk;
  }
  std::printf("%-4s  %-28s  %-11s  %-20s  %-10s  %s\n", "id", "name", "status", "created", "suite",
              "targets / judge");
  for (const RunRecord& r : *runs) {
    std::string targets;
    for (const auto& t : r.targets) targets += (targets.empty() ? "" : ", ") + t;
    std::printf("%-4lld  %-28s  %-11s  %-20s  %-10s  %s / %s\n", static_cast<long long>(r.id),
                r.name.c_str(), RunStatusName(r.status), Timestamp(r.created_us).c_str(),
                r.suite_name.c_str(), targets.c_str(), r.judge.c_str());
  }
  return kExitOk;
}

// The run's manifest: as text, or with --json exactly as manifest.json holds it. A run without
// one gets a note saying why (with --json, an object whose manifest_version is null).
int RunShowCommand(const RunsFlags& f) {
  const std::string& path = f.show_store_option->count() > 0 ? f.show_store : f.store;
  auto store = OpenStore(path, /*create=*/false);
  if (!store.ok()) return FailLookup(store.status());
  auto run = (*store)->FindRun(f.show_run);
  if (!run.ok()) return FailLookup(run.status());
  auto record = (*store)->GetRunManifest(run->id);
  if (!record.ok()) return Fail(record.status());
  if (record->state != RunManifestState::kRecorded) {
    const std::string note = RunManifestMissingNote(record->state);
    if (f.show_json) {
      nlohmann::json j = {{"run", {{"id", run->id}, {"name", run->name}}},
                          {"manifest_version", nullptr},
                          {"note", note}};
      std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      std::printf("run        %s (id %lld), %s, created %s\n%s\n", run->name.c_str(),
                  static_cast<long long>(run->id), RunStatusName(run->status),
                  Timestamp(run->created_us).c_str(), note.c_str());
    }
    return kExitOk;
  }
  if (f.show_json) {
    std::printf("%s", record->manifest_json.c_str());
    return kExitOk;
  }
  auto manifest = ParseRunManifest(record->manifest_json);
  if (!manifest.ok()) {
    return Fail(manifest.status().WithContext("run " + run->name + " in " + path));
  }
  std::printf("status     %s\n%s", RunStatusName(run->status),
              RenderRunManifestText(*manifest).c_str());
  return kExitOk;
}

}  // namespace

CommandFn AddRunsCommand(CLI::App& app) {
  auto flags = std::make_shared<RunsFlags>();
  CLI::App* cmd = app.add_subcommand("runs", "List the runs in a store (`runs show RUN`: one run)");
  cmd->add_option("--store", flags->store, "SQLite store")->capture_default_str();
  flags->show = cmd->add_subcommand(
      "show", "Print a run's reproducibility manifest (versions, hashes, models, fingerprints)");
  flags->show->add_option("run", flags->show_run, "Run name or id")->required();
  flags->show_store_option =
      flags->show->add_option("--store", flags->show_store, "SQLite store")->capture_default_str();
  flags->show->add_flag("--json", flags->show_json, "Print the manifest as JSON (manifest.json)");
  return [flags] {
    if (flags->show->parsed()) return RunShowCommand(*flags);
    return RunRunsCommand(*flags);
  };
}

}  // namespace breakfix::cli
