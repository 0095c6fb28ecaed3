#include "cli_common.h"

#include "breakfix/classifier_judge.h"
#include "engine_plugin.h"

#include <unistd.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

namespace breakfix::cli {

int Fail(const Status& status) {
  std::fprintf(stderr, "breakfix: %s\n", status.message().c_str());
  return status.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailed;
}

int FailLookup(const Status& status) {
  if (status.code() == StatusCode::kNotFound) {
    return Fail(Status::InvalidArgument(status.message()));
  }
  return Fail(status);
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string part = text.substr(start, end - start);
    while (!part.empty() && part.front() == ' ') part.erase(part.begin());
    while (!part.empty() && part.back() == ' ') part.pop_back();
    if (!part.empty()) out.push_back(part);
    start = end + 1;
  }
  return out;
}

bool IsLocalSpec(const std::string& spec) { return spec.rfind(kLocalSpecPrefix, 0) == 0; }

namespace {

Result<int> LocalSpecInt(const std::string& key, const std::string& value, int min, int max) {
  int v = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (value.empty() || ec != std::errc() || p != value.data() + value.size() || v < min ||
      v > max) {
    return Status::InvalidArgument("local model spec key \"" + key + "\": expected an integer " +
                                   std::to_string(min) + ".." + std::to_string(max) + ", got \"" +
                                   value + "\"");
  }
  return v;
}

}  // namespace

Result<LocalModelSpec> ParseLocalSpec(const std::string& spec) {
  constexpr const char* kKeys = "name, chat_template, max_batch, context_length, threads, device";
  if (!IsLocalSpec(spec)) {
    return Status::InvalidArgument("\"" + spec + "\" is not a local model spec (local:PATH)");
  }
  std::vector<std::string> parts;
  const std::string body = spec.substr(std::strlen(kLocalSpecPrefix));
  size_t start = 0;
  while (true) {
    const size_t comma = body.find(',', start);
    parts.push_back(body.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  LocalModelSpec out;
  out.path = parts[0];
  if (out.path.empty()) {
    return Status::InvalidArgument("local model spec \"" + spec +
                                   "\": no path (expected local:PATH to a .gguf file or a "
                                   "Hugging Face model directory)");
  }
  std::set<std::string> seen;
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    if (eq == std::string::npos) {
      return Status::InvalidArgument("local model spec: \"" + part +
                                     "\" is not key=value; keys: " + kKeys);
    }
    const std::string key = part.substr(0, eq), value = part.substr(eq + 1);
    if (!seen.insert(key).second) {
      return Status::InvalidArgument("local model spec: key \"" + key + "\" is given twice");
    }
    if (key == "name") {
      out.name = value;
    } else if (key == "chat_template") {
      out.engine.chat_template = value;  // the engine checks the name when it loads
    } else if (key == "max_batch") {
      BF_ASSIGN_OR_RETURN(out.engine.max_batch, LocalSpecInt(key, value, 1, 1024));
    } else if (key == "context_length") {
      BF_ASSIGN_OR_RETURN(out.engine.context_length, LocalSpecInt(key, value, 0, 1 << 20));
    } else if (key == "threads") {
      BF_ASSIGN_OR_RETURN(out.engine.threads, LocalSpecInt(key, value, 1, 1024));
    } else if (key == "device") {
      out.engine.device = value;  // the engine checks that the device exists when it loads
    } else {
      return Status::InvalidArgument("local model spec: unknown key \"" + key +
                                     "\"; keys: " + kKeys);
    }
  }
  return out;
}

Result<EndpointOptions> ResolveEndpoint(const std::string& spec, const ModelTable& table,
                                        const std::string& default_name) {
  auto it = table.find(spec);
  if (it != table.end()) return it->second;
  if (IsLocalSpec(spec)) {
    BF_ASSIGN_OR_RETURN(LocalModelSpec local, ParseLocalSpec(spec));
    EndpointOptions options;
    options.name = local.name.empty() ? default_name : local.name;
    options.base_url = spec;
    return options;
  }
  if (spec.find('=') == std::string::npos && spec.find("://") == std::string::npos) {
    std::string known;
    for (const auto& [name, opts] : table) known += (known.empty() ? "" : ", ") + name;
    return Status::InvalidArgument(
        "model \"" + spec + "\" is neither a name from the configuration's models" +
        (known.empty() ? std::string() : " (" + known + ")") +
        " nor an endpoint spec like url=http://127.0.0.1:8000/v1,model=NAME (or local:PATH for a "
        "model file run in-process)");
  }
  BF_ASSIGN_OR_RETURN(EndpointOptions options, ParseEndpointSpec(spec));
  if (options.name.empty()) options.name = default_name;
  return options;
}

Result<std::unique_ptr<ModelSet>> ModelSet::Create(Env* env) {
  auto set = std::make_unique<ModelSet>();
  BF_ASSIGN_OR_RETURN(set->client_, HttpClient::Create(HttpClientOptions{}, env));
  return set;
}

ModelSet::~ModelSet() {
  // Judges use models, models use the client and the engines: tear down in that order.
  judges_.clear();
  models_.clear();
  engines_.clear();
  client_.reset();
}

Result<std::shared_ptr<Engine>> ModelSet::LocalEngine(const LocalModelSpec& spec) {
  std::error_code ec;
  std::string key = std::filesystem::weakly_canonical(spec.path, ec).string();
  if (ec || key.empty()) key = spec.path;
  auto it = engines_.find(key);
  if (it != engines_.end()) {
    const EngineOptions& have = it->second.options;
    const EngineOptions& want = spec.engine;
    if (have.chat_template != want.chat_template || have.max_batch != want.max_batch ||
        have.context_length != want.context_length || have.threads != want.threads ||
        have.device != want.device) {
      return Status::InvalidArgument(
          "local:" + spec.path + " is already loaded with other engine settings (chat_template=" +
          (have.chat_template.empty() ? "detected" : have.chat_template) +
          ", max_batch=" + std::to_string(have.max_batch) +
          ", context_length=" + std::to_string(have.context_length) +
          ", threads=" + std::to_string(have.threads) + ", device=" + have.device +
          "); one model file is loaded once, so give every role the same settings");
    }
    return it->second.engine;
  }
  auto engine = LoadEngineViaPlugin(spec.path, spec.engine);
  if (!engine.ok()) {
    // The user named the file: a missing one is an input error like a bad flag.
    const Status& s = engine.status();
    return Status(s.code() == StatusCode::kNotFound ? StatusCode::kInvalidArgument : s.code(),
                  s.message());
  }
  std::shared_ptr<Engine> shared = std::move(engine).value();
  engines_[key] = LoadedEngine{spec.engine, shared};
  return shared;
}

Result<ChatModel*> ModelSet::AddModel(const EndpointOptions& options) {
  if (IsLocalSpec(options.base_url)) {
    BF_ASSIGN_OR_RETURN(LocalModelSpec spec, ParseLocalSpec(options.base_url));
    BF_ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, LocalEngine(spec));
    BF_ASSIGN_OR_RETURN(auto model, NewLocalChatModelViaPlugin(std::move(engine), options.name));
    models_.push_back(std::move(model));
    return models_.back().get();
  }
  BF_ASSIGN_OR_RETURN(auto model, client_->NewChatModel(options));
  models_.push_back(std::move(model));
  return models_.back().get();
}

Result<Judge*> ModelSet::AddJudge(const std::string& spec, const ModelTable& table) {
  if (spec == "refusal") {
    judges_.push_back(NewRefusalJudge());
    return judges_.back().get();
  }
  if (spec.rfind(kClassifierSpecPrefix, 0) == 0) {
    BF_ASSIGN_OR_RETURN(std::unique_ptr<Judge> judge,
                        LoadClassifierJudge(spec.substr(sizeof(kClassifierSpecPrefix) - 1)));
    judges_.push_back(std::move(judge));
    return judges_.back().get();
  }
  BF_ASSIGN_OR_RETURN(EndpointOptions options, ResolveEndpoint(spec, table, "judge"));
  BF_ASSIGN_OR_RETURN(ChatModel * model, AddModel(options));
  LlmJudgeOptions judge_options;
  judge_options.name = options.name;
  judges_.push_back(NewLlmJudge(model, judge_options));
  return judges_.back().get();
}

void ModelSet::CancelAll() {
  if (client_) client_->CancelAll();
  // An engine cannot cancel one caller's work wholesale; shutting it down cancels everything
  // and returns after the last callback.
  for (auto& [path, loaded] : engines_) loaded.engine->Shutdown(/*finish_in_flight=*/false);
}

std::string YamlWhere(const std::string& file, const YAML::Mark& mark) {
  return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

namespace {

Result<std::string> YamlScalar(const YAML::Node& node, const std::string& file,
                               const std::string& key, const char* expected) {
  if (!node.IsScalar()) {
    return Status::InvalidArgument(YamlWhere(file, node.Mark()) + ": \"" + key + "\" must be " +
                                   expected);
  }
  return node.Scalar();
}

Result<EndpointOptions> ModelFromYaml(const std::string& name, const YAML::Node& node,
                                      const std::string& file) {
  std::string spec;
  std::string local_path;
  if (node.IsScalar()) {
    spec = node.Scalar();
  } else if (node.IsMap()) {
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      if (key == "local") {
        BF_ASSIGN_OR_RETURN(local_path, YamlScalar(kv.second, file, key, "a model path"));
        continue;
      }
      if (key == "headers" && kv.second.IsMap()) {
        for (const auto& h : kv.second) {
          BF_ASSIGN_OR_RETURN(std::string value,
                              YamlScalar(h.second, file, "header value", "a scalar"));
          spec += (spec.empty() ? "" : ",") + std::string("header.") + h.first.as<std::string>() +
                  "=" + value;
        }
        continue;
      }
      BF_ASSIGN_OR_RETURN(std::string value, YamlScalar(kv.second, file, key, "a scalar"));
      if (value.find(',') != std::string::npos) {
        return Status::InvalidArgument(YamlWhere(file, kv.second.Mark()) + ": value of \"" + key +
                                       "\" must not contain a comma");
      }
      spec += (spec.empty() ? "" : ",") + key + "=" + value;
    }
  } else {
    return Status::InvalidArgument(YamlWhere(file, node.Mark()) + ": model \"" + name +
                                   "\" must be a map (url, model, key_env, ...) or a spec string");
  }
  if (!local_path.empty()) {
    spec = std::string(kLocalSpecPrefix) + local_path + (spec.empty() ? "" : "," + spec);
  }
  auto parsed = IsLocalSpec(spec) ? ResolveEndpoint(spec, {}, name) : ParseEndpointSpec(spec);
  if (!parsed.ok()) {
    return Status::InvalidArgument(YamlWhere(file, node.Mark()) + ": model \"" + name +
                                   "\": " + parsed.status().message());
  }
  if (parsed->name.empty()) parsed->name = name;
  return parsed;
}

}  // namespace

Result<ModelTable> ModelTableFromYaml(const YAML::Node& models, const std::string& file) {
  if (!models.IsMap()) {
    return Status::InvalidArgument(YamlWhere(file, models.Mark()) +
                                   ": \"models\" must be a map of name -> model");
  }
  ModelTable table;
  for (const auto& m : models) {
    const std::string name = m.first.as<std::string>();
    BF_ASSIGN_OR_RETURN(table[name], ModelFromYaml(name, m.second, file));
  }
  return table;
}

namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_signals{0};

void OnStopSignal(int) {
  g_stop.store(true);
  if (g_signals.fetch_add(1) >= 1) {
    const char msg[] = "\nbreakfix: stopping immediately\n";
    (void)!::write(2, msg, sizeof(msg) - 1);
    std::_Exit(kExitFailed);
  }
}

}  // namespace

StopOnSignals::StopOnSignals() {
  std::signal(SIGINT, OnStopSignal);
  std::signal(SIGTERM, OnStopSignal);
}

const std::atomic<bool>* StopOnSignals::flag() const { return &g_stop; }

void StopOnSignals::Restore() {
  if (!installed_) return;
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  installed_ = false;
}

Result<std::unique_ptr<Store>> OpenStore(const std::string& path, bool create) {
  if (!create && !std::filesystem::exists(path)) {
    return Status::NotFound("store " + path + " does not exist (breakfix eval --store " + path +
                            " creates it)");
  }
  return Store::OpenSqlite(path);
}

ProgressPrinter::ProgressPrinter(bool enabled, double plain_interval_s)
    : enabled_(enabled), tty_(::isatty(STDERR_FILENO) == 1), plain_interval_s_(plain_interval_s) {}

namespace {

std::string HumanCount(int64_t n) {
  char buf[32];
  if (n >= 10'000'000) {
    std::snprintf(buf, sizeof(buf), "%.1fM", n / 1e6);
  } else if (n >= 10'000) {
    std::snprintf(buf, sizeof(buf), "%.1fk", n / 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(n));
  }
  return buf;
}

std::string Duration(double s) {
  if (s < 0 || s > 1e7) return "?";
  long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600) {
    std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%ld:%02ld", t / 60, t % 60);
  }
  return buf;
}

}  // namespace

void ProgressPrinter::Update(const EvalProgress& p) {
  if (!enabled_) return;
  if (!tty_ && !p.finished && p.elapsed_s - last_plain_s_ < plain_interval_s_) return;
  last_plain_s_ = p.elapsed_s;
  const int64_t fresh = p.done - p.resumed;
  const double rate = p.elapsed_s > 0 ? fresh / p.elapsed_s : 0;
  const int64_t left = p.total - p.done;
  const double pct = p.total > 0 ? 100.0 * p.done / p.total : 100.0;
  char line[256];
  std::snprintf(line, sizeof(line),
                "eval %lld/%lld (%.1f%%)  %.1f units/s  ETA %s  in flight %lld  errors %lld  "
                "unscorable %lld  tokens %s",
                static_cast<long long>(p.done), static_cast<long long>(p.total), pct, rate,
                p.finished ? "0:00" : (rate > 0 ? Duration(left / rate) : std::string("?")).c_str(),
                static_cast<long long>(p.in_flight), static_cast<long long>(p.failed),
                static_cast<long long>(p.unscorable), HumanCount(p.tokens.total()).c_str());
  std::string text = line;
  if (tty_) {
    std::fprintf(stderr, "\r%s\x1b[K%s", text.c_str(), p.finished ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", text.c_str());
  }
  std::fflush(stderr);
}

// Reads the `models:` map of a configuration file. Other top-level settings are left to the
// commands they belong to, so the file given to `breakfix eval` serves here as well.
Result<ModelTable> LoadModelTable(const std::string& file, Env* env) {
  ModelTable table;
  if (file.empty()) return table;
  auto text = env->ReadFile(file);
  if (!text.ok()) return Status::InvalidArgument("--config: " + text.status().message());
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const YAML::ParserException& e) {
    return Status::InvalidArgument(YamlWhere(file, e.mark) + ": " + e.msg);
  }
  if (!root.IsMap()) {
    return Status::InvalidArgument(file + ":1:1: the configuration must be a map of settings");
  }
  const YAML::Node models = root["models"];
  if (!models) return table;
  return ModelTableFromYaml(models, file);
}

}  // namespace breakfix::cli
