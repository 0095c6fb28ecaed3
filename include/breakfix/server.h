// `breakfix serve`: an OpenAI-compatible HTTP server in front of an in-process Engine.
//
// Routes: POST /v1/chat/completions (JSON or SSE streaming ending with "data: [DONE]"),
// POST /v1/completions, GET /v1/models, GET /health. Errors are OpenAI-style objects
// {"error": {"message", "type", "param", "code"}} with status 400 (invalid request, prompt longer
// than the context), 401 (missing or wrong API key), 404 (unknown model or route), 413 (body too
// large), 429 (too many requests waiting), 500 (engine failure). Requests are validated before
// they reach the engine; no request can crash the server. Concurrent requests share the engine's
// running batch (continuous batching).
#ifndef BREAKFIX_SERVER_H_
#define BREAKFIX_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "breakfix/engine.h"
#include "breakfix/status.h"

namespace breakfix {

struct ServerOptions {
  std::string host = "127.0.0.1";   // loopback unless told otherwise
  int port = 8080;                  // 0 = any free port (see OpenAIServer::port())
  std::string api_key;              // when non-empty, requests need "Authorization: Bearer KEY";
                                    // never logged
  std::string model_id;             // the id /v1/models lists and requests may name;
                                    // "" = the engine's model id
  size_t max_body_bytes = 8 << 20;  // larger bodies get 413
  int max_pending = 256;  // requests admitted at once (queued or generating); more → 429
  int threads = 128;      // HTTP worker threads (each streaming client holds one)
  int64_t shutdown_grace_ms = 10000;  // Stop(): how long in-flight requests may take to finish
};

// Thread-safe. Start() binds and serves on a background thread; Stop() stops accepting, lets
// in-flight requests finish within the grace period (then cancels them), and joins.
class OpenAIServer {
 public:
  static Result<std::unique_ptr<OpenAIServer>> Create(std::shared_ptr<Engine> engine,
                                                      const ServerOptions& options);
  virtual ~OpenAIServer() = default;
  // Binds host:port; an error names the address and the OS reason.
  virtual Status Start() = 0;
  // The bound port (after Start()).
  virtual int port() const = 0;
  virtual void Stop() = 0;
  // Requests answered so far, and requests in flight now.
  virtual int64_t requests_served() const = 0;
  virtual int64_t in_flight() const = 0;
};

}  // namespace breakfix

#endif  // BREAKFIX_SERVER_H_
