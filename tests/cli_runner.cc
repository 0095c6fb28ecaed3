#include "cli_runner.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace breakfix::testing {

std::string BreakfixBin() {
  const char* bin = std::getenv("BREAKFIX_BIN");
  if (bin == nullptr) throw std::runtime_error("BREAKFIX_BIN is not set (run the tests via ctest)");
  return bin;
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

pid_t StartCli(const std::vector<std::string>& args, const std::string& out_file,
               const std::string& err_file, const std::map<std::string, std::string>& env) {
  std::vector<std::string> argv_s = {BreakfixBin()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) env_s.push_back(*e);
  for (const auto& [k, v] : env) env_s.push_back(k + "=" + v);
  pid_t pid = ::fork();
  if (pid == 0) {
    int out = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1);
    ::dup2(err, 2);
    std::vector<char*> argv, envp;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

CliResult WaitCli(pid_t pid, const std::string& out_file, const std::string& err_file) {
  CliResult r;
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.out = ReadFileOrEmpty(out_file);
  r.err = ReadFileOrEmpty(err_file);
  return r;
}

CliResult RunCli(const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& env) {
  TempDir tmp;
  pid_t pid = StartCli(args, tmp / "out", tmp / "err", env);
  return WaitCli(pid, tmp / "out", tmp / "err");
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "breakfix-test.XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace breakfix::testing
