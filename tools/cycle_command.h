// `breakfix cycle run`, callable from other subcommands (the offline demo runs its cycle with it).
#ifndef BREAKFIX_TOOLS_CYCLE_COMMAND_H_
#define BREAKFIX_TOOLS_CYCLE_COMMAND_H_

#include <string>

namespace breakfix::cli {

struct CycleFlags {
  std::string config;
  std::string store;  // "" = <out_dir>/breakfix.db
  std::string out;    // report folder; "" = <out_dir>
  int threads = 1;
  int max_batch = 32;
  bool quiet = false;        // no progress lines and no printed report
  bool print_report = true;  // print the Markdown report when done (unless quiet)
};

// Runs (or resumes) the cycle in flags.config, then writes cycle-report.md and
// cycle-report.json and prints the Markdown (see the flags). Returns the exit code.
int RunCycleCommand(const CycleFlags& flags);

}  // namespace breakfix::cli

#endif  // BREAKFIX_TOOLS_CYCLE_COMMAND_H_
