// BuildRunManifest: a run's reproducibility manifest from its suite, models and options.
#include <nlohmann/json.hpp>

#include "breakfix/eval.h"
#include "breakfix/manifest.h"
#include "judge/judge_prompt.h"

#ifndef BREAKFIX_VERSION
#define BREAKFIX_VERSION "dev"
#endif

namespace breakfix {
namespace {

constexpr char kLlmJudgePrefix[] = "llm-judge/";
constexpr char kLocalPrefix[] = "local/";

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// host[:port] of a URL, without user info, path or query.
std::string UrlHost(const std::string& url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  size_t end = url.find_first_of("/?#", start);
  if (end == std::string::npos) end = url.size();
  std::string authority = url.substr(start, end - start);
  const size_t at = authority.rfind('@');
  return at == std::string::npos ? authority : authority.substr(at + 1);
}

RunManifestSampling FromOptions(const SamplingOptions& s) {
  RunManifestSampling out;
  out.temperature = s.temperature;
  out.top_p = s.top_p;
  out.max_tokens = s.max_tokens;
  out.stop = s.stop;
  return out;
}

// What a model identity tells about its endpoint: the HTTP client's identities are JSON objects
// {"api", "base_url", "model", "sampling"?}; the engine's read "local/<model id>/<hash>?...".
std::optional<RunManifestEndpoint> EndpointOf(const std::string& identity,
                                              RunManifestSampling* pinned) {
  if (StartsWith(identity, kLocalPrefix)) {
    const std::string rest = identity.substr(sizeof(kLocalPrefix) - 1);
    return RunManifestEndpoint{"local", rest.substr(0, rest.find('/')), ""};
  }
  if (identity.empty() || identity[0] != '{') return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(identity, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  RunManifestEndpoint e;
  auto text = [&](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  e.api = text("api");
  e.model = text("model");
  e.host = UrlHost(text("base_url"));
  auto sampling = j.find("sampling");
  if (sampling != j.end() && sampling->is_object()) {
    auto number = [&](const char* key) -> std::optional<double> {
      auto it = sampling->find(key);
      if (it == sampling->end() || !it->is_number()) return std::nullopt;
      return it->get<double>();
    };
    pinned->temperature = number("temperature");
    pinned->top_p = number("top_p");
    if (std::optional<double> m = number("max_tokens")) pinned->max_tokens = static_cast<int>(*m);
  }
  return e;
}

RunManifestModel ModelEntry(const char* role, const ChatModel& model) {
  RunManifestModel m;
  m.role = role;
  m.name = model.name();
  const std::string identity = model.Identity();
  m.identity = RedactUrlCredentials(identity);
  m.endpoint = EndpointOf(identity, &m.pinned);
  m.system_fingerprints.emplace();  // observed by the run loop
  return m;
}

const char* MetricName(FamilyMetric m) {
  return m == FamilyMetric::kUngroundedness ? "ungroundedness" : "defect_rate";
}

bool Selected(const EvalOptions& options, const std::string& family) {
  if (options.families.empty()) return true;
  for (const std::string& f : options.families) {
    if (f == family) return true;
  }
  return false;
}

// Every rubric a family's items can be judged with, and its version.
std::map<std::string, std::string> RubricVersions(const Family& f) {
  std::map<std::string, std::string> out;
  auto add = [&](const std::string& id) {
    const Rubric* r = FindRubric(id);
    out[id] = r != nullptr ? r->version : "";
  };
  if (f.rubric != "category") {
    add(f.rubric);
  } else if (!f.categories.empty()) {
    for (const std::string& c : f.categories) add(c);
  } else {
    for (const Rubric& r : AllRubrics()) add(r.id);
  }
  return out;
}

}  // namespace

RunManifest BuildRunManifest(const Suite& suite, const EvalModels& models,
                             const EvalOptions& options, const RunRecord& run) {
  RunManifest m;
  m.breakfix_version = BREAKFIX_VERSION;
  m.created_us = run.created_us;
  m.run_id = run.id;
  m.run_name = run.name;
  m.config_hash = run.config_hash;
  m.suite_name = suite.name();
  m.suite_hash = suite.content_hash();
  std::vector<RunManifestDatasetFile> files;
  for (const Suite::DataFile& f : suite.data_files()) {
    if (Selected(options, f.family)) files.push_back({f.family, f.file, f.sha256});
  }
  m.dataset_files = std::move(files);
  for (const Family& f : suite.families()) {
    if (!Selected(options, f.name)) continue;
    RunManifestFamily family;
    family.name = f.name;
    family.metric = MetricName(f.metric);
    family.threshold = f.threshold;
    family.turns = f.mode == TurnMode::kMulti ? "multi" : "single";
    family.max_turns = options.max_turns > 0 ? options.max_turns : f.max_turns;
    family.rubric = f.rubric;
    family.rubric_versions = RubricVersions(f);
    m.families.push_back(std::move(family));
  }
  m.limit_per_family = options.limit_per_family;
  m.seed = options.seed;

  for (const ChatModel* t : models.targets) {
    RunManifestModel entry = ModelEntry("target", *t);
    entry.sampling = FromOptions(options.target_sampling);
    m.models.push_back(std::move(entry));
  }
  if (models.simulator != nullptr) {
    RunManifestModel entry = ModelEntry("simulator", *models.simulator);
    entry.sampling = FromOptions(options.simulator.sampling);
    entry.prompt_version = SimulatorPromptVersion();
    entry.stop_marker = options.simulator.stop_marker;
    m.models.push_back(std::move(entry));
  }
  if (models.judge != nullptr) {
    RunManifestModel entry;
    entry.role = "judge";
    entry.name = models.judge->name();
    const std::string identity = models.judge->Identity();
    entry.identity = RedactUrlCredentials(identity);
    if (StartsWith(identity, kLlmJudgePrefix)) {
      // "llm-judge/<settings version>/<model identity>"
      const size_t slash = identity.find('/', sizeof(kLlmJudgePrefix) - 1);
      if (slash != std::string::npos) {
        entry.endpoint = EndpointOf(identity.substr(slash + 1), &entry.pinned);
      }
      entry.prompt_version = JudgePromptVersion();
      entry.system_fingerprints.emplace();  // each annotation brings its answers' fingerprints
    }
    // Deterministic judges (refusal-prefix, classifier) call no model: no fingerprints.
    m.models.push_back(std::move(entry));
  }
  return m;
}

}  // namespace breakfix
