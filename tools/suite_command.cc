// breakfix suite: list built-in suites, print one, or check a suite file.
#include <cstdio>
#include <map>

#include "breakfix/suite.h"
#include "cli_common.h"

namespace breakfix::cli {
namespace {

struct SuiteFlags {
  std::string action;
  std::string suite;
};

int RunSuiteCommand(const SuiteFlags& f) {
  if (f.action == "list") {
    for (const std::string& name : BuiltinSuiteNames()) std::printf("%s\n", name.c_str());
    return kExitOk;
  }
  if (f.suite.empty()) {
    return Fail(
        Status::InvalidArgument("`breakfix suite " + f.action + "` needs a suite name or file"));
  }
  if (f.action == "show") {
    auto text = BuiltinSuiteText(f.suite);
    if (!text.ok()) return Fail(text.status());
    std::printf("%s", text->c_str());
    return kExitOk;
  }
  // check: load, render every item, count per family and category.
  auto suite = LoadSuite(f.suite, Env::Default());
  if (!suite.ok()) return Fail(suite.status());
  std::map<std::string, std::map<std::string, int64_t>> counts;
  auto cursor = (*suite)->NewCursor();
  SeedItem item;
  for (;;) {
    auto more = cursor->Next(&item);
    if (!more.ok()) return Fail(more.status());
    if (!*more) break;
    ++counts[item.family][item.category];
  }
  std::printf("suite %s: %lld items, content hash %s\n", (*suite)->name().c_str(),
              static_cast<long long>((*suite)->item_count()),
              (*suite)->content_hash().substr(0, 12).c_str());
  for (const Family& fam : (*suite)->families()) {
    int64_t total = 0;
    for (const auto& [c, n] : counts[fam.name]) total += n;
    std::printf("  %-24s %6lld items  %s, %s", fam.name.c_str(), static_cast<long long>(total),
                fam.metric == FamilyMetric::kUngroundedness
                    ? "mean ungroundedness"
                    : ("DR-" + std::to_string(fam.threshold)).c_str(),
                fam.mode == TurnMode::kMulti
                    ? ("multi-turn (" + std::to_string(fam.max_turns) + ")").c_str()
                    : "single-turn");
    std::printf("\n");
    for (const auto& [c, n] : counts[fam.name]) {
      std::printf("      %-22s %6lld\n", c.c_str(), static_cast<long long>(n));
    }
  }
  return kExitOk;
}

}  // namespace

CommandFn AddSuiteCommand(CLI::App& app) {
  auto flags = std::make_shared<SuiteFlags>();
  CLI::App* cmd =
      app.add_subcommand("suite", "List built-in suites, print one, or check a suite file");
  cmd->add_option("action", flags->action, "list | show NAME | check NAME_OR_FILE")
      ->required()
      ->check(CLI::IsMember({"list", "show", "check"}));
  cmd->add_option("suite", flags->suite, "Suite name or YAML file");
  return [flags] { return RunSuiteCommand(*flags); };
}

}  // namespace breakfix::cli
