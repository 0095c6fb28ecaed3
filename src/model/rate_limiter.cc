#include "model/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace breakfix {

TokenBucket::TokenBucket(double per_minute, double capacity, int64_t now_us)
    : rate_per_us_(per_minute > 0 ? per_minute / 60e6 : 0),
      capacity_(std::max(capacity, 1e-9)),
      level_(capacity_),
      last_us_(now_us) {}

void TokenBucket::Refill(int64_t now_us) {
  if (now_us > last_us_) {
    level_ = std::min(capacity_, level_ + static_cast<double>(now_us - last_us_) * rate_per_us_);
    last_us_ = now_us;
  }
}

double TokenBucket::Level(int64_t now_us) {
  Refill(now_us);
  return level_;
}

int64_t TokenBucket::WaitMicros(int64_t now_us, double cost) {
  if (unlimited()) return 0;
  Refill(now_us);
  // A cost above capacity only needs a full bucket; it then overdraws.
  double need = std::min(cost, capacity_);
  // A hair of tolerance so float rounding never adds a spurious 1 us wait.
  if (level_ + 1e-9 >= need) return 0;
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil((need - level_) / rate_per_us_)));
}

void TokenBucket::Take(int64_t now_us, double cost) {
  if (unlimited()) return;
  Refill(now_us);
  level_ -= cost;
}

void TokenBucket::Give(int64_t now_us, double amount) {
  if (unlimited()) return;
  Refill(now_us);
  level_ = std::min(capacity_, level_ + amount);
}

RateLimiter::RateLimiter(double requests_per_minute, double tokens_per_minute, int64_t now_us)
    : requests_(requests_per_minute, 1.0, now_us),
      tokens_(tokens_per_minute, tokens_per_minute > 0 ? tokens_per_minute / 60.0 : 1.0, now_us) {}

int64_t RateLimiter::TryAcquire(int64_t now_us, int64_t tokens) {
  double cost = static_cast<double>(std::max<int64_t>(0, tokens));
  int64_t wait = std::max(requests_.WaitMicros(now_us, 1.0), tokens_.WaitMicros(now_us, cost));
  if (wait > 0) return wait;
  requests_.Take(now_us, 1.0);
  tokens_.Take(now_us, cost);
  return 0;
}

void RateLimiter::Settle(int64_t now_us, int64_t reserved, int64_t actual) {
  tokens_.Give(now_us, static_cast<double>(reserved - std::max<int64_t>(0, actual)));
}

}  // namespace breakfix
