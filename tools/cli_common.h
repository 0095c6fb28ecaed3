// Shared plumbing of the breakfix subcommands: exit codes, model construction from specs and
// configuration files, the progress line.
#ifndef BREAKFIX_TOOLS_CLI_COMMON_H_
#define BREAKFIX_TOOLS_CLI_COMMON_H_

#include <yaml-cpp/yaml.h>
#include <CLI/CLI.hpp>
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "breakfix/engine.h"
#include "breakfix/eval.h"
#include "breakfix/judge.h"
#include "breakfix/openai_client.h"
#include "breakfix/status.h"
#include "breakfix/store.h"

namespace breakfix::cli {

// Exit codes of every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // the run failed or is incomplete
inline constexpr int kExitUsage = 2;   // bad flags, bad input files

// Prints "breakfix: <message>" to stderr and returns the exit code for the status.
int Fail(const Status& status);
// Like Fail, for lookups of things the user named (a run, a store): not finding them is an input
// error (exit code 2).
int FailLookup(const Status& status);

// Registers subcommands. Each returns the callback run when its subcommand is chosen; the
// callback's return value is the process exit code.
using CommandFn = std::function<int()>;
CommandFn AddEvalCommand(CLI::App& app);
CommandFn AddReportCommand(CLI::App& app);
CommandFn AddCompareCommand(CLI::App& app);
CommandFn AddRunsCommand(CLI::App& app);
CommandFn AddSuiteCommand(CLI::App& app);
CommandFn AddServeCommand(CLI::App& app);
CommandFn AddJudgeCommand(CLI::App& app);
CommandFn AddCurateCommand(CLI::App& app);
CommandFn AddTrainCommand(CLI::App& app);
CommandFn AddCycleCommand(CLI::App& app);
CommandFn AddDemoCommand(CLI::App& app);
CommandFn AddRedteamCommand(CLI::App& app);
CommandFn AddReplayCommand(CLI::App& app);
CommandFn AddGateCommand(CLI::App& app);
CommandFn AddImportCommand(CLI::App& app);

// Models described in a configuration file's `models:` map, by name.
using ModelTable = std::map<std::string, EndpointOptions>;

// An in-process model: "local:PATH[,key=value...]" where PATH is a .gguf file or a Hugging Face
// model directory. Keys: name (display name), chat_template (a built-in template name instead of
// the detected one), max_batch, context_length, threads (see EngineOptions for each default).
struct LocalModelSpec {
  std::string path;
  std::string name;  // "" = the role's default name
  EngineOptions engine;
};
inline constexpr char kLocalSpecPrefix[] = "local:";
inline constexpr char kClassifierSpecPrefix[] = "classifier:";
bool IsLocalSpec(const std::string& spec);
// Errors name the key and what was expected.
Result<LocalModelSpec> ParseLocalSpec(const std::string& spec);

// Resolves a model spec: a name from `table`, a local spec (see ParseLocalSpec), or an inline
// endpoint spec (see ParseEndpointSpec). `default_name` names a spec that gives no name=.
// A local spec comes back with the whole spec in `base_url` (it starts with "local:"), which
// ModelSet::AddModel recognises.
Result<EndpointOptions> ResolveEndpoint(const std::string& spec, const ModelTable& table,
                                        const std::string& default_name);

// "file:line:column" of a YAML node, 1-based.
std::string YamlWhere(const std::string& file, const YAML::Mark& mark);

// A configuration file's `models:` map: name -> an inline spec string, or a map of spec keys
// (`local: PATH` for an in-process model, `headers:` for extra request headers). Errors name
// file:line:column.
Result<ModelTable> ModelTableFromYaml(const YAML::Node& models, const std::string& file);

// Reads the `models:` map of a configuration file (the file `breakfix eval --config` takes);
// other top-level settings are left to the commands they belong to. "" gives an empty table.
Result<ModelTable> LoadModelTable(const std::string& file, Env* env);

// Owns the HTTP client, the local engines and every model and judge built for a command.
// Each local model file is loaded once and shared by every role that names it.
class ModelSet {
 public:
  static Result<std::unique_ptr<ModelSet>> Create(Env* env);
  ~ModelSet();
  // An HTTP endpoint, or a local model when options.base_url is a local spec.
  Result<ChatModel*> AddModel(const EndpointOptions& options);
  // "refusal" gives the refusal-prefix judge, "classifier:PATH" a trained classifier judge
  // (breakfix judge train); anything else an LLM judge on that endpoint.
  Result<Judge*> AddJudge(const std::string& spec, const ModelTable& table);
  HttpClient* client() { return client_.get(); }
  // Cancels every queued and in-flight call; returns when no callback can arrive any more.
  // Local engines are shut down (their models fail later calls).
  void CancelAll();

 private:
  struct LoadedEngine {
    EngineOptions options;
    std::shared_ptr<Engine> engine;
  };
  Result<std::shared_ptr<Engine>> LocalEngine(const LocalModelSpec& spec);

  std::unique_ptr<HttpClient> client_;
  std::map<std::string, LoadedEngine> engines_;  // by canonical path
  std::vector<std::unique_ptr<ChatModel>> models_;
  std::vector<std::unique_ptr<Judge>> judges_;
};

// Opens the store at `path`, creating it when `create` is set; otherwise a missing file is a
// NotFound error that says how to make one.
Result<std::unique_ptr<Store>> OpenStore(const std::string& path, bool create);

// Prints the live progress line: rewritten in place on a TTY, a plain line every
// `plain_interval_s` seconds otherwise.
class ProgressPrinter {
 public:
  ProgressPrinter(bool enabled, double plain_interval_s = 10);
  void Update(const EvalProgress& p);

 private:
  bool enabled_;
  bool tty_;
  double plain_interval_s_;
  double last_plain_s_ = -1e9;
};

// Ctrl-C and SIGTERM for a long command, from construction until Restore() (or destruction):
// the first signal sets the stop flag, so work in flight finishes and is stored; a second one
// leaves at once (committed work is safe: store transactions roll back, checkpoints appear by
// rename). The flag stays readable after Restore().
class StopOnSignals {
 public:
  StopOnSignals();
  ~StopOnSignals() { Restore(); }
  StopOnSignals(const StopOnSignals&) = delete;
  StopOnSignals& operator=(const StopOnSignals&) = delete;

  const std::atomic<bool>* flag() const;
  bool stopped() const { return flag()->load(); }
  void Restore();  // default handlers again

 private:
  bool installed_ = true;
};

// Splits "a,b,c" into its non-empty parts.
std::vector<std::string> SplitList(const std::string& text);

}  // namespace breakfix::cli

#endif  // BREAKFIX_TOOLS_CLI_COMMON_H_
