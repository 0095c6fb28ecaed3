#include "model/rate_limiter.h"

#include <gtest/gtest.h>

namespace breakfix {
namespace {

constexpr int64_t kSecond = 1000000;

TEST(TokenBucketTest, UnlimitedNeverWaits) {
  TokenBucket bucket(0, 1, 0);
  EXPECT_TRUE(bucket.unlimited());
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(bucket.WaitMicros(0, 1e9), 0);
    bucket.Take(0, 1e9);
  }
}

TEST(TokenBucketTest, RefillsAtThePerMinuteRate) {
  TokenBucket bucket(60, 1, 0);  // one per second
  EXPECT_EQ(bucket.WaitMicros(0, 1), 0);
  bucket.Take(0, 1);
  EXPECT_EQ(bucket.WaitMicros(0, 1), kSecond);
  EXPECT_EQ(bucket.WaitMicros(kSecond / 4, 1), 3 * kSecond / 4);
  EXPECT_EQ(bucket.WaitMicros(kSecond, 1), 0);
  // Never refills above capacity however long it idles.
  EXPECT_DOUBLE_EQ(bucket.Level(100 * kSecond), 1.0);
}

TEST(TokenBucketTest, OversizedCostWaitsForAFullBucketThenOverdraws) {
  TokenBucket bucket(600, 10, 0);  // 10 per second, capacity 10
  bucket.Take(0, 5);
  // 25 > capacity: needs a full bucket (5 more = 0.5 s), not 25 tokens.
  EXPECT_EQ(bucket.WaitMicros(0, 25), kSecond / 2);
  EXPECT_EQ(bucket.WaitMicros(kSecond / 2, 25), 0);
  bucket.Take(kSecond / 2, 25);
  EXPECT_DOUBLE_EQ(bucket.Level(kSecond / 2), -15.0);
  // The debt delays the next small request: 16 tokens at 10/s.
  EXPECT_EQ(bucket.WaitMicros(kSecond / 2, 1), 1600000);
}

TEST(TokenBucketTest, GiveRefundsButNotAboveCapacity) {
  TokenBucket bucket(60, 10, 0);
  bucket.Take(0, 8);
  bucket.Give(0, 5);
  EXPECT_DOUBLE_EQ(bucket.Level(0), 7.0);
  bucket.Give(0, 100);
  EXPECT_DOUBLE_EQ(bucket.Level(0), 10.0);
  bucket.Give(0, -4);  // a charge
  EXPECT_DOUBLE_EQ(bucket.Level(0), 6.0);
}

TEST(RateLimiterTest, RequestsArePacedEvenly) {
  RateLimiter limiter(600, 0, 0);  // 10 requests per second
  int64_t now = 0;
  std::vector<int64_t> starts;
  while (starts.size() < 20) {
    int64_t wait = limiter.TryAcquire(now, 0);
    if (wait == 0) {
      starts.push_back(now);
    } else {
      now += wait;
    }
  }
  EXPECT_EQ(starts.front(), 0);
  for (size_t i = 1; i < starts.size(); ++i) {
    EXPECT_GE(starts[i] - starts[i - 1], 100000 - 1) << i;
  }
  EXPECT_GE(starts.back(), 19 * 100000 - 20);
}

TEST(RateLimiterTest, NoSixtySecondWindowExceedsTheRequestBudget) {
  RateLimiter limiter(120, 0, 0);
  int64_t now = 0;
  std::vector<int64_t> starts;
  while (now < 300 * kSecond) {
    int64_t wait = limiter.TryAcquire(now, 0);
    if (wait == 0) starts.push_back(now);
    now += wait == 0 ? 1000 : wait;  // keep asking, as a saturated queue would
  }
  for (size_t i = 0; i < starts.size(); ++i) {
    size_t j = i;
    while (j < starts.size() && starts[j] < starts[i] + 60 * kSecond) ++j;
    EXPECT_LE(j - i, 121u) << "window starting at " << starts[i];
  }
}

TEST(RateLimiterTest, TokenBudgetDelaysLargeReservations) {
  RateLimiter limiter(0, 6000, 0);  // 100 tokens/s, bucket of 100
  EXPECT_EQ(limiter.TryAcquire(0, 100), 0);
  // Empty now: 50 more tokens take half a second.
  EXPECT_EQ(limiter.TryAcquire(0, 50), kSecond / 2);
  EXPECT_EQ(limiter.TryAcquire(kSecond / 2, 50), 0);
}

TEST(RateLimiterTest, SettleRefundsUnusedTokens) {
  RateLimiter limiter(0, 6000, 0);  // 100 tokens/s
  ASSERT_EQ(limiter.TryAcquire(0, 100), 0);
  EXPECT_GT(limiter.TryAcquire(0, 100), 0);
  limiter.Settle(0, 100, 20);  // only 20 used: 80 come back
  EXPECT_EQ(limiter.TryAcquire(0, 80), 0);
  EXPECT_GT(limiter.TryAcquire(0, 1), 0);
}

TEST(RateLimiterTest, SettleChargesOverruns) {
  RateLimiter limiter(0, 6000, 0);
  ASSERT_EQ(limiter.TryAcquire(0, 50), 0);
  limiter.Settle(0, 50, 250);  // used 200 more than reserved: level -150
  EXPECT_EQ(limiter.TryAcquire(0, 10), 1600000);
}

TEST(RateLimiterTest, FailedAttemptRefundsTokensButKeepsTheRequest) {
  RateLimiter limiter(60, 6000, 0);
  ASSERT_EQ(limiter.TryAcquire(0, 100), 0);
  limiter.Settle(0, 100, 0);
  // Tokens are back, but the request budget (1/s) is spent.
  EXPECT_EQ(limiter.TryAcquire(0, 100), kSecond);
  EXPECT_EQ(limiter.TryAcquire(kSecond, 100), 0);
}

TEST(RateLimiterTest, RefusalReservesNothing) {
  RateLimiter limiter(60, 6000, 0);
  ASSERT_EQ(limiter.TryAcquire(0, 100), 0);
  // Refused on requests: the tokens must not have been taken either.
  ASSERT_GT(limiter.TryAcquire(kSecond / 2, 10), 0);
  EXPECT_EQ(limiter.TryAcquire(kSecond, 100), 0);
}

}  // namespace
}  // namespace breakfix
