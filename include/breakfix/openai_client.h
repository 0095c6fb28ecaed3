// An OpenAI-compatible Chat Completions client (vLLM, llama.cpp server, Ollama, OpenAI, Azure,
// `breakfix serve`) on libcurl's multi interface.
//
// One HttpClient owns one I/O thread and one curl multi handle that drives every request of every
// endpoint at once over keep-alive connections. Each endpoint (an OpenAIChatModel) has its own
// concurrency limit, requests-per-minute and tokens-per-minute budget and retry policy.
#ifndef BREAKFIX_OPENAI_CLIENT_H_
#define BREAKFIX_OPENAI_CLIENT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "breakfix/chat_model.h"
#include "breakfix/env.h"
#include "breakfix/status.h"

namespace breakfix {

struct EndpointOptions {
  std::string name;         // display name; also the role label in logs
  std::string base_url;     // e.g. "http://127.0.0.1:8000/v1"; "/chat/completions" is appended
                            // before any query string (Azure's "?api-version=...")
  std::string model;        // the "model" field sent; may be empty for servers that ignore it
  std::string api_key_env;  // environment variable holding the key; empty = send no key
  std::string api_key_header = "Authorization";  // "Authorization" sends "Bearer KEY"; any other
                                                 // header name (Azure: "api-key") sends KEY as is
  std::map<std::string, std::string> extra_headers;  // sent with every request

  int max_concurrency = 16;        // requests in flight at once for this endpoint
  double requests_per_minute = 0;  // 0 = unlimited
  double tokens_per_minute = 0;    // 0 = unlimited; prompt estimate + max_tokens is reserved
                                   // before sending and corrected from the reported usage

  int max_retries = 6;                  // retries after the first attempt, for 429/5xx/timeouts
  int64_t initial_backoff_ms = 500;     // first backoff; doubles each retry, full jitter
  int64_t max_backoff_ms = 30000;       // cap on one backoff (a Retry-After above it is honoured up
                                        // to max_retry_after_ms)
  int64_t max_retry_after_ms = 120000;  // longest Retry-After honoured; beyond it the call fails

  int64_t connect_timeout_ms = 10000;  // TCP + TLS connect
  int64_t total_timeout_ms = 300000;   // whole request, per attempt
  int64_t idle_timeout_ms = 60000;     // no bytes received for this long aborts the attempt

  // Sampling pinned for this endpoint: each field that is set replaces the request's own value
  // (e.g. a judge endpoint fixed at temperature 0); unset fields leave the request's settings,
  // including its seed, untouched.
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int> max_tokens;
};

// Parses an endpoint spec from the command line: comma-separated key=value pairs, e.g.
//   "name=phi3,url=http://127.0.0.1:8000/v1,model=phi-3-mini,key_env=OPENAI_API_KEY,concurrency=32"
// Keys: name, url, model, key_env, key_header, concurrency, rpm, tpm, retries, backoff_ms,
// max_backoff_ms, max_retry_after_ms, connect_timeout_ms, timeout_ms, idle_timeout_ms,
// temperature, max_tokens, top_p, header.NAME=VALUE.
// A bare URL ("http://host/v1") is accepted as url=. Errors name the key and what was expected.
// temperature, max_tokens and top_p pin that setting for every request to the endpoint (a value
// given on the command line wins over each role's own). "\," is a literal comma inside a value.
Result<EndpointOptions> ParseEndpointSpec(const std::string& spec);

struct HttpClientOptions {
  int max_total_connections = 0;  // 0 = sum of endpoint concurrencies
  bool verbose = false;           // curl verbose output to stderr (never includes the API key
                                  // in breakfix's own logs; curl's may, so off by default)
};

// Counters for one endpoint, read with HttpClient::Stats().
struct EndpointStats {
  int64_t requests = 0;      // HTTP attempts sent
  int64_t succeeded = 0;     // calls that returned a response
  int64_t failed = 0;        // calls that gave up
  int64_t retries = 0;       // attempts beyond the first
  int64_t rate_limited = 0;  // 429 responses received
  int64_t in_flight = 0;     // requests on the wire now
  int64_t queued = 0;        // calls waiting for a slot or budget
  TokenUsage usage;          // summed reported usage
};

// Thread-safe. Destroying the client cancels every pending call (their callbacks receive
// kCancelled) and joins the I/O thread; models made by it must not be used afterwards.
class HttpClient {
 public:
  // `env` (null = Env::Default()) supplies the clock and the API-key variables; it must outlive
  // the client.
  static Result<std::unique_ptr<HttpClient>> Create(const HttpClientOptions& options, Env* env);
  virtual ~HttpClient() = default;

  // A ChatModel for one endpoint. The key is read from the environment now; a missing variable
  // is an InvalidArgument error naming it. An empty name becomes the model id (else host:port).
  // The model is owned by the caller and must not outlive this client.
  virtual Result<std::unique_ptr<ChatModel>> NewChatModel(const EndpointOptions& options) = 0;

  virtual EndpointStats Stats(const std::string& endpoint_name) = 0;

  // Cancels every queued and in-flight call (callbacks get kCancelled) without destroying.
  // Returns after those callbacks ran; called from a callback, it returns at once and the I/O
  // thread cancels them right after. Calls made after it returns proceed normally.
  virtual void CancelAll() = 0;
};

}  // namespace breakfix

#endif  // BREAKFIX_OPENAI_CLIENT_H_
