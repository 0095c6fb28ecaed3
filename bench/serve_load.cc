// serve_load: streaming chat clients against `breakfix serve`, for the engine benchmark.
//
// Keeps --clients requests in flight (each finished request starts the next) for --seconds, all
// with "stream": true and include_usage, on one thread with libcurl's multi interface (so the
// load generator itself takes little of the CPU the server needs). Request i is the same chat
// request engine_bench submits straight to the Engine (bench/engine_workload.h), so comparing
// the two throughputs gives what the HTTP/SSE layer costs.
//
//   serve_load --url http://127.0.0.1:PORT/v1 --server-pid PID --merge-into engine_results.json
//
// Reports aggregate completion tokens/s (from each stream's usage chunk), requests/s, time to
// first token (first SSE chunk with content text), and the server's CPU time per token. With
// --merge-into, adds a "server" section (and the comparison with the Engine's own numbers) to
// engine_bench's JSON. bench/engine_run.sh runs it.
#include <curl/curl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "breakfix/env.h"
#include "breakfix/status.h"
#include "engine_workload.h"

namespace breakfix::bench {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct CurlEasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct CurlMultiDeleter {
  void operator()(CURLM* m) const { curl_multi_cleanup(m); }
};
struct CurlListDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using EasyHandle = std::unique_ptr<CURL, CurlEasyDeleter>;
using MultiHandle = std::unique_ptr<CURLM, CurlMultiDeleter>;
using HeaderList = std::unique_ptr<curl_slist, CurlListDeleter>;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// One simulated client: an easy handle (kept across requests, so its connection is reused) and
// the state of the request it is running.
struct Client {
  EasyHandle easy;
  std::string body;     // the request body; must outlive the transfer
  std::string pending;  // received bytes not yet split into SSE events
  std::string raw;      // the start of the response, for error messages
  RequestRecord record;
  bool saw_done = false;
  Clock::time_point origin;  // the load test's start
};

// Handles one SSE event ("data: {...}"): content text, the usage chunk, an error object.
void HandleEvent(Client& c, const std::string& event) {
  for (size_t pos = 0; pos < event.size();) {
    size_t end = event.find('\n', pos);
    if (end == std::string::npos) end = event.size();
    const std::string line = event.substr(pos, end - pos);
    pos = end + 1;
    if (line.rfind("data: ", 0) != 0) continue;
    const std::string payload = line.substr(6);
    if (payload == "[DONE]") {
      c.saw_done = true;
      continue;
    }
    const json j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      if (c.record.error.empty()) c.record.error = "an SSE event is not JSON: " + payload;
      continue;
    }
    if (auto e = j.find("error"); e != j.end()) {
      if (c.record.error.empty()) c.record.error = "error event: " + e->dump();
      continue;
    }
    if (auto choices = j.find("choices");
        choices != j.end() && choices->is_array() && !choices->empty()) {
      const json& choice = (*choices)[0];
      if (auto delta = choice.find("delta"); delta != choice.end() && delta->is_object()) {
        auto content = delta->find("content");
        if (content != delta->end() && content->is_string() &&
            !content->get_ref<const std::string&>().empty()) {
          ++c.record.content_events;
          if (c.record.first_token < 0) c.record.first_token = SecondsSince(c.origin);
        }
      }
      if (auto fr = choice.find("finish_reason"); fr != choice.end() && fr->is_string()) {
        c.record.finish_reason = fr->get<std::string>();
      }
    }
    if (auto usage = j.find("usage"); usage != j.end() && usage->is_object()) {
      c.record.completion_tokens = usage->value("completion_tokens", 0);
      c.record.prompt_tokens = usage->value("prompt_tokens", 0);
    }
  }
}

size_t OnData(char* data, size_t size, size_t count, void* user) {
  Client& c = *static_cast<Client*>(user);
  const size_t n = size * count;
  if (c.raw.size() < 512) c.raw.append(data, std::min(n, 512 - c.raw.size()));
  c.pending.append(data, n);
  size_t start = 0;
  for (size_t sep; (sep = c.pending.find("\n\n", start)) != std::string::npos; start = sep + 2) {
    HandleEvent(c, c.pending.substr(start, sep - start));
  }
  c.pending.erase(0, start);
  return n;
}

// Process CPU seconds (user + system) of `pid` from /proc; -1 when unreadable.
double ProcessCpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; fields >> field; ++i) {  // field 3 is the state; 14 utime, 15 stime
    if (i == 14) utime = std::atof(field.c_str());
    if (i == 15) {
      stime = std::atof(field.c_str());
      break;
    }
  }
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double OwnCpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec +
         u.ru_stime.tv_usec / 1e6;
}

// GET base/models: the served model's id (and a check that the server answers).
Result<std::string> ServedModel(const std::string& base) {
  EasyHandle easy(curl_easy_init());
  if (!easy) return Status::Internal("curl_easy_init failed");
  std::string body;
  const std::string url = base + "/models";
  curl_easy_setopt(easy.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy.get(), CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(
      easy.get(), CURLOPT_WRITEFUNCTION, +[](char* d, size_t s, size_t n, void* u) {
        static_cast<std::string*>(u)->append(d, s * n);
        return s * n;
      });
  curl_easy_setopt(easy.get(), CURLOPT_WRITEDATA, &body);
  const CURLcode rc = curl_easy_perform(easy.get());
  if (rc != CURLE_OK) {
    return Status::Unavailable("GET " + url + ": " + curl_easy_strerror(rc));
  }
  long status = 0;
  curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &status);
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (status != 200 || j.is_discarded() || !j.contains("data") || !j["data"].is_array() ||
      j["data"].empty() || !j["data"][0].contains("id") || !j["data"][0]["id"].is_string()) {
    return Status::Unavailable("GET " + url + ": HTTP " + std::to_string(status) +
                               ", expected a model list, got: " + body.substr(0, 300));
  }
  return j["data"][0]["id"].get<std::string>();
}

struct Flags {
  std::string url;
  std::string port_file;
  int server_pid = 0;
  std::string merge_into;
  std::string out;
  LoadSettings load;
};

Status StartRequest(CURLM* multi, Client& c, const std::string& url, const std::string& model,
                    const LoadSettings& s, uint64_t request, curl_slist* headers) {
  const json body = {
      {"model", model},
      {"messages", json::array({{{"role", "user"}, {"content", LoadPrompt(request)}}})},
      {"max_tokens", s.max_tokens},
      {"temperature", s.temperature},
      {"seed", LoadSeed(request)},
      {"stream", true},
      {"stream_options", {{"include_usage", true}}},
  };
  c.body = body.dump();
  c.pending.clear();
  c.raw.clear();
  c.saw_done = false;
  c.record = RequestRecord();
  c.record.start = SecondsSince(c.origin);
  CURL* e = c.easy.get();
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, c.body.c_str());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(c.body.size()));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnData);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &c);
  curl_easy_setopt(e, CURLOPT_PRIVATE, &c);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 300000L);  // a stuck server fails the run
  const CURLMcode rc = curl_multi_add_handle(multi, e);
  if (rc != CURLM_OK) {
    return Status::Internal(std::string("curl_multi_add_handle: ") + curl_multi_strerror(rc));
  }
  return Status::OK();
}

// Fills in the outcome of a finished transfer.
void FinishRequest(Client& c, CURLcode result) {
  c.record.end = SecondsSince(c.origin);
  long status = 0;
  curl_easy_getinfo(c.easy.get(), CURLINFO_RESPONSE_CODE, &status);
  if (!c.record.error.empty()) return;
  if (result != CURLE_OK) {
    c.record.error = std::string("transfer failed: ") + curl_easy_strerror(result);
  } else if (status != 200) {
    c.record.error = "HTTP " + std::to_string(status) + ": " + c.raw.substr(0, 300);
  } else if (!c.saw_done) {
    c.record.error = "the stream ended without \"data: [DONE]\"";
  } else if (c.record.completion_tokens == 0 && c.record.content_events > 0) {
    c.record.error = "no usage chunk although stream_options.include_usage was set";
  }
}

Result<json> RunLoad(const Flags& f) {
  std::string base = f.url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  BF_ASSIGN_OR_RETURN(const std::string model, ServedModel(base));
  const std::string url = base + "/chat/completions";
  const LoadSettings& s = f.load;

  HeaderList headers(curl_slist_append(nullptr, "Content-Type: application/json"));
  MultiHandle multi(curl_multi_init());
  if (!multi || !headers) return Status::Internal("libcurl initialisation failed");
  std::vector<std::unique_ptr<Client>> clients;
  const Clock::time_point origin = Clock::now();
  for (int i = 0; i < s.clients; ++i) {
    auto c = std::make_unique<Client>();
    c->easy.reset(curl_easy_init());
    if (!c->easy) return Status::Internal("curl_easy_init failed");
    c->origin = origin;
    clients.push_back(std::move(c));
  }
  double load1 = 0;
  std::ifstream("/proc/loadavg") >> load1;
  const double server_cpu_before = f.server_pid > 0 ? ProcessCpuSeconds(f.server_pid) : -1;
  const double own_cpu_before = OwnCpuSeconds();
  uint64_t next_request = 0;
  for (auto& c : clients) {
    BF_RETURN_IF_ERROR(StartRequest(multi.get(), *c, url, model, s, next_request++, headers.get()));
  }
  std::vector<RequestRecord> records;
  int running = 1;
  while (running > 0) {
    CURLMcode rc = curl_multi_perform(multi.get(), &running);
    if (rc != CURLM_OK) {
      return Status::Internal(std::string("curl_multi_perform: ") + curl_multi_strerror(rc));
    }
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi.get(), &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Client* c = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &c);
      const CURLcode result = msg->data.result;
      curl_multi_remove_handle(multi.get(), msg->easy_handle);
      FinishRequest(*c, result);
      records.push_back(c->record);
      if (SecondsSince(origin) < s.seconds) {
        BF_RETURN_IF_ERROR(
            StartRequest(multi.get(), *c, url, model, s, next_request++, headers.get()));
        running = std::max(running, 1);
      }
    }
    if (running > 0) {
      rc = curl_multi_poll(multi.get(), nullptr, 0, 100, nullptr);
      if (rc != CURLM_OK) {
        return Status::Internal(std::string("curl_multi_poll: ") + curl_multi_strerror(rc));
      }
    }
  }
  double wall = 0;
  for (const RequestRecord& r : records) wall = std::max(wall, r.end);
  json j = SummarizeLoad(records, s, wall);
  j["load1_at_start"] = load1;
  j["model"] = model;
  j["url"] = url;
  const double own_cpu = OwnCpuSeconds() - own_cpu_before;
  j["load_generator_cpu_s"] = own_cpu;
  if (server_cpu_before >= 0) {
    const double server_cpu = ProcessCpuSeconds(f.server_pid) - server_cpu_before;
    j["server_cpu_s"] = server_cpu;
    j["server_cpu_share_of_wall"] = wall > 0 ? server_cpu / wall : 0;
    const int64_t tokens = j["completion_tokens"].get<int64_t>();
    j["server_cpu_us_per_token"] = tokens > 0 ? 1e6 * server_cpu / tokens : 0;
  }
  return j;
}

// Adds `server` to engine_bench's results, with the Engine's own numbers beside it.
Status MergeInto(const std::string& path, json server) {
  Env* env = Env::Default();
  BF_ASSIGN_OR_RETURN(const std::string text, env->ReadFile(path));
  json results = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (results.is_discarded() || !results.is_object()) {
    return Status::InvalidArgument(path + ": not a JSON object (expected engine_bench's output)");
  }
  const double served = server["tokens_per_s"].get<double>();
  json compare = json::object();
  if (results.contains("engine_load")) {
    const double direct = results["engine_load"].value("tokens_per_s", 0.0);
    compare["engine_direct_tokens_per_s"] = direct;
    compare["server_over_engine_direct"] = direct > 0 ? served / direct : 0;
  }
  for (const json& m : results.value("models", json::array())) {
    if (m.value("name", "") != "stories260K") continue;
    const double batch = m["decode_batch"].value("tokens_per_s", 0.0);
    compare["transformer_batch_tokens_per_s"] = batch;
    compare["server_over_transformer_batch"] = batch > 0 ? served / batch : 0;
  }
  server["compare"] = compare;
  if (compare.contains("engine_direct_tokens_per_s")) {
    fmt::print(
        "  the same load straight on the Engine: {:.0f} tokens/s; through HTTP/SSE: {:.1f}%\n",
        compare["engine_direct_tokens_per_s"].get<double>(),
        100 * compare["server_over_engine_direct"].get<double>());
  }
  if (compare.contains("transformer_batch_tokens_per_s")) {
    fmt::print(
        "  the transformer's batch-32 decode alone: {:.0f} tokens/s; the server reaches "
        "{:.1f}% of it\n",
        compare["transformer_batch_tokens_per_s"].get<double>(),
        100 * compare["server_over_transformer_batch"].get<double>());
  }
  results["server"] = server;
  return env->WriteFileAtomic(path, results.dump(2) + "\n");
}

int Run(Flags& f) {
  if (f.url.empty() && !f.port_file.empty()) {
    auto port = Env::Default()->ReadFile(f.port_file);
    if (!port.ok()) {
      fmt::print(stderr, "serve_load: --port-file: {}\n", port.status().ToString());
      return 2;
    }
    std::string text = *port;
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    const int p = std::atoi(text.c_str());
    if (p <= 0 || p > 65535 || text.find_first_not_of("0123456789") != std::string::npos) {
      fmt::print(stderr, "serve_load: {}: expected a port number, got \"{}\"\n", f.port_file, text);
      return 2;
    }
    f.url = "http://127.0.0.1:" + std::to_string(p) + "/v1";
  }
  if (f.url.empty()) {
    fmt::print(stderr, "serve_load: give --url http://HOST:PORT/v1 or --port-file FILE\n");
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  fmt::print(stderr, "serve_load: {} streaming clients for {} s against {}\n", f.load.clients,
             f.load.seconds, f.url);
  auto result = RunLoad(f);
  curl_global_cleanup();
  if (!result.ok()) {
    fmt::print(stderr, "serve_load: {}\n", result.status().ToString());
    return 1;
  }
  const json& j = *result;
  fmt::print(
      "\nbreakfix serve, {} streaming clients, {} s, max_tokens {}: {:.0f} tokens/s, "
      "{:.1f} requests/s,\n  TTFT median {:.0f} ms / p90 {:.0f} ms, {} requests ({} "
      "errors), {:.1f} tokens per request\n",
      j["clients"].get<int>(), j["duration_s"].get<double>(), j["max_tokens"].get<int>(),
      j["tokens_per_s"].get<double>(), j["requests_per_s"].get<double>(),
      j["ttft_ms"]["median"].get<double>(), j["ttft_ms"]["p90"].get<double>(),
      j["requests"].get<int64_t>(), j["errors"].get<int64_t>(),
      j["mean_completion_tokens"].get<double>());
  if (j.contains("server_cpu_s")) {
    fmt::print(
        "  server CPU {:.1f} s ({:.0f}% of one core), {:.1f} us per token; load "
        "generator CPU {:.1f} s\n",
        j["server_cpu_s"].get<double>(), 100 * j["server_cpu_share_of_wall"].get<double>(),
        j["server_cpu_us_per_token"].get<double>(), j["load_generator_cpu_s"].get<double>());
  }
  if (j["errors"].get<int64_t>() > 0) {
    fmt::print(stderr, "serve_load: first error: {}\n", j["first_error"].get<std::string>());
  }
  if (!f.out.empty()) {
    Status s = Env::Default()->WriteFileAtomic(f.out, j.dump(2) + "\n");
    if (!s.ok()) {
      fmt::print(stderr, "serve_load: {}\n", s.ToString());
      return 1;
    }
  }
  if (!f.merge_into.empty()) {
    Status s = MergeInto(f.merge_into, j);
    if (!s.ok()) {
      fmt::print(stderr, "serve_load: --merge-into: {}\n", s.ToString());
      return 1;
    }
  }
  return j["errors"].get<int64_t>() > 0 ? 1 : 0;
}

}  // namespace
}  // namespace breakfix::bench

int main(int argc, char** argv) {
  breakfix::bench::Flags f;
  CLI::App app{"serve_load: streaming chat clients against breakfix serve"};
  app.add_option("--url", f.url, "The server's base URL, ending in /v1");
  app.add_option("--port-file", f.port_file,
                 "Read the port from this file (breakfix serve "
                 "--port-file); the URL is then 127.0.0.1");
  app.add_option("--clients", f.load.clients, "Requests kept in flight")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--seconds", f.load.seconds, "No request starts after this many seconds")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--max-tokens", f.load.max_tokens, "max_tokens of each request")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--server-pid", f.server_pid, "The server's process id, to read its CPU time");
  app.add_option("--out", f.out, "Write the results as JSON to this file");
  app.add_option("--merge-into", f.merge_into,
                 "Add the results as \"server\" to this engine_bench JSON file");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return breakfix::bench::Run(f);
}
