// Request and token budgets for one endpoint (requests per minute, tokens per minute).
//
// Each budget is a token bucket refilled continuously at its per-minute rate. The request bucket
// holds one request, so requests are paced evenly (600 rpm = one every 100 ms) and no burst can
// exceed the budget. The token bucket holds one second's worth of tokens; a reservation larger
// than that is admitted once the bucket is full and drives it negative, so big requests are
// delayed in proportion to their size instead of being starved.
//
// Time is passed in (monotonic microseconds), so tests drive the limiter with a fake clock.
// Not thread-safe: the HTTP client uses it from its I/O thread only.
#ifndef BREAKFIX_MODEL_RATE_LIMITER_H_
#define BREAKFIX_MODEL_RATE_LIMITER_H_

#include <cstdint>

namespace breakfix {

class TokenBucket {
 public:
  // `per_minute` <= 0 means unlimited; `capacity` is the most the bucket holds (> 0). The bucket
  // starts full at `now_us`.
  TokenBucket(double per_minute, double capacity, int64_t now_us);

  bool unlimited() const { return rate_per_us_ <= 0; }
  // Microseconds until `cost` may be taken (0 = now). Takes nothing.
  int64_t WaitMicros(int64_t now_us, double cost);
  // Takes `cost` (the level may go negative).
  void Take(int64_t now_us, double cost);
  // Puts `amount` back (never above capacity); a negative amount takes more.
  void Give(int64_t now_us, double amount);
  // Current level, after refilling to `now_us`.
  double Level(int64_t now_us);

 private:
  void Refill(int64_t now_us);

  double rate_per_us_;
  double capacity_;
  double level_;
  int64_t last_us_;
};

class RateLimiter {
 public:
  // 0 (or less) for either budget means unlimited.
  RateLimiter(double requests_per_minute, double tokens_per_minute, int64_t now_us);

  // Reserves one request and `tokens` tokens when both budgets allow, returning 0; otherwise
  // reserves nothing and returns how many microseconds to wait before asking again (>= 1).
  int64_t TryAcquire(int64_t now_us, int64_t tokens);

  // Settles a reservation of `reserved` tokens once the real count is known: the difference is
  // refunded (or charged, when the server used more). `actual` = 0 refunds everything, for an
  // attempt that produced no completion. The request itself stays counted: it reached the server.
  void Settle(int64_t now_us, int64_t reserved, int64_t actual);

  bool unlimited() const { return requests_.unlimited() && tokens_.unlimited(); }

 private:
  TokenBucket requests_;
  TokenBucket tokens_;
};

}  // namespace breakfix

#endif  // BREAKFIX_MODEL_RATE_LIMITER_H_
