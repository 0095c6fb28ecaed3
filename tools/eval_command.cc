// breakfix eval: run (or resume) a suite against one or more targets, judge, store and report.
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <cstdio>
#include <optional>
#include <set>

#include "breakfix/html_report.h"
#include "breakfix/report.h"
#include "breakfix/suite.h"
#include "cli_common.h"

namespace breakfix::cli {
namespace {

struct EvalFlags {
  std::string config;
  std::string suite = "rai";
  std::vector<std::string> targets;
  std::string simulator;
  std::string judge;
  std::string store = "breakfix.db";
  std::string out;
  std::string families;
  std::string judge_validation;
  bool no_progress = false;
  bool quiet = false;
  bool dry_run = false;
  EvalOptions options;
};

// Reads a scalar of type T, with an error naming file:line:column and the expected type.
template <typename T>
Result<T> Scalar(const YAML::Node& node, const std::string& file, const std::string& key,
                 const char* expected) {
  if (!node.IsScalar()) {
    return Status::InvalidArgument(YamlWhere(file, node.Mark()) + ": \"" + key + "\" must be " +
                                   expected);
  }
  try {
    return node.as<T>();
  } catch (const YAML::Exception&) {
    return Status::InvalidArgument(YamlWhere(file, node.Mark()) + ": \"" + key + "\" must be " +
                                   expected + ", found \"" + node.Scalar() + "\"");
  }
}

Result<std::vector<std::string>> StringList(const YAML::Node& node, const std::string& file,
                                            const std::string& key) {
  std::vector<std::string> out;
  if (node.IsScalar()) return SplitList(node.Scalar());
  if (!node.IsSequence()) {
    return Status::InvalidArgument(YamlWhere(file, node.Mark()) + ": \"" + key +
                                   "\" must be a list of strings");
  }
  for (const auto& v : node) {
    BF_ASSIGN_OR_RETURN(std::string s, Scalar<std::string>(v, file, key, "a string"));
    out.push_back(s);
  }
  return out;
}

Status LoadConfig(CLI::App* cmd, EvalFlags& flags, ModelTable& models, Env* env) {
  if (flags.config.empty()) return Status::OK();
  const std::string& file = flags.config;
  auto read = env->ReadFile(file);
  if (!read.ok()) return Status::InvalidArgument("--config: " + read.status().message());
  const std::string& text = *read;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return Status::InvalidArgument(YamlWhere(file, e.mark) + ": " + e.msg);
  }
  if (!root.IsMap()) {
    return Status::InvalidArgument(file + ":1:1: the configuration must be a map of settings");
  }
  auto given = [&](const char* flag) { return cmd->count(flag) > 0; };
  static const std::set<std::string> kKeys = {
      "suite", "store",          "out",           "run",    "seed",    "families",
      "limit", "max_turns",      "max_in_flight", "models", "targets", "simulator",
      "judge", "target_sampling"};
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (!kKeys.count(key)) {
      std::string allowed;
      for (const auto& k : kKeys) allowed += (allowed.empty() ? "" : ", ") + k;
      return Status::InvalidArgument(YamlWhere(file, kv.first.Mark()) + ": unknown setting \"" +
                                     key + "\"; expected one of: " + allowed);
    }
    if (key == "models") {
      BF_ASSIGN_OR_RETURN(ModelTable table, ModelTableFromYaml(v, file));
      for (auto& [name, options] : table) models[name] = std::move(options);
    } else if (key == "suite" && !given("--suite")) {
      BF_ASSIGN_OR_RETURN(flags.suite, Scalar<std::string>(v, file, key, "a suite name or path"));
    } else if (key == "store" && !given("--store")) {
      BF_ASSIGN_OR_RETURN(flags.store, Scalar<std::string>(v, file, key, "a path"));
    } else if (key == "out" && !given("--out")) {
      BF_ASSIGN_OR_RETURN(flags.out, Scalar<std::string>(v, file, key, "a directory"));
    } else if (key == "run" && !given("--run")) {
      BF_ASSIGN_OR_RETURN(flags.options.run_name, Scalar<std::string>(v, file, key, "a name"));
    } else if (key == "seed" && !given("--seed")) {
      BF_ASSIGN_OR_RETURN(flags.options.seed,
                          Scalar<uint64_t>(v, file, key, "a non-negative integer"));
    } else if (key == "families" && !given("--families")) {
      BF_ASSIGN_OR_RETURN(flags.options.families, StringList(v, file, key));
    } else if (key == "limit" && !given("--limit")) {
      BF_ASSIGN_OR_RETURN(flags.options.limit_per_family,
                          Scalar<int64_t>(v, file, key, "a non-negative integer"));
    } else if (key == "max_turns" && !given("--max-turns")) {
      BF_ASSIGN_OR_RETURN(flags.options.max_turns, Scalar<int>(v, file, key, "an integer"));
    } else if (key == "max_in_flight" && !given("--max-in-flight")) {
      BF_ASSIGN_OR_RETURN(flags.options.max_in_flight, Scalar<int>(v, file, key, "an integer"));
    } else if (key == "targets" && !given("--target")) {
      BF_ASSIGN_OR_RETURN(flags.targets, StringList(v, file, key));
    } else if (key == "simulator" && !given("--simulator")) {
      BF_ASSIGN_OR_RETURN(flags.simulator,
                          Scalar<std::string>(v, file, key, "a model name or spec"));
    } else if (key == "judge" && !given("--judge")) {
      BF_ASSIGN_OR_RETURN(flags.judge,
                          Scalar<std::string>(v, file, key, "a model name, spec or \"refusal\""));
    } else if (key == "target_sampling") {
      if (!v.IsMap()) {
        return Status::InvalidArgument(YamlWhere(file, v.Mark()) +
                                       ": \"target_sampling\" must be a map");
      }
      for (const auto& s : v) {
        const std::string sk = s.first.as<std::string>();
        SamplingOptions& so = flags.options.target_sampling;
        if (sk == "temperature") {
          BF_ASSIGN_OR_RETURN(so.temperature, Scalar<double>(s.second, file, sk, "a number"));
        } else if (sk == "top_p") {
          BF_ASSIGN_OR_RETURN(so.top_p, Scalar<double>(s.second, file, sk, "a number"));
        } else if (sk == "max_tokens") {
          BF_ASSIGN_OR_RETURN(so.max_tokens, Scalar<int>(s.second, file, sk, "an integer"));
        } else {
          return Status::InvalidArgument(YamlWhere(file, s.first.Mark()) +
                                         ": unknown sampling setting \"" + sk +
                                         "\"; expected temperature, top_p or max_tokens");
        }
      }
    }
  }
  return Status::OK();
}

Status Validate(const EvalFlags& f) {
  const EvalOptions& o = f.options;
  if (f.targets.empty()) {
    return Status::InvalidArgument("no target: give --target SPEC (or `targets:` in --config)");
  }
  if (f.judge.empty()) {
    return Status::InvalidArgument("no judge: give --judge SPEC or --judge refusal");
  }
  if (o.limit_per_family < 0) return Status::InvalidArgument("--limit must be >= 0");
  if (o.max_turns < 0 || o.max_turns > 50)
    return Status::InvalidArgument("--max-turns must be 0..50");
  if (o.max_in_flight < 1 || o.max_in_flight > 100000) {
    return Status::InvalidArgument("--max-in-flight must be 1..100000");
  }
  if (o.target_sampling.max_tokens < 1) return Status::InvalidArgument("--max-tokens must be >= 1");
  if (o.target_sampling.temperature < 0 || o.target_sampling.temperature > 2) {
    return Status::InvalidArgument("--temperature must be 0..2");
  }
  return Status::OK();
}

int RunEvalCommand(CLI::App* cmd, EvalFlags& flags) {
  Env* env = Env::Default();
  ModelTable table;
  Status s = LoadConfig(cmd, flags, table, env);
  if (!s.ok()) return Fail(s);
  if (!flags.families.empty()) flags.options.families = SplitList(flags.families);
  s = Validate(flags);
  if (!s.ok()) return Fail(s);

  auto suite = LoadSuite(flags.suite, env);
  if (!suite.ok()) return Fail(suite.status());
  for (const std::string& family : flags.options.families) {
    if ((*suite)->FindFamily(family) == nullptr) {
      std::string known;
      for (const Family& f : (*suite)->families()) known += (known.empty() ? "" : ", ") + f.name;
      return Fail(Status::InvalidArgument("--families: suite \"" + (*suite)->name() +
                                          "\" has no family \"" + family + "\"; it has: " + known));
    }
  }

  auto models = ModelSet::Create(env);
  if (!models.ok()) return Fail(models.status());
  EvalModels eval_models;
  for (size_t i = 0; i < flags.targets.size(); ++i) {
    auto opts =
        ResolveEndpoint(flags.targets[i], table,
                        flags.targets.size() == 1 ? "target" : "target" + std::to_string(i + 1));
    if (!opts.ok()) return Fail(opts.status().WithContext("--target"));
    auto model = (*models)->AddModel(*opts);
    if (!model.ok()) return Fail(model.status().WithContext("--target"));
    eval_models.targets.push_back(*model);
  }
  if (!flags.simulator.empty()) {
    auto opts = ResolveEndpoint(flags.simulator, table, "simulator");
    if (!opts.ok()) return Fail(opts.status().WithContext("--simulator"));
    auto model = (*models)->AddModel(*opts);
    if (!model.ok()) return Fail(model.status().WithContext("--simulator"));
    eval_models.simulator = *model;
  }
  auto judge = (*models)->AddJudge(flags.judge, table);
  if (!judge.ok()) return Fail(judge.status().WithContext("--judge"));
  eval_models.judge = *judge;

  if (flags.dry_run) {
    std::printf("%s\n", RunConfigJson(**suite, eval_models, flags.options).c_str());
    return kExitOk;
  }

  std::optional<JudgeValidation> validation;
  if (!flags.judge_validation.empty()) {
    auto read = ReadJudgeValidation(flags.judge_validation);
    if (!read.ok()) return FailLookup(read.status());
    validation = std::move(*read);
  }
  auto store = OpenStore(flags.store, /*create=*/true);
  if (!store.ok()) return Fail(store.status());

  StopOnSignals signals;
  ProgressPrinter printer(!flags.no_progress && !flags.quiet);
  auto result = RunEval(
      **suite, eval_models, store->get(), flags.options, env,
      [&](const EvalProgress& p) { printer.Update(p); }, signals.flag());
  // No callback may arrive after this point: cancel what is still queued or on the wire.
  (*models)->CancelAll();
  signals.Restore();
  if (!result.ok()) return Fail(result.status());

  ReportOptions report_options;
  report_options.judge_validation = validation ? &*validation : nullptr;
  report_options.judge_validation_file = flags.judge_validation;
  auto report = BuildReport(store->get(), result->run.name, report_options);
  if (!report.ok()) return Fail(report.status());
  const std::string out = flags.out.empty() ? "breakfix-reports/" + result->run.name : flags.out;
  auto written = WriteReportFiles(store->get(), *report, out, env);
  if (!written.ok()) return Fail(written.status());
  {
    // The self-contained page with charts and the conversation browser.
    HtmlReportInput page;
    page.title = "breakfix report: " + report->run.name;
    page.runs.push_back(&*report);
    Store* s = store->get();
    const RunReport* r = &*report;
    page.conversations = [s, r](const std::function<Status(const HtmlConversation&)>& emit) {
      return ForEachRunConversation(s, *r, emit);
    };
    const std::string html = out + "/report.html";
    if (Status st = WriteHtmlReport(page, HtmlReportOptions{}, html); !st.ok()) return Fail(st);
    written->push_back(html);
  }
  if (!flags.quiet) {
    std::printf("%s", RenderConsoleSummary(*report).c_str());
    for (const std::string& path : *written) std::printf("wrote %s\n", path.c_str());
  }
  const EvalProgress& p = result->progress;
  if (signals.stopped()) {
    std::fprintf(stderr,
                 "breakfix: interrupted with %lld of %lld units done; run the same command again "
                 "to resume\n",
                 static_cast<long long>(p.done), static_cast<long long>(p.total));
    return kExitFailed;
  }
  if (p.done < p.total) {
    std::fprintf(stderr,
                 "breakfix: %lld of %lld units could not be finished (first error: %s); run the "
                 "same command again to retry them\n",
                 static_cast<long long>(p.total - p.done), static_cast<long long>(p.total),
                 result->first_error.ToString().c_str());
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace

CommandFn AddEvalCommand(CLI::App& app) {
  auto flags = std::make_shared<EvalFlags>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Simulate conversations of a suite with each target, judge them, store and report");
  cmd->add_option("--config", flags->config,
                  "YAML file with settings and named models (flags override it)");
  cmd->add_option("--suite", flags->suite, "Built-in suite name or suite YAML path")
      ->capture_default_str();
  cmd->add_option(
      "--target", flags->targets,
      "Model under test: a configured name, url=...,model=...[,key_env=...], or local:PATH "
      "(repeat for several)");
  cmd->add_option("--simulator", flags->simulator, "Model that plays the user (multi-turn)");
  cmd->add_option(
      "--judge", flags->judge,
      "Judge: model name or spec (LLM judge), \"refusal\", or \"classifier:MODEL.json\"");
  cmd->add_option("--store", flags->store, "SQLite store (created if missing)")
      ->capture_default_str();
  cmd->add_option("--out", flags->out, "Report directory (default breakfix-reports/<run>)");
  cmd->add_option("--run", flags->options.run_name,
                  "Run name (default: suite + configuration hash, so reruns resume)");
  cmd->add_option("--seed", flags->options.seed, "Seed sent with every request")
      ->capture_default_str();
  cmd->add_option("--judge-validation", flags->judge_validation,
                  "A judge validation file (breakfix judge validate --out): the reports add "
                  "Rogan-Gladen judge-corrected rates");
  cmd->add_option("--families", flags->families, "Comma-separated families to run (default all)");
  cmd->add_option("--limit", flags->options.limit_per_family,
                  "First N items of each family (0 = all)")
      ->capture_default_str();
  cmd->add_option("--max-turns", flags->options.max_turns,
                  "Override every multi-turn family's max_turns (0 = keep)")
      ->capture_default_str();
  cmd->add_option("--max-in-flight", flags->options.max_in_flight,
                  "Units active at once (each endpoint's own concurrency limit also applies)")
      ->capture_default_str();
  cmd->add_option("--temperature", flags->options.target_sampling.temperature,
                  "Target sampling temperature")
      ->capture_default_str();
  cmd->add_option("--max-tokens", flags->options.target_sampling.max_tokens,
                  "Target max completion tokens")
      ->capture_default_str();
  cmd->add_flag("--no-progress", flags->no_progress, "No progress line");
  cmd->add_flag("--quiet", flags->quiet, "Print nothing but errors");
  cmd->add_flag("--dry-run", flags->dry_run,
                "Print the run configuration (JSON) and exit without calling any model");
  return [cmd, flags] { return RunEvalCommand(cmd, *flags); };
}

}  // namespace breakfix::cli
