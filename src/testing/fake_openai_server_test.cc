// FakeOpenAIServer spoken to over raw sockets, so every byte on the wire is checked.
#include "testing/fake_openai_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

namespace breakfix {
namespace {

FakeReply TextReply(std::string content, int64_t delay_ms = 0) {
  FakeReply r;
  r.content = std::move(content);
  r.delay_ms = delay_ms;
  return r;
}

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

// A blocking loopback client with a bounded wait on every read, so a server bug fails a test
// instead of hanging it.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }

  void Send(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

  // Reads what arrives within `wait`; stops early at EOF. Returns false on EOF.
  bool ReadFor(std::chrono::milliseconds wait) {
    auto deadline = Clock::now() + wait;
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return true;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return true;
      char buf[65536];
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        eof_ = true;
        return false;
      }
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }

  struct Response {
    int status = 0;
    std::map<std::string, std::string> headers;  // lowercased names
    std::string body;
  };

  // Reads one complete response (Content-Length framed) within 10 s.
  std::optional<Response> ReadResponse() {
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
      if (auto r = TryParse()) return r;
      if (eof_) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[65536];
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        eof_ = true;
        continue;
      }
      buffer_.append(buf, static_cast<size_t>(n));
    }
    return std::nullopt;
  }

  std::optional<Response> Request(const std::string& method, const std::string& path,
                                  const std::string& body = "",
                                  const std::string& extra_headers = "") {
    Send(method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body);
    return ReadResponse();
  }

  const std::string& buffer() const { return buffer_; }
  bool eof() const { return eof_; }

 private:
  std::optional<Response> TryParse() {
    size_t head_end = buffer_.find("\r\n\r\n");
    if (head_end == std::string::npos) return std::nullopt;
    Response r;
    r.status = std::atoi(buffer_.c_str() + 9);
    size_t pos = buffer_.find("\r\n") + 2;
    while (pos < head_end) {
      size_t end = buffer_.find("\r\n", pos);
      std::string line = buffer_.substr(pos, end - pos);
      size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(c));
      r.headers[name] = line.substr(colon + 2);
      pos = end + 2;
    }
    size_t length = std::stoul(r.headers["content-length"]);
    if (buffer_.size() < head_end + 4 + length) return std::nullopt;
    r.body = buffer_.substr(head_end + 4, length);
    buffer_.erase(0, head_end + 4 + length);
    return r;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string buffer_;
};

std::string ChatBody(const std::string& user, const std::string& model = "m") {
  Json j = {{"model", model},
            {"messages",
             {{{"role", "system"}, {"content", "sys"}}, {{"role", "user"}, {"content", user}}}},
            {"temperature", 0.5},
            {"max_tokens", 64},
            {"seed", 9}};
  return j.dump();
}

class FakeServerTest : public ::testing::Test {
 protected:
  void StartWith(Responder responder, FakeServerOptions options = {}) {
    server_ = std::make_unique<FakeOpenAIServer>(std::move(responder), options);
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->port(), 0);
  }
  std::unique_ptr<FakeOpenAIServer> server_;
};

TEST_F(FakeServerTest, ChatCompletionHasTheOpenAIShape) {
  FakeRequest seen;
  StartWith([&](const FakeRequest& req) {
    seen = req;
    FakeReply r;
    r.content = "hello there";
    r.finish_reason = "length";
    r.system_fingerprint = "fp_test";
    r.headers = {{"X-Extra", "1"}};
    return r;
  });
  RawClient c(server_->port());
  auto r = c.Request("POST", "/v1/chat/completions?trace=1", ChatBody("hi"),
                     "Authorization: Bearer k\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-type"], "application/json");
  EXPECT_EQ(r->headers["x-extra"], "1");
  Json j = Json::parse(r->body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_TRUE(j["id"].is_string());
  EXPECT_TRUE(j["created"].is_number_integer());
  EXPECT_EQ(j["model"], "m");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "hello there");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["system_fingerprint"], "fp_test");
  // Default usage: ceil(chars/4) of the prompt ("sys" + "hi" = 5 chars) and of the reply.
  EXPECT_EQ(j["usage"]["prompt_tokens"], 2);
  EXPECT_EQ(j["usage"]["completion_tokens"], 3);
  EXPECT_EQ(j["usage"]["total_tokens"], 5);

  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.path, "/v1/chat/completions");
  EXPECT_EQ(seen.query, "trace=1");
  EXPECT_EQ(seen.model, "m");
  ASSERT_EQ(seen.messages.size(), 2u);
  EXPECT_EQ(seen.messages[0], (Message{Role::kSystem, "sys"}));
  EXPECT_EQ(seen.messages[1], (Message{Role::kUser, "hi"}));
  EXPECT_EQ(seen.seed, 9u);
  EXPECT_EQ(seen.temperature, 0.5);
  EXPECT_EQ(seen.max_tokens, 64);
  EXPECT_EQ(seen.sequence, 1u);
  EXPECT_EQ(seen.headers.at("authorization"), "Bearer k");
}

TEST_F(FakeServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  StartWith([](const FakeRequest& req) { return TextReply(req.messages[1].content); });
  RawClient c(server_->port());
  for (int i = 0; i < 20; ++i) {
    auto r = c.Request("POST", "/v1/chat/completions", ChatBody("n" + std::to_string(i)));
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(Json::parse(r->body)["choices"][0]["message"]["content"], "n" + std::to_string(i));
  }
  EXPECT_EQ(server_->connections_accepted(), 1);
  EXPECT_EQ(server_->total_requests(), 20);
  EXPECT_EQ(server_->requests_for_path("/v1/chat/completions"), 20);
}

TEST_F(FakeServerTest, PipelinedRequestsAreAnsweredInOrder) {
  StartWith([](const FakeRequest& req) {
    // The first is slower, yet must still be answered first.
    return TextReply(req.messages[1].content, req.messages[1].content == "a" ? 50 : 0);
  });
  RawClient c(server_->port());
  std::string a = ChatBody("a"), b = ChatBody("b");
  c.Send("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: " + std::to_string(a.size()) +
         "\r\n\r\n" + a + "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: " +
         std::to_string(b.size()) + "\r\n\r\n" + b);
  auto r1 = c.ReadResponse();
  auto r2 = c.ReadResponse();
  ASSERT_TRUE(r1 && r2);
  EXPECT_EQ(Json::parse(r1->body)["choices"][0]["message"]["content"], "a");
  EXPECT_EQ(Json::parse(r2->body)["choices"][0]["message"]["content"], "b");
}

TEST_F(FakeServerTest, ConnectionCloseIsHonoured) {
  StartWith([](const FakeRequest&) { return TextReply("x"); });
  RawClient c(server_->port());
  auto r = c.Request("GET", "/health", "", "Connection: close\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->headers["connection"], "close");
  EXPECT_FALSE(c.ReadFor(std::chrono::seconds(5)));  // EOF
}

TEST_F(FakeServerTest, HealthModelsAndUnknownPaths) {
  FakeServerOptions options;
  options.model_ids = {"phi-3-mini", "judge"};
  StartWith([](const FakeRequest&) { return FakeReply{}; }, options);
  RawClient c(server_->port());
  auto health = c.Request("GET", "/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(Json::parse(health->body)["status"], "ok");
  auto models = c.Request("GET", "/v1/models");
  ASSERT_TRUE(models);
  Json m = Json::parse(models->body);
  ASSERT_EQ(m["data"].size(), 2u);
  EXPECT_EQ(m["data"][1]["id"], "judge");
  auto missing = c.Request("GET", "/v2/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_TRUE(Json::parse(missing->body)["error"]["message"].is_string());
  auto wrong_method = c.Request("GET", "/v1/chat/completions");
  ASSERT_TRUE(wrong_method);
  EXPECT_EQ(wrong_method->status, 405);
  EXPECT_EQ(server_->requests_for_path("/health"), 1);
  EXPECT_EQ(server_->requests_for_path("/v1/models"), 1);
}

TEST_F(FakeServerTest, BadChatBodiesGet400WithoutReachingTheResponder) {
  std::atomic<int> calls{0};
  StartWith([&](const FakeRequest&) {
    ++calls;
    return FakeReply{};
  });
  RawClient c(server_->port());
  for (const char* body : {"{not json", "[]", "{\"model\":\"m\"}",
                           "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
                           "{\"messages\":[{\"role\":\"user\",\"content\":5}]}"}) {
    auto r = c.Request("POST", "/v1/chat/completions", body);
    ASSERT_TRUE(r) << body;
    EXPECT_EQ(r->status, 400) << body;
    Json j = Json::parse(r->body);
    EXPECT_EQ(j["error"]["type"], "invalid_request_error") << body;
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty()) << body;
  }
  EXPECT_EQ(calls.load(), 0);
}

TEST_F(FakeServerTest, OversizedBodyGets413) {
  StartWith([](const FakeRequest&) { return FakeReply{}; });
  RawClient c(server_->port());
  c.Send("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 9000000\r\n\r\n");
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
}

TEST_F(FakeServerTest, ErrorStatusCarriesAnOpenAIErrorObjectAndHeaders) {
  StartWith([](const FakeRequest&) {
    FakeReply r;
    r.status = 429;
    r.error_message = "slow down";
    r.headers = {{"Retry-After", "7"}};
    return r;
  });
  RawClient c(server_->port());
  auto r = c.Request("POST", "/v1/chat/completions", ChatBody("x"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429);
  EXPECT_EQ(r->headers["retry-after"], "7");
  Json j = Json::parse(r->body);
  EXPECT_EQ(j["error"]["message"], "slow down");
  EXPECT_EQ(j["error"]["type"], "rate_limit_error");
}

TEST_F(FakeServerTest, RawBodyOverrideIsSentVerbatim) {
  StartWith([](const FakeRequest&) {
    FakeReply r;
    r.body = "{\"custom\":true}";
    return r;
  });
  RawClient c(server_->port());
  auto r = c.Request("POST", "/v1/chat/completions", ChatBody("x"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "{\"custom\":true}");
}

TEST_F(FakeServerTest, MalformedJsonFault) {
  StartWith([](const FakeRequest&) {
    FakeReply r;
    r.fault = FakeFault::kMalformedJson;
    return r;
  });
  RawClient c(server_->port());
  auto r = c.Request("POST", "/v1/chat/completions", ChatBody("x"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(Json::parse(r->body, nullptr, false).is_discarded()) << r->body;
  // The connection stays usable: the framing was correct.
  EXPECT_TRUE(c.Request("GET", "/health"));
}

TEST_F(FakeServerTest, TruncatedBodyFaultAnnouncesMoreThanItSends) {
  StartWith([](const FakeRequest&) {
    FakeReply r;
    r.content = std::string(500, 'y');
    r.fault = FakeFault::kTruncatedBody;
    return r;
  });
  RawClient c(server_->port());
  c.Send("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: " +
         std::to_string(ChatBody("x").size()) + "\r\n\r\n" + ChatBody("x"));
  EXPECT_FALSE(c.ReadFor(std::chrono::seconds(5)));  // closed
  const std::string& got = c.buffer();
  size_t head_end = got.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  size_t announced = std::stoul(got.substr(got.find("Content-Length: ") + 16));
  size_t sent = got.size() - head_end - 4;
  EXPECT_GT(sent, 0u);
  EXPECT_LT(sent, announced);
}

TEST_F(FakeServerTest, CloseWithoutResponseFault) {
  StartWith([](const FakeRequest&) {
    FakeReply r;
    r.fault = FakeFault::kCloseWithoutResponse;
    return r;
  });
  RawClient c(server_->port());
  c.Send("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: " +
         std::to_string(ChatBody("x").size()) + "\r\n\r\n" + ChatBody("x"));
  EXPECT_FALSE(c.ReadFor(std::chrono::seconds(5)));
  EXPECT_TRUE(c.buffer().empty());
  EXPECT_EQ(server_->total_requests(), 1);
}

TEST_F(FakeServerTest, HangNeitherAnswersNorBlocksOthersAndStopIsPrompt) {
  StartWith([](const FakeRequest& req) {
    FakeReply r;
    r.content = "fine";
    if (req.messages[1].content == "hang") r.fault = FakeFault::kHang;
    return r;
  });
  RawClient hung(server_->port());
  hung.Send("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: " +
            std::to_string(ChatBody("hang").size()) + "\r\n\r\n" + ChatBody("hang"));
  RawClient other(server_->port());
  auto r = other.Request("POST", "/v1/chat/completions", ChatBody("x"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(hung.ReadFor(std::chrono::milliseconds(200)));  // still open...
  EXPECT_TRUE(hung.buffer().empty());                         // ...and silent
  EXPECT_EQ(server_->in_flight(), 1);
  server_->Stop();
  EXPECT_FALSE(hung.ReadFor(std::chrono::seconds(5)));  // Stop closed it
}

TEST_F(FakeServerTest, DelayedReplyDoesNotBlockOtherConnections) {
  StartWith([](const FakeRequest& req) {
    FakeReply r;
    r.content = req.messages[1].content;
    if (r.content == "slow") r.delay_ms = 60000;
    return r;
  });
  RawClient slow(server_->port());
  slow.Send("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: " +
            std::to_string(ChatBody("slow").size()) + "\r\n\r\n" + ChatBody("slow"));
  // Give the server the chance to take the slow request first.
  while (server_->total_requests() < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  RawClient fast(server_->port());
  auto r = fast.Request("POST", "/v1/chat/completions", ChatBody("fast"));
  ASSERT_TRUE(r);  // well before the slow one's minute
  EXPECT_EQ(Json::parse(r->body)["choices"][0]["message"]["content"], "fast");
  EXPECT_EQ(server_->max_in_flight(), 2);
}

TEST_F(FakeServerTest, SlowBodyStallsInTheMiddle) {
  StartWith([](const FakeRequest&) {
    FakeReply r;
    r.content = std::string(1000, 's');
    r.fault = FakeFault::kSlowBody;
    r.delay_ms = 300;
    return r;
  });
  RawClient c(server_->port());
  auto start = Clock::now();
  c.Send("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: " +
         std::to_string(ChatBody("x").size()) + "\r\n\r\n" + ChatBody("x"));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(300));
  EXPECT_EQ(Json::parse(r->body)["choices"][0]["message"]["content"], std::string(1000, 's'));
}

TEST_F(FakeServerTest, DelayIsAtLeastTheRequestedTime) {
  StartWith([](const FakeRequest&) { return TextReply("late", 150); });
  RawClient c(server_->port());
  auto start = Clock::now();
  auto r = c.Request("POST", "/v1/chat/completions", ChatBody("x"));
  ASSERT_TRUE(r);
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(150));
}

TEST_F(FakeServerTest, ResponderExceptionBecomes500) {
  StartWith([](const FakeRequest&) -> FakeReply { throw std::runtime_error("boom"); });
  RawClient c(server_->port());
  auto r = c.Request("POST", "/v1/chat/completions", ChatBody("x"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_NE(r->body.find("boom"), std::string::npos);
}

TEST_F(FakeServerTest, InvalidUtf8InAReplyIsReplacedNotFatal) {
  StartWith([](const FakeRequest&) { return TextReply("bad \xff byte"); });
  RawClient c(server_->port());
  auto r = c.Request("POST", "/v1/chat/completions", ChatBody("x"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(Json::parse(r->body)["choices"][0]["message"]["content"], "bad \xef\xbf\xbd byte");
  EXPECT_TRUE(c.Request("GET", "/health"));
}

TEST_F(FakeServerTest, MalformedRequestLineGets400AndClose) {
  StartWith([](const FakeRequest&) { return FakeReply{}; });
  RawClient c(server_->port());
  c.Send("GARBAGE\r\n\r\n");
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_FALSE(c.ReadFor(std::chrono::seconds(5)));
}

TEST_F(FakeServerTest, ExpectContinueIsAnswered) {
  StartWith([](const FakeRequest&) { return TextReply("ok"); });
  RawClient c(server_->port());
  std::string body = ChatBody("x");
  c.Send("POST /v1/chat/completions HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n");
  c.ReadFor(std::chrono::milliseconds(200));
  EXPECT_EQ(c.buffer().rfind("HTTP/1.1 100 Continue\r\n\r\n", 0), 0u) << c.buffer();
}

TEST_F(FakeServerTest, CountersAndHeaderLog) {
  FakeServerOptions options;
  options.header_log_size = 3;
  StartWith([](const FakeRequest&) { return TextReply("x"); }, options);
  for (int i = 0; i < 5; ++i) {
    RawClient c(server_->port());
    ASSERT_TRUE(c.Request("POST", "/v1/chat/completions", ChatBody("x"),
                          "X-Call: " + std::to_string(i) + "\r\n"));
  }
  EXPECT_EQ(server_->connections_accepted(), 5);
  auto headers = server_->recent_headers();
  ASSERT_EQ(headers.size(), 3u);
  EXPECT_EQ(headers[0].at("x-call"), "2");
  EXPECT_EQ(headers[2].at("x-call"), "4");
  server_->ResetCounters();
  EXPECT_EQ(server_->total_requests(), 0);
  EXPECT_EQ(server_->connections_accepted(), 0);
  EXPECT_TRUE(server_->recent_headers().empty());
}

TEST_F(FakeServerTest, StartFailsOnABusyPort) {
  StartWith([](const FakeRequest&) { return FakeReply{}; });
  FakeServerOptions options;
  options.port = server_->port();
  FakeOpenAIServer second([](const FakeRequest&) { return FakeReply{}; }, options);
  Status s = second.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(std::to_string(server_->port())), std::string::npos) << s.message();
}

TEST(FakeFaultTest, NamesRoundTrip) {
  for (FakeFault f : {FakeFault::kNone, FakeFault::kMalformedJson, FakeFault::kTruncatedBody,
                      FakeFault::kCloseWithoutResponse, FakeFault::kHang, FakeFault::kSlowBody}) {
    auto parsed = ParseFakeFault(FakeFaultName(f));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, f);
  }
  auto bad = ParseFakeFault("explode");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("truncated_body"), std::string::npos);
}

// The fake-openai binary: $FAKE_OPENAI_BIN, else beside this test binary; empty when neither.
std::string FakeOpenAIBinary() {
  if (const char* bin = std::getenv("FAKE_OPENAI_BIN");
      bin != nullptr && ::access(bin, X_OK) == 0) {
    return bin;
  }
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return "";
  std::string path(self, static_cast<size_t>(n));
  path = path.substr(0, path.rfind('/') + 1) + "fake-openai";
  return ::access(path.c_str(), X_OK) == 0 ? path : "";
}

// The fake-openai binary: starts, publishes its port, serves, exits 0 on SIGTERM.
TEST(FakeOpenAIBinaryTest, ServesUntilSigterm) {
  const std::string bin = FakeOpenAIBinary();
  if (bin.empty()) GTEST_SKIP() << "fake-openai is not built";
  std::string dir = ::testing::TempDir();
  std::string script = dir + "/fake_openai_test_script.yaml";
  std::string port_file = dir + "/fake_openai_test_port";
  ::unlink(port_file.c_str());
  {
    std::ofstream out(script);
    out << "rules:\n  - last_user_contains: ping\n    reply: pong {{turn}}\n";
  }
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl(bin.c_str(), bin.c_str(), "--script", script.c_str(), "--port-file", port_file.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int port = 0;
  for (int i = 0; i < 1000 && port == 0; ++i) {
    std::ifstream in(port_file);
    if (!(in >> port)) {
      port = 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ASSERT_GT(port, 0);
  {
    RawClient c(port);
    ASSERT_TRUE(c.connected());
    auto r = c.Request("POST", "/v1/chat/completions", ChatBody("ping"));
    ASSERT_TRUE(r);
    EXPECT_EQ(Json::parse(r->body)["choices"][0]["message"]["content"], "pong 1");
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(FakeOpenAIBinaryTest, BadScriptExitsWithUsageError) {
  const std::string bin = FakeOpenAIBinary();
  if (bin.empty()) GTEST_SKIP() << "fake-openai is not built";
  std::string script = ::testing::TempDir() + "/fake_openai_bad_script.yaml";
  {
    std::ofstream out(script);
    out << "rules:\n  - reply: x\n    colour: blue\n";
  }
  std::string cmd = bin + " --script " + script + " 2>/dev/null";
  int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

}  // namespace
}  // namespace breakfix
