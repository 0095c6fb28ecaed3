// Status and Result<T>: how every fallible breakfix call reports failure.
//
// No exception crosses a public header. A Status carries a code that maps onto the CLI's exit
// codes (kInvalidArgument -> 2, everything else -> 1) and a message that says what was wrong,
// where (file:line:column, field, HTTP status) and what was expected.
//
// Status and Result are values: copyable, movable, and not thread-safe to mutate concurrently.
#ifndef BREAKFIX_STATUS_H_
#define BREAKFIX_STATUS_H_

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace breakfix {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad input or usage: a file, a flag, a field. CLI exit code 2.
  kNotFound,            // a named thing (run, file, model) does not exist.
  kIOError,             // the filesystem or a socket failed.
  kCorruption,          // stored data is inconsistent.
  kUnavailable,         // a transient failure that was retried until the retry budget ran out.
  kDeadlineExceeded,    // a timeout.
  kPermissionDenied,    // authentication or authorisation failed (HTTP 401/403).
  kFailedPrecondition,  // the system is not in a state where the call makes sense.
  kCancelled,           // the caller asked to stop (Ctrl-C, shutdown).
  kResourceExhausted,   // a quota or limit was hit (HTTP 429 after every retry).
  kInternal,            // a bug: an invariant did not hold.
};

// Human-readable name of a code, e.g. "InvalidArgument".
const char* StatusCodeName(StatusCode code);

class Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return {StatusCode::kInvalidArgument, std::move(msg)};
  }
  static Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
  static Status IOError(std::string msg) { return {StatusCode::kIOError, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {StatusCode::kCorruption, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
  static Status DeadlineExceeded(std::string msg) {
    return {StatusCode::kDeadlineExceeded, std::move(msg)};
  }
  static Status PermissionDenied(std::string msg) {
    return {StatusCode::kPermissionDenied, std::move(msg)};
  }
  static Status FailedPrecondition(std::string msg) {
    return {StatusCode::kFailedPrecondition, std::move(msg)};
  }
  static Status Cancelled(std::string msg) { return {StatusCode::kCancelled, std::move(msg)}; }
  static Status ResourceExhausted(std::string msg) {
    return {StatusCode::kResourceExhausted, std::move(msg)};
  }
  static Status Internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "InvalidArgument: suite.yaml:12:3: expected a list of strings" or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "context: message" (code unchanged).
  Status WithContext(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Either a value or a non-OK Status.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok() && "Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  // The error; OK when the Result holds a value.
  Status status() const { return ok() ? Status::OK() : std::get<Status>(v_); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace breakfix

#define BF_CONCAT_INNER_(a, b) a##b
#define BF_CONCAT_(a, b) BF_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` (a Status) is not OK.
#define BF_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::breakfix::Status bf_status_ = (expr);  \
    if (!bf_status_.ok()) return bf_status_; \
  } while (0)

// `BF_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from a Result or returns its Status.
#define BF_ASSIGN_OR_RETURN(lhs, expr) \
  BF_ASSIGN_OR_RETURN_IMPL_(BF_CONCAT_(bf_result_, __LINE__), lhs, expr)
#define BF_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

#endif  // BREAKFIX_STATUS_H_
