// breakfix report: show or write the reports of a stored run.
#include <cstdio>

#include "breakfix/report.h"
#include "cli_common.h"

namespace breakfix::cli {
namespace {

struct ReportFlags {
  std::string run;
  std::string store = "breakfix.db";
  std::string out;
  std::string format = "console";
  ReportOptions options;
};

int RunReportCommand(const ReportFlags& f) {
  auto store = OpenStore(f.store, /*create=*/false);
  if (!store.ok()) return FailLookup(store.status());
  auto report = BuildReport(store->get(), f.run, f.options);
  if (!report.ok()) return FailLookup(report.status());
  if (f.format == "console") {
    std::printf("%s", RenderConsoleSummary(*report).c_str());
  } else if (f.format == "markdown") {
    std::printf("%s", RenderMarkdown(*report).c_str());
  } else if (f.format == "json") {
    std::printf("%s", RenderJson(*report).c_str());
  }
  if (!f.out.empty()) {
    auto written = WriteReportFiles(store->get(), *report, f.out, Env::Default());
    if (!written.ok()) return Fail(written.status());
    for (const std::string& path : *written) std::fprintf(stderr, "wrote %s\n", path.c_str());
  }
  return kExitOk;
}

}  // namespace

CommandFn AddReportCommand(CLI::App& app) {
  auto flags = std::make_shared<ReportFlags>();
  CLI::App* cmd = app.add_subcommand("report", "Show a stored run's results; write report files");
  cmd->add_option("run", flags->run, "Run name or id (see `breakfix runs`)")->required();
  cmd->add_option("--store", flags->store, "SQLite store")->capture_default_str();
  cmd->add_option("--out", flags->out, "Also write report.md, report.json, annotations.csv here");
  cmd->add_option("--format", flags->format, "What to print: console, markdown or json")
      ->check(CLI::IsMember({"console", "markdown", "json"}))
      ->capture_default_str();
  cmd->add_option("--bootstrap", flags->options.bootstrap_resamples,
                  "Bootstrap resamples for intervals of means")
      ->check(CLI::Range(100, 1000000))
      ->capture_default_str();
  return [flags] { return RunReportCommand(*flags); };
}

}  // namespace breakfix::cli
