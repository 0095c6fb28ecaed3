// breakfix report: show or write the reports of a stored run.
#include <cstdio>
#include <optional>

#include "breakfix/html_report.h"
#include "breakfix/report.h"
#include "cli_common.h"

namespace breakfix::cli {
namespace {

struct ReportFlags {
  std::string run;
  std::string store = "breakfix.db";
  std::string out;
  std::string html;
  HtmlReportOptions html_options;
  std::string judge_validation;
  std::string format = "console";
  ReportOptions options;
};

int RunReportCommand(ReportFlags f) {
  auto store = OpenStore(f.store, /*create=*/false);
  if (!store.ok()) return FailLookup(store.status());
  std::optional<JudgeValidation> validation;
  if (!f.judge_validation.empty()) {
    auto read = ReadJudgeValidation(f.judge_validation);
    if (!read.ok()) return FailLookup(read.status());
    validation = std::move(*read);
    f.options.judge_validation = &*validation;
    f.options.judge_validation_file = f.judge_validation;
  }
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
  if (!f.html.empty()) {
    HtmlReportInput input;
    input.title = "breakfix report: " + report->run.name;
    input.runs.push_back(&*report);
    Store* s = store->get();
    const RunReport* r = &*report;
    input.conversations = [s, r](const std::function<Status(const HtmlConversation&)>& emit) {
      return ForEachRunConversation(s, *r, emit);
    };
    Status written = WriteHtmlReport(input, f.html_options, f.html);
    if (!written.ok()) return Fail(written);
    std::fprintf(stderr, "wrote %s\n", f.html.c_str());
  }
  return kExitOk;
}

}  // namespace

CommandFn AddReportCommand(CLI::App& app) {
  auto flags = std::make_shared<ReportFlags>();
  CLI::App* cmd = app.add_subcommand("report", "Show a stored run's results; write report files");
  cmd->add_option("run", flags->run, "Run name or id (see `breakfix runs`)")->required();
  cmd->add_option("--store", flags->store, "SQLite store")->capture_default_str();
  cmd->add_option("--out", flags->out,
                  "Also write report.md, report.json, annotations.csv, manifest.json here");
  cmd->add_option("--html", flags->html,
                  "Also write a self-contained HTML report (tables, charts, conversation browser)");
  cmd->add_option("--judge-validation", flags->judge_validation,
                  "A judge validation file (breakfix judge validate --out): adds Rogan-Gladen "
                  "judge-corrected rates with intervals that include the validation's uncertainty");
  cmd->add_option("--html-page-size", flags->html_options.page_size,
                  "Conversations per page in the HTML report's browser")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
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
