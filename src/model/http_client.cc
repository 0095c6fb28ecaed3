// HttpClient on libcurl's multi interface, and the OpenAIChatModel it hands out.
//
// Threading: one I/O thread owns the curl multi handle, every easy handle, every endpoint's queue
// and limiter, and the retry timers. Other threads only append calls to `incoming_` (under mu_)
// and wake the loop with curl_multi_wakeup. Callbacks run on the I/O thread, outside any lock.
//
// A call's life: Chat() builds the body and submits it -> the I/O thread queues it on its
// endpoint (FIFO) -> Dispatch starts it when the endpoint has a free slot, budget, and is not
// backing off after a 429 -> the transfer finishes (or is aborted for idleness) -> success
// (callback), a retry (timer, then back to the head of the queue) or a final error (callback).
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "breakfix/openai_client.h"
#include "model/openai_wire.h"
#include "model/rate_limiter.h"
#include "model/retry_policy.h"

#ifndef BREAKFIX_VERSION
#define BREAKFIX_VERSION "dev"
#endif

namespace breakfix {
namespace {

constexpr size_t kMaxResponseBytes = 64 << 20;
constexpr int64_t kMaxPollWaitMs = 10000;

struct CurlMultiDeleter {
  void operator()(CURLM* m) const { curl_multi_cleanup(m); }
};
struct CurlEasyDeleter {
  void operator()(CURL* e) const { curl_easy_cleanup(e); }
};
struct CurlSlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using MultiHandle = std::unique_ptr<CURLM, CurlMultiDeleter>;
using EasyHandle = std::unique_ptr<CURL, CurlEasyDeleter>;
using HeaderList = std::unique_ptr<curl_slist, CurlSlistDeleter>;

// Why an attempt failed; decides retrying and the final status code.
enum class FailureKind {
  kRateLimited,  // HTTP 429
  kServer,       // HTTP 5xx, 408, 409
  kTimeout,      // connect, total or idle timeout
  kConnection,   // refused, reset, closed early, truncated
  kMalformed,    // a 2xx whose body could not be parsed
};

StatusCode FinalCode(FailureKind kind) {
  switch (kind) {
    case FailureKind::kRateLimited:
      return StatusCode::kResourceExhausted;
    case FailureKind::kTimeout:
      return StatusCode::kDeadlineExceeded;
    default:
      return StatusCode::kUnavailable;
  }
}

bool IsRetryableHttpStatus(long status) {
  return status == 408 || status == 409 || status == 429 ||
         (status >= 500 && status != 501 && status != 505);
}

StatusCode CodeForHttpStatus(long status) {
  if (status == 401 || status == 403) return StatusCode::kPermissionDenied;
  if (status == 404) return StatusCode::kNotFound;
  if (status >= 400 && status < 500) return StatusCode::kInvalidArgument;
  return StatusCode::kUnavailable;
}

bool HeaderTextIsSafe(const std::string& s) { return s.find_first_of("\r\n") == std::string::npos; }

bool HeaderNameIsValid(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c <= 32 || c >= 127 || c == ':') return false;
  }
  return true;
}

void ReplaceAll(std::string& text, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (size_t pos = text.find(from); pos != std::string::npos;
       pos = text.find(from, pos + to.size())) {
    text.replace(pos, from.size(), to);
  }
}

// True when `line` is the header `name` (lowercase), setting `value` to its trimmed value.
bool HeaderIs(std::string_view line, std::string_view name, std::string_view& value) {
  if (line.size() <= name.size() || line[name.size()] != ':') return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = line[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != name[i]) return false;
  }
  value = line.substr(name.size() + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
    value.remove_suffix(1);
  }
  return true;
}

std::string FormatMs(int64_t us) { return std::to_string((us + 999) / 1000) + " ms"; }

struct Call;

// One configured endpoint. Shared by its OpenAIChatModel, its calls and the client's registry.
struct Endpoint {
  Endpoint(EndpointOptions o, int64_t now_us)
      : options(std::move(o)),
        limiter(options.requests_per_minute, options.tokens_per_minute, now_us) {}

  // Fixed at creation.
  EndpointOptions options;
  std::string url;      // base_url + /chat/completions (+ ?query)
  std::string label;    // `endpoint "name" (url)`, the prefix of every error message
  std::string api_key;  // never logged, scrubbed from messages
  HeaderList headers;
  std::string identity;
  RetryPolicy retry;

  // I/O thread only.
  std::deque<Call*> ready;  // waiting for a slot or budget, FIFO
  int in_flight = 0;
  RateLimiter limiter;
  int64_t blocked_until_us = 0;  // after a 429 nothing new starts before this
  bool probing = false;          // after a 429 one request at a time until one succeeds
  // Set by the first 401/403/404: the key or the model is wrong, so every queued and later call
  // fails at once with the same message instead of sending requests bound to fail the same way.
  std::optional<Status> fatal;

  // Counters for Stats(), written by the I/O thread (queued also by submitters).
  std::atomic<int64_t> requests{0}, succeeded{0}, failed{0}, retries{0}, rate_limited{0},
      in_flight_count{0}, queued{0}, prompt_tokens{0}, completion_tokens{0};
};

struct Call {
  std::shared_ptr<Endpoint> ep;
  uint64_t seq = 0;
  std::string body;
  ChatCallback done;
  int64_t prompt_estimate = 0;  // tokens, ~chars/4
  int64_t reserve = 0;          // tokens held in the TPM budget per attempt

  // Attempt state.
  int attempts = 0;
  CURL* easy = nullptr;
  size_t in_flight_index = 0;
  int64_t attempt_start_us = 0;
  int64_t last_activity_us = 0;
  bool activity = false;  // bytes moved since the loop last looked
  curl_off_t seen_down = 0, seen_up = 0;
  std::string response;
  std::string retry_after, retry_after_ms;
  char curl_error[CURL_ERROR_SIZE];

  // Retry state.
  int64_t due_us = 0;
  FailureKind last_kind = FailureKind::kConnection;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* call = static_cast<Call*>(user);
  size_t n = size * count;
  if (call->response.size() + n > kMaxResponseBytes) return 0;  // aborts: CURLE_WRITE_ERROR
  call->response.append(data, n);
  call->activity = true;
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* call = static_cast<Call*>(user);
  size_t n = size * count;
  std::string_view line(data, n);
  call->activity = true;
  std::string_view value;
  if (line.substr(0, 5) == "HTTP/") {  // a new response (e.g. after 100 Continue)
    call->retry_after.clear();
    call->retry_after_ms.clear();
  } else if (HeaderIs(line, "retry-after", value)) {
    call->retry_after.assign(value);
  } else if (HeaderIs(line, "retry-after-ms", value)) {
    call->retry_after_ms.assign(value);
  }
  return n;
}

int OnProgress(void* user, curl_off_t, curl_off_t dlnow, curl_off_t, curl_off_t ulnow) {
  auto* call = static_cast<Call*>(user);
  if (dlnow != call->seen_down || ulnow != call->seen_up) {
    call->seen_down = dlnow;
    call->seen_up = ulnow;
    call->activity = true;
  }
  return 0;
}

struct RetryTimerLater {
  bool operator()(const Call* a, const Call* b) const {
    return a->due_us != b->due_us ? a->due_us > b->due_us : a->seq > b->seq;
  }
};

class HttpClientImpl;

class OpenAIChatModel final : public ChatModel {
 public:
  OpenAIChatModel(HttpClientImpl* client, std::shared_ptr<Endpoint> ep)
      : client_(client), ep_(std::move(ep)) {}

  const std::string& name() const override { return ep_->options.name; }
  std::string Identity() const override { return ep_->identity; }
  void Chat(ChatRequest request, ChatCallback done) override;

 private:
  HttpClientImpl* client_;
  std::shared_ptr<Endpoint> ep_;
};

class HttpClientImpl final : public HttpClient {
 public:
  HttpClientImpl(const HttpClientOptions& options, Env* env, MultiHandle multi)
      : options_(options), env_(env), multi_(std::move(multi)), rng_(SeedFrom(env)) {}

  ~HttpClientImpl() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    curl_multi_wakeup(multi_.get());
    if (thread_.joinable()) thread_.join();
    for (CURL* easy : easy_pool_) curl_easy_cleanup(easy);
  }

  void StartThread() {
    thread_ = std::thread([this] { Run(); });
    io_thread_id_ = thread_.get_id();
  }

  Result<std::unique_ptr<ChatModel>> NewChatModel(const EndpointOptions& options) override;
  EndpointStats Stats(const std::string& endpoint_name) override;
  void CancelAll() override;

  // Takes ownership of `call`; its callback runs exactly once.
  void Submit(Call* call);

 private:
  static uint64_t SeedFrom(Env* env) {
    return static_cast<uint64_t>(env->NowMicros()) ^ 0x9e3779b97f4a7c15ULL;
  }

  void Run();
  void Dispatch(int64_t now);
  void Start(Call* call, int64_t now);
  void Detach(Call* call);
  bool DrainFinished();
  void CheckIdle(int64_t now);
  void FireRetryTimers(int64_t now);
  void OnTransferDone(Call* call, CURLcode result, long http_status, int64_t now);
  void RetryOrFail(Call* call, FailureKind kind, const std::string& what,
                   std::optional<int64_t> server_delay_us, int64_t now);
  void Succeed(Call* call, ParsedChatResponse parsed, int64_t now);
  void Fail(Call* call, StatusCode code, const std::string& message);
  void Finish(Call* call, Result<ChatResponse> result);
  void CancelBelow(uint64_t limit);
  int PollTimeoutMs(int64_t now) const;

  const HttpClientOptions options_;
  Env* const env_;
  MultiHandle multi_;
  std::thread thread_;
  std::thread::id io_thread_id_;

  // Shared with submitting threads.
  std::mutex mu_;
  std::condition_variable cancel_cv_;
  std::vector<Call*> incoming_;
  std::vector<std::shared_ptr<Endpoint>> new_endpoints_;
  std::vector<std::shared_ptr<Endpoint>> all_endpoints_;  // for Stats()
  uint64_t next_seq_ = 1;
  uint64_t cancel_below_ = 0;     // calls with seq below this are to be cancelled
  uint64_t cancelled_below_ = 0;  // ... and have been
  bool stop_ = false;
  bool stopped_ = false;

  // I/O thread only.
  std::vector<std::shared_ptr<Endpoint>> endpoints_;
  std::vector<CURL*> easy_pool_;
  std::vector<Call*> in_flight_;
  std::priority_queue<Call*, std::vector<Call*>, RetryTimerLater> retry_timers_;
  int64_t dispatch_wake_us_ = INT64_MAX;
  int64_t total_concurrency_ = 0;
  Random rng_;
};

void OpenAIChatModel::Chat(ChatRequest request, ChatCallback done) {
  const EndpointOptions& o = ep_->options;
  SamplingOptions& sampling = request.sampling;
  if (o.temperature) sampling.temperature = *o.temperature;
  if (o.top_p) sampling.top_p = *o.top_p;
  if (o.max_tokens) sampling.max_tokens = *o.max_tokens;
  Result<std::string> body =
      BuildChatRequestBody(o.model, request.messages, sampling, request.json_object);
  if (!body.ok()) {
    done(body.status().WithContext(ep_->label));
    return;
  }
  auto* call = new Call;
  call->ep = ep_;
  call->body = std::move(*body);
  call->done = std::move(done);
  size_t chars = 0;
  for (const Message& m : request.messages) chars += m.content.size();
  call->prompt_estimate = EstimateTokens(chars);
  call->reserve = call->prompt_estimate + std::max(0, sampling.max_tokens);
  client_->Submit(call);
}

// "host:port" of a URL.
std::string HostOf(const std::string& url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  size_t end = url.find_first_of("/?#", start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

Result<std::unique_ptr<ChatModel>> HttpClientImpl::NewChatModel(const EndpointOptions& given) {
  EndpointOptions options = given;
  // An unnamed endpoint is named after its model, else its host, for messages and Stats().
  if (options.name.empty()) {
    options.name = options.model.empty() ? HostOf(options.base_url) : options.model;
  }
  const std::string who = "endpoint \"" + options.name + "\"";
  std::string base = options.base_url;
  if (base.rfind("http://", 0) != 0 && base.rfind("https://", 0) != 0) {
    return Status::InvalidArgument(who + ": base_url \"" + base +
                                   "\": expected an http:// or https:// URL");
  }
  if (options.max_concurrency < 1) {
    return Status::InvalidArgument(who + ": max_concurrency " +
                                   std::to_string(options.max_concurrency) + ": expected >= 1");
  }
  if (!(options.requests_per_minute >= 0) || !(options.tokens_per_minute >= 0) ||
      !std::isfinite(options.requests_per_minute) || !std::isfinite(options.tokens_per_minute)) {
    return Status::InvalidArgument(who +
                                   ": requests_per_minute and tokens_per_minute must be finite "
                                   "numbers >= 0 (0 = unlimited)");
  }
  if (options.max_retries < 0 || options.initial_backoff_ms < 0 || options.max_backoff_ms < 0 ||
      options.max_retry_after_ms < 0) {
    return Status::InvalidArgument(who + ": retry settings must be >= 0");
  }
  if (options.connect_timeout_ms <= 0 || options.total_timeout_ms <= 0 ||
      options.idle_timeout_ms <= 0) {
    return Status::InvalidArgument(
        who + ": connect_timeout_ms, total_timeout_ms and idle_timeout_ms must be > 0");
  }

  auto ep = std::make_shared<Endpoint>(options, env_->NowMicros());
  // The path goes before any query string (Azure: ".../deployments/d?api-version=...").
  std::string query;
  size_t q = base.find('?');
  if (q != std::string::npos) {
    query = base.substr(q);
    base.resize(q);
  }
  while (!base.empty() && base.back() == '/') base.pop_back();
  ep->url = base + "/chat/completions" + query;
  ep->label = who + " (" + ep->url + ")";
  ep->retry = RetryPolicy{options.max_retries, options.initial_backoff_ms, options.max_backoff_ms,
                          options.max_retry_after_ms};

  if (!options.api_key_env.empty()) {
    std::optional<std::string> key = env_->GetVar(options.api_key_env);
    if (!key || key->empty()) {
      return Status::InvalidArgument(who + ": environment variable " + options.api_key_env +
                                     " (key_env, the API key) is " + (key ? "empty" : "not set") +
                                     "; set it or leave key_env empty to send no key");
    }
    if (!HeaderTextIsSafe(*key)) {
      return Status::InvalidArgument(who + ": the API key in " + options.api_key_env +
                                     " contains a line break");
    }
    ep->api_key = std::move(*key);
  }
  if (!HeaderNameIsValid(options.api_key_header)) {
    return Status::InvalidArgument(who + ": api_key_header \"" + options.api_key_header +
                                   "\": expected an HTTP header name");
  }
  std::vector<std::string> lines = {"Content-Type: application/json", "Accept: application/json",
                                    "Expect:"};
  if (!ep->api_key.empty()) {
    if (options.api_key_header == "Authorization") {
      lines.push_back("Authorization: Bearer " + ep->api_key);
    } else {
      lines.push_back(options.api_key_header + ": " + ep->api_key);
    }
  }
  for (const auto& [name, value] : options.extra_headers) {
    if (!HeaderNameIsValid(name) || !HeaderTextIsSafe(value)) {
      return Status::InvalidArgument(who + ": extra header \"" + name +
                                     "\": expected a header name without spaces or colons and a "
                                     "value without line breaks");
    }
    lines.push_back(name + ": " + value);
  }
  curl_slist* list = nullptr;
  for (const std::string& line : lines) {
    curl_slist* next = curl_slist_append(list, line.c_str());
    if (next == nullptr) {
      curl_slist_free_all(list);
      return Status::Internal(who + ": out of memory building request headers");
    }
    list = next;
  }
  ep->headers.reset(list);

  nlohmann::json identity = {
      {"api", "openai-chat"}, {"base_url", base + query}, {"model", options.model}};
  nlohmann::json pinned = nlohmann::json::object();
  if (options.temperature) pinned["temperature"] = *options.temperature;
  if (options.top_p) pinned["top_p"] = *options.top_p;
  if (options.max_tokens) pinned["max_tokens"] = *options.max_tokens;
  if (!pinned.empty()) identity["sampling"] = std::move(pinned);
  ep->identity = identity.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);

  {
    std::lock_guard<std::mutex> lock(mu_);
    all_endpoints_.push_back(ep);
    new_endpoints_.push_back(ep);
  }
  curl_multi_wakeup(multi_.get());
  return std::unique_ptr<ChatModel>(new OpenAIChatModel(this, std::move(ep)));
}

EndpointStats HttpClientImpl::Stats(const std::string& endpoint_name) {
  std::vector<std::shared_ptr<Endpoint>> matching;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& ep : all_endpoints_) {
      if (ep->options.name == endpoint_name) matching.push_back(ep);
    }
  }
  EndpointStats s;
  for (const auto& ep : matching) {
    s.requests += ep->requests.load();
    s.succeeded += ep->succeeded.load();
    s.failed += ep->failed.load();
    s.retries += ep->retries.load();
    s.rate_limited += ep->rate_limited.load();
    s.in_flight += ep->in_flight_count.load();
    s.queued += ep->queued.load();
    s.usage.prompt_tokens += ep->prompt_tokens.load();
    s.usage.completion_tokens += ep->completion_tokens.load();
  }
  return s;
}

void HttpClientImpl::CancelAll() {
  std::unique_lock<std::mutex> lock(mu_);
  if (stop_) return;
  cancel_below_ = next_seq_;
  const uint64_t target = cancel_below_;
  lock.unlock();
  curl_multi_wakeup(multi_.get());
  // From a callback (the I/O thread) the loop cannot be waited for; it cancels on its next turn.
  if (std::this_thread::get_id() == io_thread_id_) return;
  lock.lock();
  cancel_cv_.wait(lock, [&] { return cancelled_below_ >= target || stopped_; });
}

void HttpClientImpl::Submit(Call* call) {
  std::unique_lock<std::mutex> lock(mu_);
  if (stop_) {
    lock.unlock();
    ChatCallback done = std::move(call->done);
    std::string label = call->ep->label;
    delete call;
    done(Status::Cancelled(label + ": the HTTP client is shutting down"));
    return;
  }
  call->seq = next_seq_++;
  call->ep->queued.fetch_add(1, std::memory_order_relaxed);
  const bool was_empty = incoming_.empty();
  incoming_.push_back(call);
  lock.unlock();
  if (was_empty) curl_multi_wakeup(multi_.get());
}

void HttpClientImpl::Run() {
  // With CURLOPT_NOSIGNAL a TLS write to a closed peer can still raise SIGPIPE; blocked here, it
  // only makes that write fail with EPIPE, which curl reports as a send error.
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);

  std::vector<Call*> batch;
  std::vector<std::shared_ptr<Endpoint>> added;
  while (true) {
    bool stop;
    uint64_t cancel_below;
    {
      std::lock_guard<std::mutex> lock(mu_);
      batch.swap(incoming_);
      added.swap(new_endpoints_);
      stop = stop_;
      cancel_below = cancel_below_;
    }
    if (!added.empty()) {
      for (auto& ep : added) {
        total_concurrency_ += ep->options.max_concurrency;
        endpoints_.push_back(std::move(ep));
      }
      added.clear();
      long total = options_.max_total_connections > 0 ? options_.max_total_connections
                                                      : static_cast<long>(total_concurrency_);
      curl_multi_setopt(multi_.get(), CURLMOPT_MAX_TOTAL_CONNECTIONS, total);
      curl_multi_setopt(multi_.get(), CURLMOPT_MAX_HOST_CONNECTIONS, total);
      curl_multi_setopt(multi_.get(), CURLMOPT_MAXCONNECTS, total);
    }
    for (Call* call : batch) call->ep->ready.push_back(call);
    batch.clear();
    if (stop) {
      CancelBelow(UINT64_MAX);
      std::lock_guard<std::mutex> lock(mu_);
      stopped_ = true;
      cancel_cv_.notify_all();
      return;
    }
    if (cancel_below > 0) {
      CancelBelow(cancel_below);
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_below_ = std::max(cancelled_below_, cancel_below);
      if (cancel_below_ == cancel_below) cancel_below_ = 0;
      cancel_cv_.notify_all();
    }

    int64_t now = env_->NowMicros();
    FireRetryTimers(now);
    Dispatch(now);
    int running = 0;
    curl_multi_perform(multi_.get(), &running);
    bool finished_any = DrainFinished();
    CheckIdle(env_->NowMicros());
    if (finished_any) continue;  // freed slots: start queued calls before sleeping
    curl_multi_poll(multi_.get(), nullptr, 0, PollTimeoutMs(env_->NowMicros()), nullptr);
  }
}

int HttpClientImpl::PollTimeoutMs(int64_t now) const {
  int64_t wake = dispatch_wake_us_;
  if (!retry_timers_.empty()) wake = std::min(wake, retry_timers_.top()->due_us);
  for (const Call* call : in_flight_) {
    wake = std::min(wake, call->last_activity_us + call->ep->options.idle_timeout_ms * 1000);
  }
  if (wake == INT64_MAX) return static_cast<int>(kMaxPollWaitMs);
  int64_t wait_us = wake - now;
  if (wait_us <= 0) return 0;
  return static_cast<int>(std::min<int64_t>((wait_us + 999) / 1000, kMaxPollWaitMs));
}

void HttpClientImpl::FireRetryTimers(int64_t now) {
  // Due retries rejoin the head of their queue, oldest call first, ahead of newer calls.
  std::vector<Call*> due;
  while (!retry_timers_.empty() && retry_timers_.top()->due_us <= now) {
    due.push_back(retry_timers_.top());
    retry_timers_.pop();
  }
  std::sort(due.begin(), due.end(), [](const Call* a, const Call* b) { return a->seq > b->seq; });
  for (Call* call : due) call->ep->ready.push_front(call);
}

void HttpClientImpl::Dispatch(int64_t now) {
  dispatch_wake_us_ = INT64_MAX;
  for (const auto& ep_ptr : endpoints_) {
    Endpoint& ep = *ep_ptr;
    while (ep.fatal.has_value() && !ep.ready.empty()) {
      Call* call = ep.ready.front();
      ep.ready.pop_front();
      ep.queued.fetch_sub(1, std::memory_order_relaxed);
      Fail(call, ep.fatal->code(), "not sent: " + ep.fatal->message());
    }
    while (!ep.ready.empty()) {
      const int limit = ep.probing ? 1 : ep.options.max_concurrency;
      if (ep.in_flight >= limit) break;
      if (now < ep.blocked_until_us) {
        dispatch_wake_us_ = std::min(dispatch_wake_us_, ep.blocked_until_us);
        break;
      }
      Call* call = ep.ready.front();
      int64_t wait =
          ep.limiter.TryAcquire(now, ep.options.tokens_per_minute > 0 ? call->reserve : 0);
      if (wait > 0) {
        dispatch_wake_us_ = std::min(dispatch_wake_us_, now + wait);
        break;
      }
      ep.ready.pop_front();
      Start(call, now);
    }
  }
}

void HttpClientImpl::Start(Call* call, int64_t now) {
  Endpoint& ep = *call->ep;
  ep.queued.fetch_sub(1, std::memory_order_relaxed);
  CURL* easy = nullptr;
  if (!easy_pool_.empty()) {
    easy = easy_pool_.back();
    easy_pool_.pop_back();
  } else {
    easy = curl_easy_init();
  }
  if (easy == nullptr) {
    ep.limiter.Settle(now, call->reserve, 0);
    Fail(call, StatusCode::kInternal, ep.label + ": curl_easy_init failed");
    return;
  }
  call->attempts++;
  call->attempt_start_us = now;
  call->last_activity_us = now;
  call->activity = false;
  call->seen_down = call->seen_up = 0;
  call->response.clear();
  call->retry_after.clear();
  call->retry_after_ms.clear();
  call->curl_error[0] = '\0';

  const EndpointOptions& o = ep.options;
  curl_easy_setopt(easy, CURLOPT_URL, ep.url.c_str());
  curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call->body.size()));
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, call->body.data());
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, ep.headers.get());
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "breakfix/" BREAKFIX_VERSION);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, call);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, call);
  curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, &OnProgress);
  curl_easy_setopt(easy, CURLOPT_XFERINFODATA, call);
  curl_easy_setopt(easy, CURLOPT_PRIVATE, call);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, call->curl_error);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o.connect_timeout_ms));
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(o.total_timeout_ms));
  curl_easy_setopt(easy, CURLOPT_VERBOSE, options_.verbose ? 1L : 0L);

  call->easy = easy;
  if (curl_multi_add_handle(multi_.get(), easy) != CURLM_OK) {
    call->easy = nullptr;
    easy_pool_.push_back(easy);
    ep.limiter.Settle(now, call->reserve, 0);
    Fail(call, StatusCode::kInternal, ep.label + ": curl_multi_add_handle failed");
    return;
  }
  call->in_flight_index = in_flight_.size();
  in_flight_.push_back(call);
  ep.in_flight++;
  ep.in_flight_count.fetch_add(1, std::memory_order_relaxed);
  ep.requests.fetch_add(1, std::memory_order_relaxed);
  if (call->attempts > 1) ep.retries.fetch_add(1, std::memory_order_relaxed);
}

void HttpClientImpl::Detach(Call* call) {
  curl_multi_remove_handle(multi_.get(), call->easy);
  easy_pool_.push_back(call->easy);
  call->easy = nullptr;
  Call* last = in_flight_.back();
  in_flight_[call->in_flight_index] = last;
  last->in_flight_index = call->in_flight_index;
  in_flight_.pop_back();
  Endpoint& ep = *call->ep;
  ep.in_flight--;
  ep.in_flight_count.fetch_sub(1, std::memory_order_relaxed);
}

bool HttpClientImpl::DrainFinished() {
  bool any = false;
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* easy = msg->easy_handle;
    const CURLcode result = msg->data.result;  // copied: msg dies with remove_handle
    Call* call = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &call);
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (call == nullptr) continue;
    Detach(call);
    OnTransferDone(call, result, status, env_->NowMicros());
    any = true;
  }
  return any;
}

void HttpClientImpl::CheckIdle(int64_t now) {
  std::vector<Call*> idle;
  for (Call* call : in_flight_) {
    if (call->activity) {
      call->activity = false;
      call->last_activity_us = now;
    } else if (now - call->last_activity_us >= call->ep->options.idle_timeout_ms * 1000) {
      idle.push_back(call);
    }
  }
  for (Call* call : idle) {
    Detach(call);
    RetryOrFail(call, FailureKind::kTimeout,
                "no bytes received for " + FormatMs(now - call->last_activity_us) +
                    " (idle_timeout_ms=" + std::to_string(call->ep->options.idle_timeout_ms) + ")",
                std::nullopt, now);
  }
}

void HttpClientImpl::OnTransferDone(Call* call, CURLcode result, long http_status, int64_t now) {
  Endpoint& ep = *call->ep;
  const EndpointOptions& o = ep.options;
  if (result != CURLE_OK) {
    std::string detail =
        call->curl_error[0] != '\0' ? call->curl_error : curl_easy_strerror(result);
    switch (result) {
      case CURLE_OPERATION_TIMEDOUT: {
        // curl times out for two reasons; only the total limit can have passed by now.
        bool connecting = now - call->attempt_start_us < o.total_timeout_ms * 1000;
        std::string what = connecting ? "connect timed out (connect_timeout_ms=" +
                                            std::to_string(o.connect_timeout_ms) + ")"
                                      : "no complete response within total_timeout_ms=" +
                                            std::to_string(o.total_timeout_ms);
        RetryOrFail(call, FailureKind::kTimeout, what + ": " + detail, std::nullopt, now);
        return;
      }
      case CURLE_COULDNT_CONNECT:
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_COULDNT_RESOLVE_PROXY:
      case CURLE_GOT_NOTHING:
      case CURLE_PARTIAL_FILE:
      case CURLE_RECV_ERROR:
      case CURLE_SEND_ERROR:
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_HTTP2:
      case CURLE_HTTP2_STREAM:
      case CURLE_WEIRD_SERVER_REPLY:
      case CURLE_BAD_CONTENT_ENCODING:
        RetryOrFail(call, FailureKind::kConnection, "connection failed: " + detail, std::nullopt,
                    now);
        return;
      case CURLE_WRITE_ERROR:
        ep.limiter.Settle(now, call->reserve, 0);
        Fail(call, StatusCode::kUnavailable,
             ep.label + ": response larger than " + std::to_string(kMaxResponseBytes) + " bytes");
        return;
      default:
        ep.limiter.Settle(now, call->reserve, 0);
        Fail(call, StatusCode::kUnavailable, ep.label + ": " + detail);
        return;
    }
  }
  if (http_status >= 200 && http_status < 300) {
    Result<ParsedChatResponse> parsed = ParseChatResponseBody(call->response);
    if (!parsed.ok()) {
      RetryOrFail(call, FailureKind::kMalformed,
                  "HTTP " + std::to_string(http_status) +
                      " with a malformed body: " + parsed.status().message(),
                  std::nullopt, now);
      return;
    }
    Succeed(call, std::move(*parsed), now);
    return;
  }
  const std::string what =
      "HTTP " + std::to_string(http_status) + ": " + ExtractErrorMessage(call->response);
  if (IsRetryableHttpStatus(http_status)) {
    std::optional<int64_t> server_delay;
    if (http_status == 429 || http_status == 503) {
      if (!call->retry_after_ms.empty()) server_delay = ParseRetryAfterMs(call->retry_after_ms);
      if (!server_delay && !call->retry_after.empty()) {
        server_delay = ParseRetryAfter(call->retry_after, env_->WallMicros());
      }
    }
    if (http_status == 429) ep.rate_limited.fetch_add(1, std::memory_order_relaxed);
    RetryOrFail(call, http_status == 429 ? FailureKind::kRateLimited : FailureKind::kServer, what,
                server_delay, now);
    return;
  }
  ep.limiter.Settle(now, call->reserve, 0);
  if (http_status >= 300 && http_status < 400) {
    Fail(call, StatusCode::kUnavailable,
         ep.label + ": " + what + " (redirects are not followed; check the base URL)");
    return;
  }
  const StatusCode code = CodeForHttpStatus(http_status);
  if ((code == StatusCode::kPermissionDenied || code == StatusCode::kNotFound) && !ep.fatal) {
    ep.fatal = Status(code, ep.label + ": " + what);
  }
  Fail(call, code, ep.label + ": " + what);
}

void HttpClientImpl::RetryOrFail(Call* call, FailureKind kind, const std::string& what,
                                 std::optional<int64_t> server_delay_us, int64_t now) {
  Endpoint& ep = *call->ep;
  ep.limiter.Settle(now, call->reserve, 0);  // a failed attempt produced no tokens
  call->last_kind = kind;
  RetryPlan plan = PlanRetry(ep.retry, call->attempts, server_delay_us, rng_);
  switch (plan.action) {
    case RetryPlan::Action::kWaitTooLong:
      Fail(call, StatusCode::kResourceExhausted,
           ep.label + ": " + what + "; the server asked to wait " + FormatMs(plan.delay_us) +
               ", more than max_retry_after_ms=" + std::to_string(ep.options.max_retry_after_ms));
      return;
    case RetryPlan::Action::kGiveUp:
      Fail(call, FinalCode(kind),
           ep.label + ": gave up after " + std::to_string(call->attempts) +
               (call->attempts == 1 ? " attempt" : " attempts") + "; last error: " + what);
      return;
    case RetryPlan::Action::kRetry:
      break;
  }
  if (kind == FailureKind::kRateLimited) {
    // Hold back the whole endpoint, then probe with one request, so a queue of calls does not
    // storm a server that just said 429.
    ep.blocked_until_us = std::max(ep.blocked_until_us, now + plan.delay_us);
    ep.probing = true;
  }
  ep.queued.fetch_add(1, std::memory_order_relaxed);
  call->due_us = now + plan.delay_us;
  retry_timers_.push(call);
}

void HttpClientImpl::Succeed(Call* call, ParsedChatResponse parsed, int64_t now) {
  Endpoint& ep = *call->ep;
  ChatResponse response;
  response.usage.prompt_tokens = parsed.prompt_tokens.value_or(call->prompt_estimate);
  response.usage.completion_tokens =
      parsed.completion_tokens.value_or(EstimateTokens(parsed.content.size()));
  ep.limiter.Settle(now, call->reserve, response.usage.total());
  ep.probing = false;
  ep.succeeded.fetch_add(1, std::memory_order_relaxed);
  ep.prompt_tokens.fetch_add(response.usage.prompt_tokens, std::memory_order_relaxed);
  ep.completion_tokens.fetch_add(response.usage.completion_tokens, std::memory_order_relaxed);
  response.message = Message{Role::kAssistant, std::move(parsed.content)};
  response.finish_reason = std::move(parsed.finish_reason);
  response.latency_ms = static_cast<double>(now - call->attempt_start_us) / 1000.0;
  response.attempts = call->attempts;
  response.model = std::move(parsed.model);
  response.system_fingerprint = std::move(parsed.system_fingerprint);
  Finish(call, std::move(response));
}

void HttpClientImpl::Fail(Call* call, StatusCode code, const std::string& message) {
  call->ep->failed.fetch_add(1, std::memory_order_relaxed);
  std::string text = message;
  ReplaceAll(text, call->ep->api_key, "[redacted]");
  Finish(call, Status(code, std::move(text)));
}

void HttpClientImpl::Finish(Call* call, Result<ChatResponse> result) {
  ChatCallback done = std::move(call->done);
  delete call;
  done(std::move(result));
}

void HttpClientImpl::CancelBelow(uint64_t limit) {
  std::vector<Call*> cancelled;
  for (const auto& ep : endpoints_) {
    std::deque<Call*> keep;
    for (Call* call : ep->ready) {
      if (call->seq < limit) {
        cancelled.push_back(call);
      } else {
        keep.push_back(call);
      }
    }
    ep->ready.swap(keep);
  }
  std::vector<Call*> timers;
  while (!retry_timers_.empty()) {
    timers.push_back(retry_timers_.top());
    retry_timers_.pop();
  }
  for (Call* call : timers) {
    if (call->seq < limit) {
      cancelled.push_back(call);
    } else {
      retry_timers_.push(call);
    }
  }
  for (Call* call : cancelled) call->ep->queued.fetch_sub(1, std::memory_order_relaxed);
  std::vector<Call*> wire;
  for (Call* call : in_flight_) {
    if (call->seq < limit) wire.push_back(call);
  }
  const int64_t now = env_->NowMicros();
  for (Call* call : wire) {
    Detach(call);
    call->ep->limiter.Settle(now, call->reserve, 0);
    cancelled.push_back(call);
  }
  std::sort(cancelled.begin(), cancelled.end(),
            [](const Call* a, const Call* b) { return a->seq < b->seq; });
  for (Call* call : cancelled) {
    std::string label = call->ep->label;
    Finish(call, Status::Cancelled(label + ": call cancelled before it completed"));
  }
}

}  // namespace

Result<std::unique_ptr<HttpClient>> HttpClient::Create(const HttpClientOptions& options, Env* env) {
  static std::once_flag curl_init_once;
  static CURLcode curl_init_result = CURLE_OK;
  std::call_once(curl_init_once, [] { curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (curl_init_result != CURLE_OK) {
    return Status::Internal(std::string("curl_global_init failed: ") +
                            curl_easy_strerror(curl_init_result));
  }
  if (options.max_total_connections < 0) {
    return Status::InvalidArgument("max_total_connections " +
                                   std::to_string(options.max_total_connections) +
                                   ": expected >= 0 (0 = sum of endpoint concurrencies)");
  }
  MultiHandle multi(curl_multi_init());
  if (!multi) return Status::Internal("curl_multi_init failed");
  // Reuse connections across calls; HTTP/2 endpoints may multiplex on one connection.
  curl_multi_setopt(multi.get(), CURLMOPT_PIPELINING, static_cast<long>(CURLPIPE_MULTIPLEX));
  auto client = std::make_unique<HttpClientImpl>(options, env == nullptr ? Env::Default() : env,
                                                 std::move(multi));
  client->StartThread();
  return std::unique_ptr<HttpClient>(std::move(client));
}

}  // namespace breakfix
