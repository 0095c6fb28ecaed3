// breakfix: the command-line entry point. Each subcommand lives in its own *_command.cc.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli_common.h"

int main(int argc, char** argv) {
  using namespace breakfix::cli;
  CLI::App app{
      "breakfix: measure and fix LLM safety the phi-3 way (simulate, judge, measure, report)"};
  app.set_version_flag("--version", std::string("breakfix ") + BREAKFIX_VERSION);
  app.require_subcommand(1);
  std::map<std::string, CommandFn> commands;
  commands["eval"] = AddEvalCommand(app);
  commands["report"] = AddReportCommand(app);
  commands["compare"] = AddCompareCommand(app);
  commands["runs"] = AddRunsCommand(app);
  commands["suite"] = AddSuiteCommand(app);
  commands["serve"] = AddServeCommand(app);
  commands["judge"] = AddJudgeCommand(app);
  commands["curate"] = AddCurateCommand(app);
  commands["train"] = AddTrainCommand(app);
  commands["cycle"] = AddCycleCommand(app);
  commands["demo"] = AddDemoCommand(app);
  commands["redteam"] = AddRedteamCommand(app);
  commands["replay"] = AddReplayCommand(app);
  commands["gate"] = AddGateCommand(app);
  commands["import"] = AddImportCommand(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  for (CLI::App* sub : app.get_subcommands()) {
    return commands.at(sub->get_name())();
  }
  return kExitUsage;
}
