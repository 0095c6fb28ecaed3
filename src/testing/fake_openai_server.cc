#include "testing/fake_openai_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <ctime>
#include <exception>
#include <queue>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

namespace breakfix {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxHeaderBytes = 64 << 10;
constexpr int kMaxEvents = 256;
constexpr uint64_t kListenerId = 0;
constexpr uint64_t kWakeId = 1;
constexpr uint64_t kFirstConnId = 2;

// Serialises without throwing: invalid UTF-8 from a responder becomes U+FFFD.
std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

int64_t MonoMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return status < 400 ? "Status" : "Error";
  }
}

// The "type" field OpenAI puts in an error object for a status.
const char* ErrorType(int status) {
  if (status == 401 || status == 403) return "authentication_error";
  if (status == 404) return "not_found_error";
  if (status == 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

std::string ErrorBody(int status, const std::string& message) {
  Json j;
  j["error"] = {{"message", message.empty() ? ReasonPhrase(status) : message},
                {"type", ErrorType(status)},
                {"code", nullptr}};
  return Dump(j);
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Text of a message's "content": a string, null, or an array of {"type":"text","text":...} parts.
Result<std::string> ContentText(const Json& content, size_t index) {
  if (content.is_null()) return std::string();
  if (content.is_string()) return content.get<std::string>();
  if (content.is_array()) {
    std::string text;
    for (const Json& part : content) {
      if (part.is_object() && part.contains("text") && part["text"].is_string()) {
        text += part["text"].get<std::string>();
      }
    }
    return text;
  }
  return Status::InvalidArgument("messages[" + std::to_string(index) +
                                 "].content: expected a string, null or an array of parts");
}

// Fills the chat fields of `req` from its JSON body; the error says which field is wrong.
Status ParseChatBody(FakeRequest& req) {
  Json j = Json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("request body is not valid JSON");
  if (!j.is_object()) return Status::InvalidArgument("request body: expected a JSON object");
  if (j.contains("model")) {
    if (!j["model"].is_string()) return Status::InvalidArgument("model: expected a string");
    req.model = j["model"].get<std::string>();
  }
  if (!j.contains("messages") || !j["messages"].is_array()) {
    return Status::InvalidArgument("messages: expected an array of messages");
  }
  const Json& messages = j["messages"];
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = messages[i];
    std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return Status::InvalidArgument(where + ".role: expected a string");
    }
    std::string role_name = m["role"].get<std::string>();
    if (role_name == "developer") role_name = "system";
    Result<Role> role = ParseRole(role_name);
    if (!role.ok()) return role.status().WithContext(where + ".role");
    Result<std::string> text = ContentText(m.contains("content") ? m["content"] : Json(), i);
    if (!text.ok()) return text.status();
    req.messages.push_back(Message{*role, std::move(*text)});
  }
  if (j.contains("seed") && !j["seed"].is_null()) {
    if (!j["seed"].is_number_integer()) return Status::InvalidArgument("seed: expected an integer");
    req.seed = j["seed"].get<uint64_t>();
  }
  if (j.contains("temperature") && !j["temperature"].is_null()) {
    if (!j["temperature"].is_number()) {
      return Status::InvalidArgument("temperature: expected a number");
    }
    req.temperature = j["temperature"].get<double>();
  }
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (j.contains(key) && !j[key].is_null()) {
      if (!j[key].is_number_integer()) {
        return Status::InvalidArgument(std::string(key) + ": expected an integer");
      }
      req.max_tokens = j[key].get<int64_t>();
    }
  }
  return Status::OK();
}

std::string ChatCompletionBody(const FakeRequest& req, const FakeReply& reply) {
  size_t prompt_chars = 0;
  for (const Message& m : req.messages) prompt_chars += m.content.size();
  int64_t prompt = reply.prompt_tokens.value_or(FakeTokenEstimate(prompt_chars));
  int64_t completion = reply.completion_tokens.value_or(FakeTokenEstimate(reply.content.size()));
  Json j;
  j["id"] = "chatcmpl-fake-" + std::to_string(req.sequence);
  j["object"] = "chat.completion";
  j["created"] = static_cast<int64_t>(std::time(nullptr));
  j["model"] = req.model.empty() ? std::string("fake-model") : req.model;
  j["choices"] = Json::array({Json{
      {"index", 0},
      {"message", {{"role", "assistant"}, {"content", reply.content}}},
      {"finish_reason", reply.finish_reason},
  }});
  if (!reply.omit_usage) {
    j["usage"] = {{"prompt_tokens", prompt},
                  {"completion_tokens", completion},
                  {"total_tokens", prompt + completion}};
  }
  if (reply.system_fingerprint.empty()) {
    j["system_fingerprint"] = nullptr;
  } else {
    j["system_fingerprint"] = reply.system_fingerprint;
  }
  return Dump(j);
}

std::string ResponseHead(int status, size_t content_length,
                         const std::vector<std::pair<std::string, std::string>>& headers,
                         bool close) {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + ReasonPhrase(status) + "\r\n";
  head += "Content-Type: application/json\r\n";
  head += "Content-Length: " + std::to_string(content_length) + "\r\n";
  for (const auto& [name, value] : headers) head += name + ": " + value + "\r\n";
  if (close) head += "Connection: close\r\n";
  head += "\r\n";
  return head;
}

}  // namespace

const char* FakeFaultName(FakeFault fault) {
  switch (fault) {
    case FakeFault::kNone:
      return "none";
    case FakeFault::kMalformedJson:
      return "malformed_json";
    case FakeFault::kTruncatedBody:
      return "truncated_body";
    case FakeFault::kCloseWithoutResponse:
      return "close_without_response";
    case FakeFault::kHang:
      return "hang";
    case FakeFault::kSlowBody:
      return "slow_body";
  }
  return "none";
}

Result<FakeFault> ParseFakeFault(const std::string& name) {
  for (FakeFault f : {FakeFault::kNone, FakeFault::kMalformedJson, FakeFault::kTruncatedBody,
                      FakeFault::kCloseWithoutResponse, FakeFault::kHang, FakeFault::kSlowBody}) {
    if (name == FakeFaultName(f)) return f;
  }
  return Status::InvalidArgument("unknown fault \"" + name +
                                 "\": expected none, malformed_json, truncated_body, "
                                 "close_without_response, hang or slow_body");
}

int64_t FakeTokenEstimate(size_t chars) { return static_cast<int64_t>((chars + 3) / 4); }

// The event loop: owns every socket, runs on the server's thread. Only Wake() is called from
// other threads.
class FakeOpenAIServer::Loop {
 public:
  explicit Loop(FakeOpenAIServer* server) : server_(server) {}

  ~Loop() {
    for (auto& [id, conn] : conns_) ::close(conn->fd);
    if (listen_fd_ >= 0) ::close(listen_fd_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
  }

  Status Open(int port, int* bound_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) return Errno("socket");
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      return Errno("bind 127.0.0.1:" + std::to_string(port));
    }
    if (::listen(listen_fd_, 1024) != 0) return Errno("listen on port " + std::to_string(port));
    socklen_t len = sizeof(addr);
    if (::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return Errno("getsockname");
    }
    *bound_port = ntohs(addr.sin_port);
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) return Errno("epoll_create1");
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) return Errno("eventfd");
    BF_RETURN_IF_ERROR(Watch(listen_fd_, kListenerId, EPOLLIN, EPOLL_CTL_ADD));
    BF_RETURN_IF_ERROR(Watch(wake_fd_, kWakeId, EPOLLIN, EPOLL_CTL_ADD));
    return Status::OK();
  }

  void Wake() {
    uint64_t one = 1;
    ssize_t n = ::write(wake_fd_, &one, sizeof(one));
    (void)n;
  }

  void Run() {
    epoll_event events[kMaxEvents];
    while (!stopping_) {
      int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, NextTimeoutMs());
      if (n < 0 && errno != EINTR) break;
      for (int i = 0; i < n && !stopping_; ++i) {
        uint64_t id = events[i].data.u64;
        if (id == kListenerId) {
          AcceptAll();
        } else if (id == kWakeId) {
          stopping_ = true;
        } else {
          auto it = conns_.find(id);
          if (it == conns_.end()) continue;
          Conn* conn = it->second.get();
          if (events[i].events & EPOLLOUT) OnWritable(conn);
          if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) OnReadable(conn);
        }
      }
      FireTimers();
      dead_.clear();
    }
  }

 private:
  struct Conn {
    int fd = -1;
    uint64_t id = 0;
    std::string in;
    size_t in_off = 0;
    std::string out;
    size_t out_off = 0;
    bool busy = false;  // a request is being answered; later ones wait in `in`
    bool complete_when_flushed = false;
    bool close_when_flushed = false;
    bool sent_continue = false;
    bool want_write = false;
    bool closed = false;
  };

  enum class TimerAction { kSend, kSendThenClose, kClose };

  struct Timer {
    int64_t due_us;
    uint64_t order;  // ties fire in creation order
    uint64_t conn_id;
    TimerAction action;
    std::string data;
    bool operator>(const Timer& o) const {
      return due_us != o.due_us ? due_us > o.due_us : order > o.order;
    }
  };

  static Status Errno(const std::string& what) {
    return Status::IOError("fake OpenAI server: " + what + ": " + std::strerror(errno));
  }

  Status Watch(int fd, uint64_t id, uint32_t events, int op) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = id;
    if (::epoll_ctl(epoll_fd_, op, fd, &ev) != 0) return Errno("epoll_ctl");
    return Status::OK();
  }

  int NextTimeoutMs() const {
    if (timers_.empty()) return -1;
    int64_t wait_us = timers_.top().due_us - MonoMicros();
    if (wait_us <= 0) return 0;
    return static_cast<int>(std::min<int64_t>((wait_us + 999) / 1000, 60000));
  }

  void AcceptAll() {
    while (true) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or a transient error: the listener stays armed
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      auto conn = std::make_unique<Conn>();
      conn->fd = fd;
      conn->id = next_conn_id_++;
      if (!Watch(fd, conn->id, EPOLLIN, EPOLL_CTL_ADD).ok()) {
        ::close(fd);
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(server_->mu_);
        ++server_->connections_accepted_;
      }
      conns_.emplace(conn->id, std::move(conn));
    }
  }

  void CloseConn(Conn* conn) {
    if (conn->closed) return;
    conn->closed = true;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, conn->fd, nullptr);
    ::close(conn->fd);
    if (conn->busy) FinishRequest(conn);
    auto it = conns_.find(conn->id);
    dead_.push_back(std::move(it->second));  // freed after this loop iteration
    conns_.erase(it);
  }

  void FinishRequest(Conn* conn) {
    conn->busy = false;
    std::lock_guard<std::mutex> lock(server_->mu_);
    --server_->in_flight_;
  }

  void OnReadable(Conn* conn) {
    char buf[64 << 10];
    while (!conn->closed) {
      ssize_t n = ::recv(conn->fd, buf, sizeof(buf), 0);
      if (n > 0) {
        conn->in.append(buf, static_cast<size_t>(n));
        // A client that keeps sending while its request is parked (hung) cannot grow memory
        // without bound.
        if (conn->in.size() - conn->in_off >
            server_->options_.max_body_bytes + kMaxHeaderBytes + (1 << 20)) {
          CloseConn(conn);
          return;
        }
        continue;
      }
      if (n == 0) {
        CloseConn(conn);
        return;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      CloseConn(conn);
      return;
    }
    ProcessBuffered(conn);
  }

  void OnWritable(Conn* conn) {
    Flush(conn);
    if (!conn->closed && !conn->busy) ProcessBuffered(conn);
  }

  // Queues bytes and writes what the socket takes now.
  void Send(Conn* conn, std::string_view bytes, bool completes, bool close_after) {
    if (conn->closed) return;
    conn->out.append(bytes);
    conn->complete_when_flushed = conn->complete_when_flushed || completes;
    conn->close_when_flushed = conn->close_when_flushed || close_after;
    Flush(conn);
  }

  void Flush(Conn* conn) {
    while (!conn->closed && conn->out_off < conn->out.size()) {
      ssize_t n = ::send(conn->fd, conn->out.data() + conn->out_off,
                         conn->out.size() - conn->out_off, MSG_NOSIGNAL);
      if (n >= 0) {
        conn->out_off += static_cast<size_t>(n);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!conn->want_write) {
          conn->want_write = true;
          Watch(conn->fd, conn->id, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
        }
        return;
      }
      CloseConn(conn);
      return;
    }
    if (conn->closed) return;
    conn->out.clear();
    conn->out_off = 0;
    if (conn->want_write) {
      conn->want_write = false;
      Watch(conn->fd, conn->id, EPOLLIN, EPOLL_CTL_MOD);
    }
    if (conn->close_when_flushed) {
      CloseConn(conn);
      return;
    }
    if (conn->complete_when_flushed) {
      conn->complete_when_flushed = false;
      FinishRequest(conn);
    }
  }

  void SendSimple(Conn* conn, int status, const std::string& body, bool close) {
    Send(conn, ResponseHead(status, body.size(), {}, close) + body, true, close);
  }

  // Parses and answers buffered requests, one at a time, until one is left pending.
  void ProcessBuffered(Conn* conn) {
    while (!conn->closed && !conn->busy) {
      std::string_view buffered(conn->in);
      buffered.remove_prefix(conn->in_off);
      if (buffered.empty()) break;
      size_t head_end = buffered.find("\r\n\r\n");
      if (head_end == std::string_view::npos) {
        if (buffered.size() > kMaxHeaderBytes)
          RejectUnparsed(conn, 431, "request headers too large");
        break;
      }
      FakeRequest req;
      std::string error;
      size_t content_length = 0;
      bool keep_alive = true, expect_continue = false;
      if (!ParseHead(buffered.substr(0, head_end), req, content_length, keep_alive, expect_continue,
                     error)) {
        RejectUnparsed(conn, error == "chunked" ? 501 : 400,
                       error == "chunked" ? "chunked request bodies are not supported" : error);
        break;
      }
      if (content_length > server_->options_.max_body_bytes) {
        RejectUnparsed(conn, 413,
                       "request body of " + std::to_string(content_length) +
                           " bytes exceeds the limit of " +
                           std::to_string(server_->options_.max_body_bytes) + " bytes");
        break;
      }
      size_t total = head_end + 4 + content_length;
      if (buffered.size() < total) {
        if (expect_continue && !conn->sent_continue) {
          conn->sent_continue = true;
          Send(conn, "HTTP/1.1 100 Continue\r\n\r\n", false, false);
        }
        break;
      }
      req.body.assign(buffered.substr(head_end + 4, content_length));
      conn->in_off += total;
      conn->sent_continue = false;
      if (conn->in_off == conn->in.size()) {
        conn->in.clear();
        conn->in_off = 0;
      } else if (conn->in_off > (64 << 10)) {
        conn->in.erase(0, conn->in_off);
        conn->in_off = 0;
      }
      Handle(conn, std::move(req), keep_alive);
    }
  }

  // Answers a request that could not be parsed (so it was never counted) and closes, since the
  // rest of the stream cannot be trusted.
  void RejectUnparsed(Conn* conn, int status, const std::string& message) {
    conn->busy = true;
    {
      std::lock_guard<std::mutex> lock(server_->mu_);
      ++server_->in_flight_;
      server_->max_in_flight_ = std::max(server_->max_in_flight_, server_->in_flight_);
    }
    SendSimple(conn, status, ErrorBody(status, message), /*close=*/true);
  }

  static bool ParseHead(std::string_view head, FakeRequest& req, size_t& content_length,
                        bool& keep_alive, bool& expect_continue, std::string& error) {
    size_t line_end = head.find("\r\n");
    std::string_view line = head.substr(0, line_end);
    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) {
      error = "malformed request line: expected \"METHOD TARGET HTTP/1.1\"";
      return false;
    }
    req.method.assign(line.substr(0, sp1));
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (version != "HTTP/1.1" && version != "HTTP/1.0") {
      error = "unsupported HTTP version \"" + std::string(version) + "\": expected HTTP/1.1";
      return false;
    }
    keep_alive = version == "HTTP/1.1";
    size_t q = target.find('?');
    req.path.assign(target.substr(0, q));
    if (q != std::string_view::npos) req.query.assign(target.substr(q + 1));
    bool has_length = false;
    std::string_view rest =
        line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
    while (!rest.empty()) {
      size_t end = rest.find("\r\n");
      std::string_view h = rest.substr(0, end);
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
      size_t colon = h.find(':');
      if (colon == std::string_view::npos || colon == 0) {
        error = "malformed header line: expected \"Name: value\"";
        return false;
      }
      std::string name = ToLower(Trim(h.substr(0, colon)));
      std::string value(Trim(h.substr(colon + 1)));
      if (name == "content-length") {
        size_t n = 0;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (ec != std::errc() || p != value.data() + value.size()) {
          error = "Content-Length: expected a non-negative integer, got \"" + value + "\"";
          return false;
        }
        content_length = n;
        has_length = true;
      } else if (name == "transfer-encoding") {
        error = "chunked";
        return false;
      } else if (name == "connection") {
        std::string v = ToLower(value);
        if (v == "close") keep_alive = false;
        if (v == "keep-alive") keep_alive = true;
      } else if (name == "expect") {
        expect_continue = ToLower(value) == "100-continue";
      }
      req.headers[name] = std::move(value);
    }
    if (!has_length) content_length = 0;
    return true;
  }

  void Handle(Conn* conn, FakeRequest req, bool keep_alive) {
    try {
      HandleUnguarded(conn, std::move(req), keep_alive);
    } catch (const std::exception& e) {
      // Nothing a test's responder does may take the server down.
      if (!conn->closed) {
        SendSimple(conn, 500, ErrorBody(500, std::string("fake server error: ") + e.what()), true);
      }
    }
  }

  void HandleUnguarded(Conn* conn, FakeRequest req, bool keep_alive) {
    conn->busy = true;
    {
      std::lock_guard<std::mutex> lock(server_->mu_);
      req.sequence = ++server_->sequence_;
      ++server_->total_requests_;
      ++server_->per_path_[req.path];
      ++server_->in_flight_;
      server_->max_in_flight_ = std::max(server_->max_in_flight_, server_->in_flight_);
      if (server_->options_.header_log_size > 0) {
        server_->recent_headers_.push_back(req.headers);
        while (server_->recent_headers_.size() > server_->options_.header_log_size) {
          server_->recent_headers_.pop_front();
        }
      }
    }
    bool close = !keep_alive;
    if (EndsWith(req.path, "/chat/completions")) {
      if (req.method != "POST") {
        SendSimple(conn, 405, ErrorBody(405, "use POST for " + req.path), close);
        return;
      }
      Status parsed = ParseChatBody(req);
      if (!parsed.ok()) {
        SendSimple(conn, 400, ErrorBody(400, parsed.message()), close);
        return;
      }
      FakeReply reply;
      try {
        reply = server_->responder_(req);
      } catch (const std::exception& e) {
        SendSimple(conn, 500, ErrorBody(500, std::string("responder threw: ") + e.what()), close);
        return;
      } catch (...) {
        SendSimple(conn, 500, ErrorBody(500, "responder threw"), close);
        return;
      }
      Reply(conn, req, reply, close);
    } else if (req.path == "/v1/models" || req.path == "/health") {
      if (req.method != "GET") {
        SendSimple(conn, 405, ErrorBody(405, "use GET for " + req.path), close);
        return;
      }
      Json body;
      if (req.path == "/health") {
        body = {{"status", "ok"}};
      } else {
        body = {{"object", "list"}, {"data", Json::array()}};
        for (const std::string& id : server_->options_.model_ids) {
          body["data"].push_back({{"id", id}, {"object", "model"}, {"owned_by", "breakfix"}});
        }
      }
      SendSimple(conn, 200, Dump(body), close);
    } else {
      SendSimple(conn, 404, ErrorBody(404, "no route for " + req.method + " " + req.path), close);
    }
  }

  void Reply(Conn* conn, const FakeRequest& req, const FakeReply& reply, bool close) {
    std::string body;
    if (reply.body) {
      body = *reply.body;
    } else if (reply.fault == FakeFault::kMalformedJson) {
      body = "{\"id\": \"chatcmpl-malformed\", \"choices\": [{\"message\": {\"content\": ";
    } else if (reply.status >= 200 && reply.status < 300) {
      body = ChatCompletionBody(req, reply);
    } else {
      body = ErrorBody(reply.status, reply.error_message);
    }
    std::string head = ResponseHead(reply.status, body.size(), reply.headers, close);
    int64_t delay_us = std::max<int64_t>(0, reply.delay_ms) * 1000;
    switch (reply.fault) {
      case FakeFault::kNone:
      case FakeFault::kMalformedJson:
        SendLater(conn, delay_us, TimerAction::kSend, head + body, close);
        return;
      case FakeFault::kTruncatedBody:
        SendLater(conn, delay_us, TimerAction::kSendThenClose,
                  head + body.substr(0, body.size() / 2), true);
        return;
      case FakeFault::kCloseWithoutResponse:
        if (delay_us == 0) {
          CloseConn(conn);
        } else {
          AddTimer(delay_us, conn->id, TimerAction::kClose, {});
        }
        return;
      case FakeFault::kHang:
        return;  // busy forever: nothing more is read from or written to this connection
      case FakeFault::kSlowBody: {
        size_t half = body.size() / 2;
        Send(conn, head + body.substr(0, half), false, false);
        AddTimer(delay_us, conn->id, close ? TimerAction::kSendThenClose : TimerAction::kSend,
                 body.substr(half));
        return;
      }
    }
  }

  void SendLater(Conn* conn, int64_t delay_us, TimerAction action, std::string bytes, bool close) {
    if (delay_us == 0) {
      Send(conn, bytes, true, close || action == TimerAction::kSendThenClose);
    } else {
      AddTimer(delay_us, conn->id, close ? TimerAction::kSendThenClose : action, std::move(bytes));
    }
  }

  void AddTimer(int64_t delay_us, uint64_t conn_id, TimerAction action, std::string data) {
    timers_.push(Timer{MonoMicros() + delay_us, timer_order_++, conn_id, action, std::move(data)});
  }

  void FireTimers() {
    int64_t now = MonoMicros();
    while (!timers_.empty() && timers_.top().due_us <= now && !stopping_) {
      Timer t = timers_.top();
      timers_.pop();
      auto it = conns_.find(t.conn_id);
      if (it == conns_.end()) continue;  // the client went away meanwhile
      Conn* conn = it->second.get();
      switch (t.action) {
        case TimerAction::kSend:
          Send(conn, t.data, true, false);
          break;
        case TimerAction::kSendThenClose:
          Send(conn, t.data, true, true);
          break;
        case TimerAction::kClose:
          CloseConn(conn);
          break;
      }
      if (!conn->closed && !conn->busy) ProcessBuffered(conn);
    }
  }

  FakeOpenAIServer* server_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  bool stopping_ = false;
  uint64_t next_conn_id_ = kFirstConnId;
  uint64_t timer_order_ = 0;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::vector<std::unique_ptr<Conn>> dead_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
};

FakeOpenAIServer::FakeOpenAIServer(Responder responder, FakeServerOptions options)
    : responder_(std::move(responder)), options_(std::move(options)) {}

FakeOpenAIServer::~FakeOpenAIServer() { Stop(); }

Status FakeOpenAIServer::Start() {
  if (loop_) return Status::FailedPrecondition("fake OpenAI server: already started");
  if (!responder_) return Status::InvalidArgument("fake OpenAI server: no responder given");
  auto loop = std::make_unique<Loop>(this);
  int bound = 0;
  BF_RETURN_IF_ERROR(loop->Open(options_.port, &bound));
  port_ = bound;
  loop_ = std::move(loop);
  thread_ = std::thread([this] { loop_->Run(); });
  return Status::OK();
}

void FakeOpenAIServer::Stop() {
  if (!loop_) return;
  loop_->Wake();
  if (thread_.joinable()) thread_.join();
  loop_.reset();  // closes every socket
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_ = 0;
}

std::string FakeOpenAIServer::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/v1";
}

int64_t FakeOpenAIServer::total_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_requests_;
}

int64_t FakeOpenAIServer::requests_for_path(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = per_path_.find(path);
  return it == per_path_.end() ? 0 : it->second;
}

int64_t FakeOpenAIServer::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

int64_t FakeOpenAIServer::max_in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return max_in_flight_;
}

int64_t FakeOpenAIServer::connections_accepted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return connections_accepted_;
}

std::vector<std::map<std::string, std::string>> FakeOpenAIServer::recent_headers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {recent_headers_.begin(), recent_headers_.end()};
}

void FakeOpenAIServer::ResetCounters() {
  std::lock_guard<std::mutex> lock(mu_);
  total_requests_ = 0;
  per_path_.clear();
  max_in_flight_ = in_flight_;
  connections_accepted_ = 0;
  recent_headers_.clear();
}

}  // namespace breakfix
