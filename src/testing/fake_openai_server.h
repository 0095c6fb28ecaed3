// FakeOpenAIServer: a loopback OpenAI-compatible Chat Completions server with exact fault
// injection, for tests, end-to-end CLI runs and benchmarks.
//
// It speaks HTTP/1.1 with keep-alive and Content-Length bodies on raw POSIX sockets (one epoll
// event-loop thread), so every fault is byte-exact: a truncated body really announces more bytes
// than it sends, a hung request really keeps its connection open. Delays are timers in the event
// loop, so a slow answer on one connection never holds up another.
//
// Routes:
//   POST <any path ending in /chat/completions>  -> the Responder decides the reply
//   GET  /v1/models                              -> a model list
//   GET  /health                                 -> {"status":"ok"}
//   anything else                                -> 404 (405 for a known path, wrong method)
// A chat request whose body is not a valid Chat Completions JSON object gets a 400 OpenAI error
// object without reaching the Responder; a body over 8 MiB gets 413.
#ifndef BREAKFIX_TESTING_FAKE_OPENAI_SERVER_H_
#define BREAKFIX_TESTING_FAKE_OPENAI_SERVER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "breakfix/chat_model.h"
#include "breakfix/status.h"

namespace breakfix {

// One request as the server received it.
struct FakeRequest {
  std::string method;                          // "POST", "GET", ...
  std::string path;                            // request target without the query string
  std::string query;                           // text after '?', empty when none
  std::map<std::string, std::string> headers;  // names lowercased; a repeated name keeps the last
  std::string body;                            // raw request body
  // Parsed from a chat completions body (empty / unset for other requests):
  std::string model;
  std::vector<Message> messages;
  std::optional<uint64_t> seed;
  std::optional<double> temperature;
  std::optional<int64_t> max_tokens;
  uint64_t sequence = 0;  // 1 for the first request the server received, then 2, 3, ...
};

// How the server misbehaves for one reply.
enum class FakeFault {
  kNone,
  kMalformedJson,         // 200 with a body that is not valid JSON (correct Content-Length)
  kTruncatedBody,         // Content-Length announces the full body, half is sent, then close
  kCloseWithoutResponse,  // the connection is closed without a byte of response
  kHang,                  // never answer; the connection stays open until the server stops
  kSlowBody,              // headers and half the body, a stall of delay_ms, then the rest
};

// "none", "malformed_json", "truncated_body", "close_without_response", "hang", "slow_body".
const char* FakeFaultName(FakeFault fault);
// Parses a fault name; the error lists the accepted names.
Result<FakeFault> ParseFakeFault(const std::string& name);

// The reply to one chat request.
struct FakeReply {
  int status = 200;           // HTTP status
  std::string content;        // the assistant message text (status 200)
  std::string error_message;  // for a non-2xx status without `body`: the error object's message
                              // (default: the status's reason phrase)
  std::optional<std::string> body;  // when set, sent verbatim instead of the generated JSON
  std::vector<std::pair<std::string, std::string>> headers;  // extra response headers
  int64_t delay_ms = 0;  // wait before responding (kSlowBody: the stall in the middle)
  FakeFault fault = FakeFault::kNone;
  std::optional<int64_t> prompt_tokens;      // default: estimated from the request's messages
  std::optional<int64_t> completion_tokens;  // default: estimated from `content`
  bool omit_usage = false;                   // leave the "usage" object out of the response
  std::string finish_reason = "stop";
  std::string system_fingerprint = "fp_breakfix_fake";  // empty = reported as null
};

// Decides the reply to a chat request. Runs on the server's single event-loop thread (calls never
// overlap), so it must be quick and must not block: ask for a delay in the reply instead of
// sleeping. A thrown exception becomes a 500 reply.
using Responder = std::function<FakeReply(const FakeRequest&)>;

// Rough token count the fake uses when a reply does not say: ceil(chars / 4).
int64_t FakeTokenEstimate(size_t chars);

struct FakeServerOptions {
  int port = 0;                 // 0 = an ephemeral port chosen by the OS
  size_t header_log_size = 32;  // how many recent requests' headers are kept
  std::vector<std::string> model_ids = {"fake-model"};  // listed by GET /v1/models
  size_t max_body_bytes = 8 << 20;                      // larger request bodies get 413
};

// Thread safety: Start/Stop from one thread; every counter accessor may be called from any thread
// at any time.
class FakeOpenAIServer {
 public:
  explicit FakeOpenAIServer(Responder responder, FakeServerOptions options = {});
  ~FakeOpenAIServer();  // Stop()s

  FakeOpenAIServer(const FakeOpenAIServer&) = delete;
  FakeOpenAIServer& operator=(const FakeOpenAIServer&) = delete;

  // Binds 127.0.0.1:port and starts serving. The error names the port and the OS reason.
  Status Start();
  // Closes the listener and every connection (hung ones too) and joins the loop thread.
  // Idempotent.
  void Stop();

  int port() const { return port_; }
  // "http://127.0.0.1:PORT/v1".
  std::string base_url() const;

  int64_t total_requests() const;
  // Requests whose path (without query) is exactly `path`.
  int64_t requests_for_path(const std::string& path) const;
  // Requests received but not yet fully answered, now and at the most.
  int64_t in_flight() const;
  int64_t max_in_flight() const;
  int64_t connections_accepted() const;
  // Headers (names lowercased) of the most recent requests, oldest first.
  std::vector<std::map<std::string, std::string>> recent_headers() const;
  // Zeroes every counter and forgets the recent headers (sequence numbers keep counting).
  void ResetCounters();

 private:
  class Loop;

  Responder responder_;
  FakeServerOptions options_;
  int port_ = 0;
  std::unique_ptr<Loop> loop_;
  std::thread thread_;

  // Counters, shared with the loop thread.
  mutable std::mutex mu_;
  uint64_t sequence_ = 0;  // last request's sequence number; never reset
  int64_t total_requests_ = 0;
  std::map<std::string, int64_t> per_path_;
  int64_t in_flight_ = 0;
  int64_t max_in_flight_ = 0;
  int64_t connections_accepted_ = 0;
  std::deque<std::map<std::string, std::string>> recent_headers_;  // oldest first
};

}  // namespace breakfix

#endif  // BREAKFIX_TESTING_FAKE_OPENAI_SERVER_H_
