// breakfix runs: list the runs in a store.
#include <cstdio>
#include <ctime>

#include "cli_common.h"

namespace breakfix::cli {
namespace {

struct RunsFlags {
  std::string store = "breakfix.db";
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

}  // namespace

CommandFn AddRunsCommand(CLI::App& app) {
  auto flags = std::make_shared<RunsFlags>();
  CLI::App* cmd = app.add_subcommand("runs", "List the runs in a store");
  cmd->add_option("--store", flags->store, "SQLite store")->capture_default_str();
  return [flags] { return RunRunsCommand(*flags); };
}

}  // namespace breakfix::cli
