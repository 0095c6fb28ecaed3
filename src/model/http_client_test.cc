// HttpClient against FakeOpenAIServer on loopback: success, retries, timeouts, limits, keys,
// cancellation and load. Timing assertions are lower bounds only.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "breakfix/openai_client.h"
#include "testing/fake_openai_server.h"

namespace breakfix {
namespace {

FakeReply TextReply(std::string content, int64_t delay_ms = 0) {
  FakeReply r;
  r.content = std::move(content);
  r.delay_ms = delay_ms;
  return r;
}

ChatRequest Conversation(std::vector<Message> messages) {
  ChatRequest r;
  r.messages = std::move(messages);
  return r;
}

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The real environment with a fixed set of variables.
class VarsEnv : public Env {
 public:
  explicit VarsEnv(std::map<std::string, std::string> vars) : vars_(std::move(vars)) {}
  int64_t NowMicros() override { return Env::Default()->NowMicros(); }
  int64_t WallMicros() override { return Env::Default()->WallMicros(); }
  void SleepMicros(int64_t micros) override { Env::Default()->SleepMicros(micros); }
  std::optional<std::string> GetVar(const std::string& name) override {
    auto it = vars_.find(name);
    if (it == vars_.end()) return std::nullopt;
    return it->second;
  }
  Result<std::string> ReadFile(const std::string& path) override {
    return Env::Default()->ReadFile(path);
  }
  Status WriteFileAtomic(const std::string& path, const std::string& contents) override {
    return Env::Default()->WriteFileAtomic(path, contents);
  }

 private:
  std::map<std::string, std::string> vars_;
};

constexpr char kSecretKey[] = "sk-test-SECRET-0123456789";

// Collects async results; every call must report exactly once.
class Collector {
 public:
  ChatCallback Callback(int id) {
    return [this, id](Result<ChatResponse> r) {
      std::lock_guard<std::mutex> lock(mu_);
      ++calls_[id];
      results_.emplace(id, std::move(r));
      cv_.notify_all();
    };
  }
  // Waits (bounded, so a bug fails instead of hanging) until `n` callbacks arrived.
  bool WaitFor(size_t n, std::chrono::seconds limit = std::chrono::seconds(60)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return results_.size() >= n; });
  }
  std::map<int, int> calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  std::multimap<int, Result<ChatResponse>> results() {
    std::lock_guard<std::mutex> lock(mu_);
    return results_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, int> calls_;
  std::multimap<int, Result<ChatResponse>> results_;
};

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<FakeOpenAIServer>([this](const FakeRequest& req) {
      std::lock_guard<std::mutex> lock(mu_);
      arrivals_.push_back(Clock::now());
      requests_.push_back(req);
      return responder_ ? responder_(req) : TextReply("ok");
    });
    ASSERT_TRUE(server_->Start().ok());
    env_ = std::make_unique<VarsEnv>(std::map<std::string, std::string>{{"TEST_KEY", kSecretKey}});
    auto client = HttpClient::Create({}, env_.get());
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(*client);
  }

  void TearDown() override {
    client_.reset();
    server_.reset();
  }

  void SetResponder(Responder r) {
    std::lock_guard<std::mutex> lock(mu_);
    responder_ = std::move(r);
  }

  // Options that keep retries fast.
  EndpointOptions Options(const std::string& name = "fake") {
    EndpointOptions o;
    o.name = name;
    o.base_url = server_->base_url();
    o.model = "fake-model";
    o.initial_backoff_ms = 1;
    o.max_backoff_ms = 5;
    o.connect_timeout_ms = 2000;
    o.total_timeout_ms = 20000;
    o.idle_timeout_ms = 10000;
    return o;
  }

  std::unique_ptr<ChatModel> Model(const EndpointOptions& o) {
    auto m = client_->NewChatModel(o);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? std::move(*m) : nullptr;
  }

  static ChatRequest Ask(const std::string& text) {
    ChatRequest r;
    r.messages = {{Role::kSystem, "You are a helpful assistant."}, {Role::kUser, text}};
    return r;
  }

  std::vector<Clock::time_point> Arrivals() {
    std::lock_guard<std::mutex> lock(mu_);
    return arrivals_;
  }
  std::vector<FakeRequest> Requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

  std::mutex mu_;
  Responder responder_;
  std::vector<Clock::time_point> arrivals_;
  std::vector<FakeRequest> requests_;
  std::unique_ptr<FakeOpenAIServer> server_;
  std::unique_ptr<VarsEnv> env_;
  std::unique_ptr<HttpClient> client_;
};

// A responder that plays `first` for the first `n` requests, then answers "recovered".
Responder FailFirst(int n, FakeReply first) {
  auto count = std::make_shared<std::atomic<int>>(0);
  return [=](const FakeRequest&) {
    if (count->fetch_add(1) < n) return first;
    return TextReply("recovered");
  };
}

TEST_F(HttpClientTest, SuccessReportsContentUsageLatencyAndFingerprint) {
  SetResponder([](const FakeRequest& req) {
    FakeReply r;
    r.content = "Hello from the fake";
    r.prompt_tokens = 11;
    r.completion_tokens = 7;
    r.finish_reason = "length";
    r.system_fingerprint = "fp_abc";
    r.delay_ms = 30;
    return r;
  });
  auto model = Model(Options("target"));
  ChatRequest req = Ask("hi");
  req.sampling.temperature = 0.25;
  req.sampling.max_tokens = 99;
  req.sampling.seed = 1234;
  req.sampling.stop = {"STOP"};
  req.json_object = true;
  auto r = model->ChatSync(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->message.role, Role::kAssistant);
  EXPECT_EQ(r->message.content, "Hello from the fake");
  EXPECT_EQ(r->finish_reason, "length");
  EXPECT_EQ(r->usage.prompt_tokens, 11);
  EXPECT_EQ(r->usage.completion_tokens, 7);
  EXPECT_EQ(r->model, "fake-model");
  EXPECT_EQ(r->system_fingerprint, "fp_abc");
  EXPECT_EQ(r->attempts, 1);
  EXPECT_GE(r->latency_ms, 30.0);

  auto seen = Requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].path, "/v1/chat/completions");
  EXPECT_EQ(seen[0].model, "fake-model");
  EXPECT_EQ(seen[0].messages, req.messages);
  EXPECT_EQ(seen[0].seed, 1234u);
  EXPECT_EQ(seen[0].temperature, 0.25);
  EXPECT_EQ(seen[0].max_tokens, 99);
  auto body = nlohmann::json::parse(seen[0].body);
  EXPECT_EQ(body["stop"], nlohmann::json({"STOP"}));
  EXPECT_EQ(body["response_format"]["type"], "json_object");
  EXPECT_EQ(seen[0].headers.count("authorization"), 0u);  // no key configured

  EndpointStats s = client_->Stats("target");
  EXPECT_EQ(s.requests, 1);
  EXPECT_EQ(s.succeeded, 1);
  EXPECT_EQ(s.failed, 0);
  EXPECT_EQ(s.usage.prompt_tokens, 11);
  EXPECT_EQ(s.usage.completion_tokens, 7);
  EXPECT_EQ(s.in_flight, 0);
  EXPECT_EQ(s.queued, 0);
}

TEST_F(HttpClientTest, MissingUsageIsEstimatedFromCharacters) {
  SetResponder([](const FakeRequest&) {
    FakeReply r;
    r.content = std::string(40, 'a');  // 10 tokens
    r.omit_usage = true;
    return r;
  });
  auto model = Model(Options());
  ChatRequest req;
  req.messages = {{Role::kUser, std::string(81, 'q')}};  // 21 tokens
  auto r = model->ChatSync(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->usage.prompt_tokens, 21);
  EXPECT_EQ(r->usage.completion_tokens, 10);
}

TEST_F(HttpClientTest, NullContentWithRefusalUsesTheRefusal) {
  SetResponder([](const FakeRequest&) {
    FakeReply r;
    r.body = R"({"choices":[{"message":{"role":"assistant","content":null,)"
             R"("refusal":"I won't help with that."},"finish_reason":"stop"}]})";
    return r;
  });
  auto r = Model(Options())->ChatSync(Ask("x"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->message.content, "I won't help with that.");
}

TEST_F(HttpClientTest, RateLimitedRetryHonoursRetryAfterSeconds) {
  FakeReply limited;
  limited.status = 429;
  limited.error_message = "Rate limit reached";
  limited.headers = {{"Retry-After", "1"}};
  SetResponder(FailFirst(1, limited));
  auto r = Model(Options("rl"))->ChatSync(Ask("x"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->message.content, "recovered");
  EXPECT_EQ(r->attempts, 2);
  auto arrivals = Arrivals();
  ASSERT_EQ(arrivals.size(), 2u);
  EXPECT_GE(arrivals[1] - arrivals[0], std::chrono::milliseconds(1000));
  EndpointStats s = client_->Stats("rl");
  EXPECT_EQ(s.rate_limited, 1);
  EXPECT_EQ(s.retries, 1);
  EXPECT_EQ(s.requests, 2);
}

TEST_F(HttpClientTest, RetryAfterMsHeaderWinsAndIsHonoured) {
  FakeReply limited;
  limited.status = 429;
  limited.headers = {{"retry-after-ms", "300"}, {"Retry-After", "0"}};
  SetResponder(FailFirst(1, limited));
  auto r = Model(Options())->ChatSync(Ask("x"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto arrivals = Arrivals();
  ASSERT_EQ(arrivals.size(), 2u);
  EXPECT_GE(arrivals[1] - arrivals[0], std::chrono::milliseconds(300));
}

TEST_F(HttpClientTest, ServiceUnavailableRetryAfterHttpDateIsHonoured) {
  auto count = std::make_shared<std::atomic<int>>(0);
  SetResponder([count](const FakeRequest&) {
    if (count->fetch_add(1) > 0) return TextReply("ok");
    FakeReply r;
    r.status = 503;
    // An HTTP-date about 2 s ahead; whole seconds, so the wait is at least 1 s.
    std::time_t when = std::time(nullptr) + 2;
    char buf[64];
    std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", std::gmtime(&when));
    r.headers = {{"Retry-After", buf}};
    return r;
  });
  auto r = Model(Options())->ChatSync(Ask("x"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto arrivals = Arrivals();
  ASSERT_EQ(arrivals.size(), 2u);
  EXPECT_GE(arrivals[1] - arrivals[0], std::chrono::milliseconds(1000));
}

TEST_F(HttpClientTest, RetryAfterAboveTheCapFailsAtOnce) {
  FakeReply limited;
  limited.status = 429;
  limited.error_message = "quota exhausted";
  limited.headers = {{"Retry-After", "3600"}};
  SetResponder(FailFirst(100, limited));
  EndpointOptions o = Options();
  o.max_retry_after_ms = 1000;
  auto r = Model(o)->ChatSync(Ask("x"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(Contains(r.status().message(), "max_retry_after_ms=1000")) << r.status().message();
  EXPECT_TRUE(Contains(r.status().message(), "HTTP 429")) << r.status().message();
  EXPECT_TRUE(Contains(r.status().message(), "quota exhausted")) << r.status().message();
  EXPECT_EQ(server_->total_requests(), 1);
}

TEST_F(HttpClientTest, ServerErrorsAreRetried) {
  for (int status : {500, 502, 503, 504, 408}) {
    server_->ResetCounters();
    FakeReply failing;
    failing.status = status;
    SetResponder(FailFirst(2, failing));
    auto r = Model(Options())->ChatSync(Ask("x"));
    ASSERT_TRUE(r.ok()) << status << ": " << r.status().ToString();
    EXPECT_EQ(r->message.content, "recovered");
    EXPECT_EQ(r->attempts, 3) << status;
    EXPECT_EQ(server_->total_requests(), 3) << status;
  }
}

TEST_F(HttpClientTest, ClientErrorsFailFastWithTheServersMessage) {
  struct Case {
    int status;
    StatusCode code;
  } cases[] = {{400, StatusCode::kInvalidArgument},
               {401, StatusCode::kPermissionDenied},
               {403, StatusCode::kPermissionDenied},
               {404, StatusCode::kNotFound},
               {422, StatusCode::kInvalidArgument}};
  for (const Case& c : cases) {
    server_->ResetCounters();
    FakeReply failing;
    failing.status = c.status;
    failing.error_message = "server says no (" + std::to_string(c.status) + ")";
    SetResponder(FailFirst(100, failing));
    auto model = Model(Options("strict"));
    auto r = model->ChatSync(Ask("x"));
    ASSERT_FALSE(r.ok()) << c.status;
    EXPECT_EQ(r.status().code(), c.code) << r.status().ToString();
    const std::string m = r.status().message();
    EXPECT_TRUE(Contains(m, "HTTP " + std::to_string(c.status))) << m;
    EXPECT_TRUE(Contains(m, failing.error_message)) << m;
    EXPECT_TRUE(Contains(m, "\"strict\"")) << m;
    EXPECT_TRUE(Contains(m, server_->base_url() + "/chat/completions")) << m;
    EXPECT_EQ(server_->total_requests(), 1) << c.status;
  }
}

TEST_F(HttpClientTest, AuthenticationFailureFailsQueuedCallsWithoutSendingThem) {
  for (int status : {401, 403, 404}) {
    server_->ResetCounters();
    FakeReply failing;
    failing.status = status;
    failing.error_message = "bad key or model (" + std::to_string(status) + ")";
    failing.delay_ms = 20;  // the queue fills up before the first answer arrives
    SetResponder(FailFirst(1000, failing));
    EndpointOptions o = Options("locked" + std::to_string(status));
    o.max_concurrency = 2;
    auto model = Model(o);
    Collector done;
    for (int i = 0; i < 30; ++i) model->Chat(Ask("q" + std::to_string(i)), done.Callback(i));
    ASSERT_TRUE(done.WaitFor(30));
    for (auto& [id, r] : done.results()) {
      ASSERT_FALSE(r.ok());
      EXPECT_TRUE(Contains(r.status().message(), failing.error_message)) << r.status().ToString();
    }
    // Only the calls already on the wire were sent; the other 28 failed without a request.
    EXPECT_LE(server_->total_requests(), 2) << status;
    // Later calls fail at once too.
    auto later = model->ChatSync(Ask("later"));
    EXPECT_FALSE(later.ok());
    EXPECT_LE(server_->total_requests(), 2) << status;
  }
}

TEST_F(HttpClientTest, NonJsonErrorBodyIsQuoted) {
  SetResponder([](const FakeRequest&) {
    FakeReply r;
    r.status = 400;
    r.body = "<html>bad things</html>";
    return r;
  });
  auto r = Model(Options())->ChatSync(Ask("x"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.status().message(), "<html>bad things</html>")) << r.status().message();
}

TEST_F(HttpClientTest, RetriesExhaustedReportTheLastStatus) {
  FakeReply failing;
  failing.status = 503;
  failing.error_message = "engine overloaded";
  SetResponder(FailFirst(100, failing));
  EndpointOptions o = Options();
  o.max_retries = 2;
  auto r = Model(o)->ChatSync(Ask("x"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(r.status().message(), "HTTP 503")) << r.status().message();
  EXPECT_TRUE(Contains(r.status().message(), "engine overloaded")) << r.status().message();
  EXPECT_TRUE(Contains(r.status().message(), "3 attempts")) << r.status().message();
  EXPECT_EQ(server_->total_requests(), 3);
  EXPECT_EQ(client_->Stats("fake").failed, 1);
}

TEST_F(HttpClientTest, RateLimitExhaustedIsResourceExhausted) {
  FakeReply limited;
  limited.status = 429;
  limited.headers = {{"retry-after-ms", "1"}};
  SetResponder(FailFirst(100, limited));
  EndpointOptions o = Options();
  o.max_retries = 1;
  auto r = Model(o)->ChatSync(Ask("x"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(Contains(r.status().message(), "HTTP 429")) << r.status().message();
  EXPECT_EQ(server_->total_requests(), 2);
}

TEST_F(HttpClientTest, MalformedTruncatedAndClosedResponsesAreRetried) {
  for (FakeFault fault :
       {FakeFault::kMalformedJson, FakeFault::kTruncatedBody, FakeFault::kCloseWithoutResponse}) {
    server_->ResetCounters();
    FakeReply broken;
    broken.content = "this answer will not arrive intact";
    broken.fault = fault;
    SetResponder(FailFirst(1, broken));
    auto r = Model(Options())->ChatSync(Ask("x"));
    ASSERT_TRUE(r.ok()) << FakeFaultName(fault) << ": " << r.status().ToString();
    EXPECT_EQ(r->message.content, "recovered") << FakeFaultName(fault);
    EXPECT_EQ(server_->total_requests(), 2) << FakeFaultName(fault);
    // curl itself resends a request whose reused keep-alive connection closed before any
    // response byte, so that one retry may not be counted as ours.
    if (fault != FakeFault::kCloseWithoutResponse) {
      EXPECT_EQ(r->attempts, 2) << FakeFaultName(fault);
    }
  }
}

TEST_F(HttpClientTest, MalformedBodiesExhaustedIsUnavailable) {
  FakeReply broken;
  broken.fault = FakeFault::kMalformedJson;
  SetResponder(FailFirst(100, broken));
  EndpointOptions o = Options();
  o.max_retries = 1;
  auto r = Model(o)->ChatSync(Ask("x"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(r.status().message(), "not valid JSON")) << r.status().message();
}

TEST_F(HttpClientTest, IdleTimeoutAbortsAHungRequestThenRetrySucceeds) {
  FakeReply hang;
  hang.fault = FakeFault::kHang;
  SetResponder(FailFirst(1, hang));
  EndpointOptions o = Options();
  o.idle_timeout_ms = 200;
  auto start = Clock::now();
  auto r = Model(o)->ChatSync(Ask("x"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->attempts, 2);
  EXPECT_GE(MsSince(start), 200.0);
}

TEST_F(HttpClientTest, IdleTimeoutCountsFromTheLastByte) {
  // Half the body, a 600 ms stall, the rest: a 250 ms idle limit aborts it...
  FakeReply slow;
  slow.content = std::string(2000, 'z');
  slow.fault = FakeFault::kSlowBody;
  slow.delay_ms = 600;
  SetResponder(FailFirst(1, slow));
  EndpointOptions o = Options();
  o.idle_timeout_ms = 250;
  auto r = Model(o)->ChatSync(Ask("x"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->attempts, 2);
  EXPECT_EQ(r->message.content, "recovered");

  // ...while a 100 ms stall under a 2 s idle limit completes on the first attempt.
  server_->ResetCounters();
  slow.delay_ms = 100;
  SetResponder(FailFirst(1, slow));
  o.idle_timeout_ms = 2000;
  auto ok = Model(o)->ChatSync(Ask("x"));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->attempts, 1);
  EXPECT_EQ(ok->message.content, std::string(2000, 'z'));
}

TEST_F(HttpClientTest, TotalTimeoutThenRetrySucceeds) {
  FakeReply slow;
  slow.delay_ms = 5000;
  SetResponder(FailFirst(1, slow));
  EndpointOptions o = Options();
  o.total_timeout_ms = 300;
  auto start = Clock::now();
  auto r = Model(o)->ChatSync(Ask("x"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->attempts, 2);
  EXPECT_GE(MsSince(start), 300.0);
}

TEST_F(HttpClientTest, TimeoutsExhaustedAreDeadlineExceeded) {
  FakeReply hang;
  hang.fault = FakeFault::kHang;
  SetResponder(FailFirst(100, hang));
  EndpointOptions o = Options();
  o.idle_timeout_ms = 100;
  o.max_retries = 1;
  auto r = Model(o)->ChatSync(Ask("x"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(Contains(r.status().message(), "idle_timeout_ms=100")) << r.status().message();
  EXPECT_EQ(server_->total_requests(), 2);
}

TEST_F(HttpClientTest, ConnectionRefusedIsRetriedThenUnavailable) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);  // nothing listens on this port now
  EndpointOptions o = Options("nowhere");
  o.base_url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/v1";
  o.max_retries = 2;
  auto r = Model(o)->ChatSync(Ask("x"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(r.status().message(), "3 attempts")) << r.status().message();
  EXPECT_EQ(client_->Stats("nowhere").requests, 3);
}

TEST_F(HttpClientTest, ConcurrencyLimitIsNeverExceeded) {
  SetResponder([](const FakeRequest&) { return TextReply("ok", 20); });
  EndpointOptions o = Options("narrow");
  o.max_concurrency = 4;
  auto model = Model(o);
  Collector done;
  for (int i = 0; i < 40; ++i) model->Chat(Ask("q" + std::to_string(i)), done.Callback(i));
  ASSERT_TRUE(done.WaitFor(40));
  for (auto& [id, r] : done.results()) EXPECT_TRUE(r.ok()) << id << ": " << r.status().ToString();
  EXPECT_LE(server_->max_in_flight(), 4);
  EXPECT_GE(server_->max_in_flight(), 2);
  EXPECT_EQ(server_->total_requests(), 40);
}

TEST_F(HttpClientTest, QueuedCallsStartInSubmissionOrder) {
  SetResponder([](const FakeRequest&) { return TextReply("ok", 5); });
  EndpointOptions o = Options();
  o.max_concurrency = 1;
  auto model = Model(o);
  Collector done;
  for (int i = 0; i < 20; ++i) model->Chat(Ask("n" + std::to_string(i)), done.Callback(i));
  ASSERT_TRUE(done.WaitFor(20));
  auto seen = Requests();
  ASSERT_EQ(seen.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(seen[i].messages.back().content, "n" + std::to_string(i));
}

TEST_F(HttpClientTest, RequestsPerMinuteSpreadsRequests) {
  EndpointOptions o = Options("paced");
  o.requests_per_minute = 600;  // 10/s
  o.max_concurrency = 64;
  auto model = Model(o);
  Collector done;
  auto start = Clock::now();
  for (int i = 0; i < 20; ++i) model->Chat(Ask("x"), done.Callback(i));
  ASSERT_TRUE(done.WaitFor(20));
  EXPECT_GE(MsSince(start), 1800.0);
  auto arrivals = Arrivals();
  ASSERT_EQ(arrivals.size(), 20u);
  EXPECT_GE(arrivals.back() - arrivals.front(), std::chrono::milliseconds(1800));
}

TEST_F(HttpClientTest, TokensPerMinuteReservesPromptAndMaxTokens) {
  // Each call reserves 10 prompt + 490 max_tokens = 500 tokens; the budget is 1000/s with a
  // 1000-token bucket, and the server reports all 500 used: 4 calls need >= 1 s.
  SetResponder([](const FakeRequest&) {
    FakeReply r = TextReply("ok");
    r.prompt_tokens = 10;
    r.completion_tokens = 490;
    return r;
  });
  EndpointOptions o = Options("tpm");
  o.tokens_per_minute = 60000;
  auto model = Model(o);
  Collector done;
  auto start = Clock::now();
  for (int i = 0; i < 4; ++i) {
    ChatRequest req;
    req.messages = {{Role::kUser, std::string(40, 'w')}};
    req.sampling.max_tokens = 490;
    model->Chat(req, done.Callback(i));
  }
  ASSERT_TRUE(done.WaitFor(4));
  EXPECT_GE(MsSince(start), 950.0);
  EndpointStats s = client_->Stats("tpm");
  EXPECT_EQ(s.usage.prompt_tokens, 40);
  EXPECT_EQ(s.usage.completion_tokens, 4 * 490);
}

TEST_F(HttpClientTest, RateLimitHoldsBackTheWholeEndpoint) {
  // The first four requests (all in flight together) get 429 + retry-after-ms 300. No new
  // request may reach the server until 300 ms after those answers.
  SetResponder([](const FakeRequest& req) {
    FakeReply r;
    if (req.sequence <= 4) {
      r.status = 429;
      r.headers = {{"retry-after-ms", "300"}};
      r.delay_ms = 50;
    } else {
      r.content = "ok";
    }
    return r;
  });
  EndpointOptions o = Options("storm");
  o.max_concurrency = 4;
  auto model = Model(o);
  Collector done;
  for (int i = 0; i < 16; ++i) model->Chat(Ask("x"), done.Callback(i));
  ASSERT_TRUE(done.WaitFor(16));
  for (auto& [id, r] : done.results()) EXPECT_TRUE(r.ok()) << r.status().ToString();
  auto arrivals = Arrivals();
  ASSERT_EQ(arrivals.size(), 20u);  // 16 calls + 4 retries
  // The answers left the server >= 50 ms after the first arrival; the block lasts 300 ms.
  for (size_t i = 4; i < arrivals.size(); ++i) {
    EXPECT_GE(arrivals[i] - arrivals[0], std::chrono::milliseconds(350)) << "request " << i + 1;
  }
  EXPECT_EQ(client_->Stats("storm").rate_limited, 4);
}

TEST_F(HttpClientTest, KeepAliveReusesConnections) {
  EndpointOptions o = Options();
  o.max_concurrency = 4;
  auto model = Model(o);
  Collector done;
  for (int i = 0; i < 200; ++i) model->Chat(Ask("x"), done.Callback(i));
  ASSERT_TRUE(done.WaitFor(200));
  EXPECT_EQ(server_->total_requests(), 200);
  EXPECT_LE(server_->connections_accepted(), 8);
}

TEST_F(HttpClientTest, ApiKeyIsSentAndNeverLeaks) {
  // The server echoes the key in its error, as some do: the client must scrub it.
  SetResponder([](const FakeRequest& req) {
    FakeReply r;
    r.status = 401;
    r.error_message = "Incorrect API key provided: " + req.headers.at("authorization");
    return r;
  });
  EndpointOptions o = Options("keyed");
  o.api_key_env = "TEST_KEY";
  auto model = Model(o);
  auto r = model->ChatSync(Ask("x"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_FALSE(Contains(r.status().ToString(), kSecretKey)) << r.status().ToString();
  EXPECT_TRUE(Contains(r.status().message(), "Incorrect API key provided")) << r.status().message();
  EXPECT_FALSE(Contains(model->Identity(), kSecretKey));
  auto headers = server_->recent_headers();
  ASSERT_FALSE(headers.empty());
  EXPECT_EQ(headers.back().at("authorization"), std::string("Bearer ") + kSecretKey);
}

TEST_F(HttpClientTest, CustomKeyHeaderAndAzureStyleUrl) {
  EndpointOptions o = Options("azure");
  o.base_url = server_->base_url() + "/openai/deployments/gpt/?api-version=2024-02-01";
  o.api_key_env = "TEST_KEY";
  o.api_key_header = "api-key";
  o.extra_headers = {{"X-Team", "red"}};
  auto r = Model(o)->ChatSync(Ask("x"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto seen = Requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].path, "/v1/openai/deployments/gpt/chat/completions");
  EXPECT_EQ(seen[0].query, "api-version=2024-02-01");
  EXPECT_EQ(seen[0].headers.at("api-key"), kSecretKey);
  EXPECT_EQ(seen[0].headers.count("authorization"), 0u);
  EXPECT_EQ(seen[0].headers.at("x-team"), "red");
}

TEST_F(HttpClientTest, MissingKeyVariableIsAnError) {
  EndpointOptions o = Options("nokey");
  o.api_key_env = "BREAKFIX_TEST_UNSET_KEY_VAR";
  auto m = client_->NewChatModel(o);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(m.status().message(), "BREAKFIX_TEST_UNSET_KEY_VAR"))
      << m.status().message();
}

TEST_F(HttpClientTest, InvalidOptionsAreRejected) {
  EndpointOptions o = Options();
  o.base_url = "ftp://127.0.0.1/v1";
  EXPECT_EQ(client_->NewChatModel(o).status().code(), StatusCode::kInvalidArgument);
  o = Options();
  o.max_concurrency = 0;
  EXPECT_EQ(client_->NewChatModel(o).status().code(), StatusCode::kInvalidArgument);
  o = Options();
  o.idle_timeout_ms = 0;
  EXPECT_EQ(client_->NewChatModel(o).status().code(), StatusCode::kInvalidArgument);
  o = Options();
  o.extra_headers = {{"X-Bad", "a\r\nInjected: 1"}};
  EXPECT_EQ(client_->NewChatModel(o).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(HttpClientTest, NonFiniteSamplingFailsWithoutARequest) {
  ChatRequest req = Ask("x");
  req.sampling.top_p = std::numeric_limits<double>::infinity();
  auto r = Model(Options())->ChatSync(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(server_->total_requests(), 0);
}

TEST_F(HttpClientTest, IdentityNamesEndpointModelAndFixedSampling) {
  EndpointOptions o = Options();
  o.api_key_env = "TEST_KEY";
  auto plain = Model(o);
  std::string id = plain->Identity();
  EXPECT_TRUE(Contains(id, server_->base_url())) << id;
  EXPECT_TRUE(Contains(id, "fake-model")) << id;
  EXPECT_FALSE(Contains(id, "temperature")) << id;
  EXPECT_FALSE(Contains(id, kSecretKey));

  o.temperature = 0.5;
  auto fixed = Model(o);
  EXPECT_TRUE(Contains(fixed->Identity(), "temperature")) << fixed->Identity();
  EXPECT_NE(fixed->Identity(), id);
  o.temperature = 0.6;
  EXPECT_NE(Model(o)->Identity(), fixed->Identity());
  // Invalid UTF-8 in a configured name does not throw.
  EndpointOptions odd = Options();
  odd.model = "model-\xff";
  EXPECT_FALSE(Model(odd)->Identity().empty());
  // A trailing slash does not change the identity.
  EndpointOptions slash = Options();
  slash.base_url += "/";
  EXPECT_EQ(Model(slash)->Identity(), id);
}

TEST_F(HttpClientTest, PinnedSamplingReplacesOnlyThePinnedFields) {
  EndpointOptions o = Options();
  o.temperature = 0.9;
  ChatRequest req = Ask("x");
  req.sampling.temperature = 0.0;
  req.sampling.max_tokens = 5;
  req.sampling.seed = 4242;
  ASSERT_TRUE(Model(o)->ChatSync(req).ok());
  o.max_tokens = 77;
  ASSERT_TRUE(Model(o)->ChatSync(req).ok());
  auto seen = Requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].temperature, 0.9);
  EXPECT_EQ(seen[0].max_tokens, 5);  // not pinned: the request's own
  EXPECT_EQ(seen[0].seed, 4242u);    // the request's seed survives
  EXPECT_EQ(seen[1].max_tokens, 77);
}

TEST_F(HttpClientTest, CancelAllCancelsQueuedAndInFlightExactlyOnce) {
  FakeReply hang;
  hang.fault = FakeFault::kHang;
  SetResponder(FailFirst(1000, hang));
  EndpointOptions o = Options("cancel");
  o.max_concurrency = 3;
  auto model = Model(o);
  Collector done;
  for (int i = 0; i < 10; ++i) model->Chat(Ask("x"), done.Callback(i));
  // Wait until the three in-flight requests reached the server.
  for (int i = 0; i < 500 && server_->total_requests() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(server_->total_requests(), 3);
  client_->CancelAll();
  // CancelAll returns after every callback ran.
  auto calls = done.calls();
  ASSERT_EQ(calls.size(), 10u);
  for (auto& [id, n] : calls) EXPECT_EQ(n, 1) << id;
  for (auto& [id, r] : done.results()) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
  }
  EndpointStats s = client_->Stats("cancel");
  EXPECT_EQ(s.in_flight, 0);
  EXPECT_EQ(s.queued, 0);

  // The client still works afterwards.
  SetResponder(nullptr);
  auto r = model->ChatSync(Ask("again"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(done.calls().size(), 10u);
}

TEST_F(HttpClientTest, CancelAllCancelsCallsWaitingToRetry) {
  FakeReply limited;
  limited.status = 429;
  limited.headers = {{"Retry-After", "30"}};
  SetResponder(FailFirst(1000, limited));
  auto model = Model(Options());
  Collector done;
  model->Chat(Ask("x"), done.Callback(0));
  for (int i = 0; i < 500 && client_->Stats("fake").rate_limited < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  client_->CancelAll();
  ASSERT_TRUE(done.WaitFor(1, std::chrono::seconds(5)));
  auto results = done.results();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results.begin()->second.status().code(), StatusCode::kCancelled);
}

TEST_F(HttpClientTest, DestructorCancelsEverythingExactlyOnce) {
  FakeReply hang;
  hang.fault = FakeFault::kHang;
  SetResponder(FailFirst(1000, hang));
  EndpointOptions o = Options();
  o.max_concurrency = 2;
  auto model = Model(o);
  Collector done;
  for (int i = 0; i < 6; ++i) model->Chat(Ask("x"), done.Callback(i));
  for (int i = 0; i < 500 && server_->total_requests() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  client_.reset();
  model.reset();
  auto calls = done.calls();
  ASSERT_EQ(calls.size(), 6u);
  for (auto& [id, n] : calls) EXPECT_EQ(n, 1) << id;
  for (auto& [id, r] : done.results()) EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
}

TEST_F(HttpClientTest, CallbackMayIssueTheNextCall) {
  // A multi-turn conversation driven from callbacks on the I/O thread.
  SetResponder([](const FakeRequest& req) {
    return TextReply("turn " + std::to_string(req.messages.size()));
  });
  auto model = Model(Options());
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Message> history;
  bool finished = false;
  std::function<void(Result<ChatResponse>)> next = [&](Result<ChatResponse> r) {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    history.push_back(r->message);
    if (history.size() >= 6) {
      finished = true;
      cv.notify_all();
      return;
    }
    history.push_back({Role::kUser, "more"});
    model->Chat(Conversation(history), next);
  };
  {
    std::lock_guard<std::mutex> lock(mu);
    history.push_back({Role::kUser, "start"});
  }
  model->Chat(Conversation({{Role::kUser, "start"}}), next);
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return finished; }));
  EXPECT_EQ(history.back().content, "turn 5");
}

TEST_F(HttpClientTest, ManyConcurrentRequestsAllCompleteCorrectly) {
  SetResponder(
      [](const FakeRequest& req) { return TextReply("echo:" + req.messages.back().content); });
  EndpointOptions o = Options("load");
  o.max_concurrency = 64;
  auto model = Model(o);
  constexpr int kCalls = 5000;
  Collector done;
  auto start = Clock::now();
  for (int i = 0; i < kCalls; ++i) model->Chat(Ask("m" + std::to_string(i)), done.Callback(i));
  ASSERT_TRUE(done.WaitFor(kCalls, std::chrono::seconds(120)));
  double seconds = MsSince(start) / 1000.0;
  std::printf("[ rate     ] %d requests at concurrency 64 in %.2f s: %.0f requests/s\n", kCalls,
              seconds, kCalls / seconds);
  auto results = done.results();
  ASSERT_EQ(results.size(), static_cast<size_t>(kCalls));
  for (auto& [id, r] : results) {
    ASSERT_TRUE(r.ok()) << id << ": " << r.status().ToString();
    ASSERT_EQ(r->message.content, "echo:m" + std::to_string(id));
  }
  for (auto& [id, n] : done.calls()) ASSERT_EQ(n, 1) << id;
  EXPECT_LE(server_->max_in_flight(), 64);
  EXPECT_LE(server_->connections_accepted(), 80);
  EndpointStats s = client_->Stats("load");
  EXPECT_EQ(s.succeeded, kCalls);
  EXPECT_EQ(s.requests, kCalls);
}

TEST_F(HttpClientTest, UnnamedEndpointIsNamedAfterItsModel) {
  EndpointOptions o = Options("");
  auto model = Model(o);
  EXPECT_EQ(model->name(), "fake-model");
  ASSERT_TRUE(model->ChatSync(Ask("x")).ok());
  EXPECT_EQ(client_->Stats("fake-model").succeeded, 1);
}

TEST_F(HttpClientTest, StatsAreKeptPerEndpointName) {
  auto a = Model(Options("alpha"));
  auto b = Model(Options("beta"));
  ASSERT_TRUE(a->ChatSync(Ask("x")).ok());
  ASSERT_TRUE(a->ChatSync(Ask("x")).ok());
  ASSERT_TRUE(b->ChatSync(Ask("x")).ok());
  EXPECT_EQ(client_->Stats("alpha").succeeded, 2);
  EXPECT_EQ(client_->Stats("beta").succeeded, 1);
  EXPECT_EQ(client_->Stats("gamma").requests, 0);
}

}  // namespace
}  // namespace breakfix
