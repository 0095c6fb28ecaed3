#include "cli_common.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

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

Result<EndpointOptions> ResolveEndpoint(const std::string& spec, const ModelTable& table,
                                        const std::string& default_name) {
  auto it = table.find(spec);
  if (it != table.end()) return it->second;
  if (spec.find('=') == std::string::npos && spec.find("://") == std::string::npos) {
    std::string known;
    for (const auto& [name, opts] : table) known += (known.empty() ? "" : ", ") + name;
    return Status::InvalidArgument(
        "model \"" + spec + "\" is neither a name from the configuration's models" +
        (known.empty() ? std::string() : " (" + known + ")") +
        " nor an endpoint spec like url=http://127.0.0.1:8000/v1,model=NAME");
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
  // Judges use models, models use the client: tear down in that order.
  judges_.clear();
  models_.clear();
  client_.reset();
}

Result<ChatModel*> ModelSet::AddModel(const EndpointOptions& options) {
  BF_ASSIGN_OR_RETURN(auto model, client_->NewChatModel(options));
  models_.push_back(std::move(model));
  return models_.back().get();
}

Result<Judge*> ModelSet::AddJudge(const std::string& spec, const ModelTable& table) {
  if (spec == "refusal") {
    judges_.push_back(NewRefusalJudge());
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

}  // namespace breakfix::cli
