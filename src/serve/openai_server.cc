// The HTTP layer of `breakfix serve` (cpp-httplib): routes, authentication, admission, and the
// bridge from engine events to JSON or SSE responses. The wire format lives in openai_api.cc.
#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "breakfix/server.h"
#include "serve/openai_api.h"

namespace breakfix {
namespace {

using serve::ApiError;
using serve::CompletionResult;
using serve::ResponseMeta;

constexpr const char* kJson = "application/json";

int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Constant-time comparison, so response timing does not reveal how much of a key matched.
bool SameSecret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

void SendError(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(serve::ErrorJson(e), kJson);
}

ApiError ServerError(int status, const std::string& message, const std::string& code = "") {
  ApiError e;
  e.status = status;
  e.message = message;
  e.type = status == 429 ? "rate_limit_error"
                         : (status >= 500 ? "server_error" : "invalid_request_error");
  e.code = code;
  return e;
}

// Events of one generation, handed from the engine thread to the HTTP worker.
struct Generation {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<GenerationEvent> events;
  bool done = false;
  uint64_t id = 0;

  void Push(const GenerationEvent& e) {
    {
      std::lock_guard<std::mutex> lock(mu);
      events.push_back(e);
      if (e.done) done = true;
    }
    cv.notify_one();
  }
  // Waits up to `timeout` for events; returns what is queued (possibly nothing).
  std::deque<GenerationEvent> Take(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, timeout, [&] { return !events.empty(); });
    std::deque<GenerationEvent> out;
    out.swap(events);
    return out;
  }
};

class ServerImpl final : public OpenAIServer {
 public:
  ServerImpl(std::shared_ptr<Engine> engine, const ServerOptions& options)
      : engine_(std::move(engine)), options_(options) {
    model_id_ = options_.model_id.empty() ? engine_->info().model_id : options_.model_id;
    fingerprint_ = "fp_breakfix_" + std::string(BREAKFIX_VERSION) + "_" +
                   engine_->info().content_hash.substr(0, 8);
    created_ = UnixSeconds();
  }

  ~ServerImpl() override { Stop(); }

  Status Start() override {
    Routes();
    const int threads = std::max(4, options_.threads);
    svr_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    svr_.set_payload_max_length(options_.max_body_bytes);
    svr_.set_keep_alive_max_count(1000);
    // Small SSE chunks must leave at once: without this, Nagle's algorithm holds each token back
    // until the previous one is acknowledged (tens of milliseconds of time to first token).
    svr_.set_tcp_nodelay(true);
    int listen_fd = -1;
    svr_.set_socket_options([&listen_fd](int sock) {
      listen_fd = sock;
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    int port = options_.port;
    if (port == 0) {
      port = svr_.bind_to_any_port(options_.host);
    } else if (!svr_.bind_to_port(options_.host, port)) {
      port = -1;
    }
    if (port < 0) {
      return Status::IOError("cannot listen on " + options_.host + ":" +
                             std::to_string(options_.port) + " (address in use or not available)");
    }
    // Debian's cpp-httplib listens with a backlog of 5, which drops connections when dozens of
    // clients connect at once; listen() again on the bound socket raises the backlog.
    if (listen_fd >= 0) ::listen(listen_fd, 1024);
    port_ = port;
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
    return Status::OK();
  }

  int port() const override { return port_; }
  int64_t requests_served() const override { return served_.load(); }
  int64_t in_flight() const override { return in_flight_.load(); }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    stopping_.store(true);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.shutdown_grace_ms);
    while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    {
      std::lock_guard<std::mutex> lock(active_mu_);
      for (uint64_t id : active_) engine_->Cancel(id);
    }
    while (in_flight_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    svr_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Routes() {
    svr_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (options_.api_key.empty() || req.path == "/health")
        return httplib::Server::HandlerResponse::Unhandled;
      const std::string auth = req.get_header_value("Authorization");
      if (auth.rfind("Bearer ", 0) == 0 && SameSecret(auth.substr(7), options_.api_key)) {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      ApiError e = ServerError(401,
                               auth.empty() ? "missing API key: send 'Authorization: Bearer KEY'"
                                            : "incorrect API key provided",
                               "invalid_api_key");
      SendError(res, e);
      return httplib::Server::HandlerResponse::Handled;
    });
    svr_.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      if (res.status == 404) {
        SendError(res,
                  ServerError(404, "unknown route " + req.method + " " + req.path, "unknown_url"));
      } else if (res.status == 413) {
        SendError(res, ServerError(413, "request body too large", "request_too_large"));
      } else {
        SendError(res, ServerError(res.status, "HTTP " + std::to_string(res.status)));
      }
    });
    svr_.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
          SendError(res, ServerError(500, "internal error while handling the request"));
        });
    svr_.Get("/health", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"status":"ok"})", kJson);
    });
    svr_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(serve::ModelsJson(model_id_, created_), kJson);
    });
    svr_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      HandleChat(req, res);
    });
    svr_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      HandleCompletion(req, res);
    });
  }

  // Checks shared by both endpoints; false when `res` already holds an error.
  bool Admit(const serve::SamplingRequest& s, size_t prompt_tokens, httplib::Response& res) {
    if (stopping_.load()) {
      SendError(res, ServerError(503, "the server is shutting down", "shutting_down"));
      return false;
    }
    if (!s.model.empty() && s.model != model_id_) {
      ApiError e = ServerError(
          404, "the model '" + s.model + "' does not exist; this server serves '" + model_id_ + "'",
          "model_not_found");
      e.param = "model";
      SendError(res, e);
      return false;
    }
    const int ctx = engine_->info().context_length;
    if (prompt_tokens + 1 > static_cast<size_t>(ctx)) {
      ApiError e = ServerError(400,
                               "this model's maximum context length is " + std::to_string(ctx) +
                                   " tokens, but the prompt has " + std::to_string(prompt_tokens),
                               "context_length_exceeded");
      e.param = "messages";
      SendError(res, e);
      return false;
    }
    if (in_flight_.fetch_add(1) >= options_.max_pending) {
      in_flight_.fetch_sub(1);
      res.set_header("Retry-After", "1");
      SendError(res, ServerError(429,
                                 "too many requests in flight (" +
                                     std::to_string(options_.max_pending) + "); retry later",
                                 "rate_limit_exceeded"));
      return false;
    }
    return true;
  }

  std::shared_ptr<Generation> Launch(std::vector<int32_t> prompt, GenerationParams params) {
    auto gen = std::make_shared<Generation>();
    const int ctx = engine_->info().context_length;
    const int room = ctx - static_cast<int>(prompt.size());
    if (params.max_tokens <= 0 || params.max_tokens > room) params.max_tokens = room;
    std::lock_guard<std::mutex> lock(active_mu_);
    gen->id = engine_->Submit(std::move(prompt), std::move(params),
                              [gen](const GenerationEvent& e) { gen->Push(e); });
    active_.insert(gen->id);
    return gen;
  }

  void Finish(const std::shared_ptr<Generation>& gen) {
    {
      std::lock_guard<std::mutex> lock(active_mu_);
      active_.erase(gen->id);
    }
    served_.fetch_add(1);
    in_flight_.fetch_sub(1);
  }

  ResponseMeta Meta(bool chat, bool logprobs) {
    ResponseMeta m;
    char id[48];
    std::snprintf(id, sizeof(id), "%s-%llx%06llx", chat ? "chatcmpl" : "cmpl",
                  static_cast<unsigned long long>(created_),
                  static_cast<unsigned long long>(next_id_.fetch_add(1)));
    m.id = id;
    m.created = UnixSeconds();
    m.model = model_id_;
    m.system_fingerprint = fingerprint_;
    m.logprobs = logprobs;
    return m;
  }

  void HandleChat(const httplib::Request& req, httplib::Response& res) {
    auto parsed = serve::ParseChatRequest(req.body);
    if (auto* e = std::get_if<ApiError>(&parsed)) return SendError(res, *e);
    auto& spec = std::get<serve::ChatRequestSpec>(parsed);
    std::vector<int32_t> prompt = engine_->EncodeChat(spec.messages);
    Respond(/*chat=*/true, spec.sampling, std::move(prompt), res);
  }

  void HandleCompletion(const httplib::Request& req, httplib::Response& res) {
    auto parsed = serve::ParseCompletionRequest(req.body);
    if (auto* e = std::get_if<ApiError>(&parsed)) return SendError(res, *e);
    auto& spec = std::get<serve::CompletionRequestSpec>(parsed);
    std::vector<int32_t> prompt =
        spec.tokens_given
            ? spec.prompt_tokens
            : engine_->tokenizer().Encode(spec.prompt, engine_->tokenizer().add_bos_default(),
                                          /*parse_special=*/false);
    const int32_t vocab = engine_->tokenizer().vocab_size();
    for (int32_t t : prompt) {
      if (t >= vocab) {
        ApiError e =
            ServerError(400, "prompt token " + std::to_string(t) +
                                 " is outside the vocabulary (size " + std::to_string(vocab) + ")");
        e.param = "prompt";
        return SendError(res, e);
      }
    }
    Respond(/*chat=*/false, spec.sampling, std::move(prompt), res);
  }

  void Respond(bool chat, const serve::SamplingRequest& s, std::vector<int32_t> prompt,
               httplib::Response& res) {
    if (!Admit(s, prompt.size(), res)) return;
    ResponseMeta meta = Meta(chat, s.params.logprobs);
    auto gen = Launch(std::move(prompt), s.params);
    if (!s.stream) {
      CompletionResult result;
      bool first = true;
      bool done = false;
      std::string error;
      while (!done) {
        for (const GenerationEvent& e : gen->Take(std::chrono::milliseconds(200))) {
          Accumulate(e, &first, &result);
          if (e.done) {
            done = true;
            result.finish_reason = e.finish_reason;
            result.prompt_tokens = e.prompt_tokens;
            result.completion_tokens = e.completion_tokens;
            error = e.error;
          }
        }
      }
      Finish(gen);
      if (result.finish_reason == "error") {
        return SendError(res, ServerError(500, "generation failed: " + error));
      }
      if (result.finish_reason == "cancelled") {
        return SendError(res, ServerError(503, "the request was cancelled (server shutting down)"));
      }
      res.set_content(
          chat ? serve::ChatCompletionJson(meta, result) : serve::TextCompletionJson(meta, result),
          kJson);
      return;
    }
    // Streaming: the content provider runs on this worker thread after the handler returns.
    struct StreamState {
      bool started = false;
      bool first_token = true;
      bool finished = false;
    };
    auto state = std::make_shared<StreamState>();
    const bool include_usage = s.include_usage;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, gen, meta, chat, include_usage, state](size_t, httplib::DataSink& sink) {
          if (!state->started) {
            state->started = true;
            if (chat) {
              const std::string role = "assistant";
              const std::string ev = serve::ChatChunkEvent(meta, &role, "", {}, {}, nullptr);
              if (!sink.write(ev.data(), ev.size())) return false;
            }
          }
          // Everything that arrived since the last wake-up goes out as one chunk and one write.
          CompletionResult piece;
          const GenerationEvent* last = nullptr;
          std::deque<GenerationEvent> events = gen->Take(std::chrono::milliseconds(100));
          for (const GenerationEvent& e : events) {
            Accumulate(e, &state->first_token, &piece);
            if (e.done) last = &e;
          }
          std::string out;
          if (!piece.text.empty() || !piece.token_texts.empty()) {
            out += chat ? serve::ChatChunkEvent(meta, nullptr, piece.text, piece.token_texts,
                                                piece.logprobs, nullptr)
                        : serve::TextChunkEvent(meta, piece.text, piece.token_texts, piece.logprobs,
                                                nullptr);
          }
          if (last != nullptr) {
            const GenerationEvent& e = *last;
            if (e.finish_reason == "error" || e.finish_reason == "cancelled") {
              out += "data: " +
                     serve::ErrorJson(ServerError(e.finish_reason == "error" ? 500 : 503,
                                                  e.finish_reason == "error"
                                                      ? "generation failed: " + e.error
                                                      : "the request was cancelled")) +
                     "\n\n";
            } else {
              out += chat ? serve::ChatChunkEvent(meta, nullptr, "", {}, {}, &e.finish_reason)
                          : serve::TextChunkEvent(meta, "", {}, {}, &e.finish_reason);
              if (include_usage) {
                out += serve::UsageChunkEvent(meta, chat, e.prompt_tokens, e.completion_tokens);
              }
            }
            out += serve::kDoneEvent;
            state->finished = true;
          }
          if (!out.empty() && !sink.write(out.data(), out.size())) return false;
          if (last != nullptr) {
            sink.done();
            return true;
          }
          return sink.is_writable();
        },
        [this, gen, state](bool) {
          // Runs once the response is over, finished or not (the client may have gone away): a
          // generation nobody reads any more is cancelled. The engine's callback holds its own
          // reference to `gen`, so late events are harmless.
          if (!state->finished) engine_->Cancel(gen->id);
          Finish(gen);
        });
  }

  // Appends an event's text and per-token logprob details to `out`.
  void Accumulate(const GenerationEvent& e, bool* first, CompletionResult* out) {
    out->text += e.text;
    if (e.logprobs.empty()) {
      if (!e.tokens.empty()) *first = false;
      return;
    }
    for (size_t i = 0; i < e.tokens.size(); ++i) {
      out->token_texts.push_back(engine_->tokenizer().TokenBytes(e.tokens[i], *first));
      out->logprobs.push_back(i < e.logprobs.size() ? e.logprobs[i] : 0.0f);
      *first = false;
    }
  }

  std::shared_ptr<Engine> engine_;
  ServerOptions options_;
  std::string model_id_;
  std::string fingerprint_;
  int64_t created_ = 0;
  httplib::Server svr_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int64_t> served_{0};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<uint64_t> next_id_{1};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
  std::mutex active_mu_;
  std::set<uint64_t> active_;
};

}  // namespace

Result<std::unique_ptr<OpenAIServer>> OpenAIServer::Create(std::shared_ptr<Engine> engine,
                                                           const ServerOptions& options) {
  if (engine == nullptr) return Status::InvalidArgument("serve: no engine");
  if (options.port < 0 || options.port > 65535) {
    return Status::InvalidArgument("serve: port must be 0..65535, got " +
                                   std::to_string(options.port));
  }
  if (options.max_pending < 1) return Status::InvalidArgument("serve: max_pending must be >= 1");
  return std::unique_ptr<OpenAIServer>(new ServerImpl(std::move(engine), options));
}

}  // namespace breakfix
