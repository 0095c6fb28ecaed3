// When and how long to wait before retrying a failed HTTP attempt.
//
// Backoff is exponential with full jitter: retry k waits a uniform random time in
// [0, min(max_backoff, initial_backoff * 2^(k-1))], so clients that failed together do not retry
// together. A server's own request to wait (Retry-After, retry-after-ms) is a floor on the wait,
// honoured up to max_retry_after; beyond it the call fails rather than sleeping for minutes.
//
// Pure functions; the random generator and the clock readings are passed in.
#ifndef BREAKFIX_MODEL_RETRY_POLICY_H_
#define BREAKFIX_MODEL_RETRY_POLICY_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "breakfix/env.h"

namespace breakfix {

struct RetryPolicy {
  int max_retries = 6;                  // retries after the first attempt
  int64_t initial_backoff_ms = 500;     // backoff cap for the first retry; doubles each retry
  int64_t max_backoff_ms = 30000;       // largest backoff cap
  int64_t max_retry_after_ms = 120000;  // longest server-requested wait honoured
};

// Full-jitter backoff for retry number `retry` (1 = the first retry), in microseconds.
int64_t BackoffMicros(const RetryPolicy& policy, int retry, Random& rng);

struct RetryPlan {
  enum class Action {
    kRetry,        // wait delay_us, then try again
    kGiveUp,       // the retry budget is spent
    kWaitTooLong,  // the server asked for a wait above max_retry_after_ms
  };
  Action action = Action::kGiveUp;
  int64_t delay_us = 0;  // for kRetry
};

// What to do after attempt number `attempts` (1-based) failed in a retryable way.
// `server_delay_us` is the wait the server asked for, if any.
RetryPlan PlanRetry(const RetryPolicy& policy, int attempts, std::optional<int64_t> server_delay_us,
                    Random& rng);

// Parses a Retry-After value: delay-seconds ("120", also a decimal such as "1.5") or an
// HTTP-date. Returns the wait in microseconds from `now_wall_us` (Unix epoch), never negative;
// nullopt when the value is neither form.
std::optional<int64_t> ParseRetryAfter(std::string_view value, int64_t now_wall_us);

// Parses a retry-after-ms value (milliseconds, integer or decimal) into microseconds.
std::optional<int64_t> ParseRetryAfterMs(std::string_view value);

// Parses an HTTP-date in any of the three forms RFC 9110 asks recipients to accept
// ("Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994")
// into seconds since the Unix epoch.
std::optional<int64_t> ParseHttpDate(std::string_view value);

}  // namespace breakfix

#endif  // BREAKFIX_MODEL_RETRY_POLICY_H_
