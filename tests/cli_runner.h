// Test support: run the breakfix CLI as a child process and capture what it prints.
#ifndef BREAKFIX_TESTS_CLI_RUNNER_H_
#define BREAKFIX_TESTS_CLI_RUNNER_H_

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace breakfix::testing {

struct CliResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};

// Path of the breakfix binary (BREAKFIX_BIN, set by CTest).
std::string BreakfixBin();

// Runs `breakfix args...` to completion. `env` entries are added to the child's environment.
CliResult RunCli(const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& env = {});

// Starts `breakfix args...` without waiting; stdout/stderr go to the given files.
pid_t StartCli(const std::vector<std::string>& args, const std::string& out_file,
               const std::string& err_file, const std::map<std::string, std::string>& env = {});

// Waits for a child started with StartCli.
CliResult WaitCli(pid_t pid, const std::string& out_file, const std::string& err_file);

std::string ReadFileOrEmpty(const std::string& path);

// A fresh empty directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace breakfix::testing

#endif  // BREAKFIX_TESTS_CLI_RUNNER_H_
