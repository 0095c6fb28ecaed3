#include "model/retry_policy.h"

#include <gtest/gtest.h>

namespace breakfix {
namespace {

TEST(BackoffTest, FullJitterWithinTheDoublingCap) {
  RetryPolicy policy;
  policy.initial_backoff_ms = 100;
  policy.max_backoff_ms = 1000;
  Random rng(7);
  const int64_t caps[] = {100000, 200000, 400000, 800000, 1000000, 1000000};
  for (int retry = 1; retry <= 6; ++retry) {
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < 2000; ++i) {
      int64_t d = BackoffMicros(policy, retry, rng);
      ASSERT_GE(d, 0);
      ASSERT_LE(d, caps[retry - 1]) << "retry " << retry;
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    // Full jitter spans the whole range, not just the top of it.
    EXPECT_LT(lo, caps[retry - 1] / 10) << "retry " << retry;
    EXPECT_GT(hi, caps[retry - 1] * 9 / 10) << "retry " << retry;
  }
}

TEST(BackoffTest, LargeRetryNumbersDoNotOverflow) {
  RetryPolicy policy;
  policy.initial_backoff_ms = 500;
  policy.max_backoff_ms = 30000;
  Random rng(1);
  for (int i = 0; i < 100; ++i) EXPECT_LE(BackoffMicros(policy, 1000, rng), 30000000);
  policy.initial_backoff_ms = 0;
  EXPECT_EQ(BackoffMicros(policy, 3, rng), 0);
}

TEST(PlanRetryTest, GivesUpAfterMaxRetries) {
  RetryPolicy policy;
  policy.max_retries = 2;
  Random rng(3);
  EXPECT_EQ(PlanRetry(policy, 1, std::nullopt, rng).action, RetryPlan::Action::kRetry);
  EXPECT_EQ(PlanRetry(policy, 2, std::nullopt, rng).action, RetryPlan::Action::kRetry);
  EXPECT_EQ(PlanRetry(policy, 3, std::nullopt, rng).action, RetryPlan::Action::kGiveUp);
  policy.max_retries = 0;
  EXPECT_EQ(PlanRetry(policy, 1, std::nullopt, rng).action, RetryPlan::Action::kGiveUp);
}

TEST(PlanRetryTest, ServerDelayIsAFloor) {
  RetryPolicy policy;
  policy.initial_backoff_ms = 10;
  policy.max_backoff_ms = 10;
  Random rng(5);
  for (int i = 0; i < 100; ++i) {
    RetryPlan plan = PlanRetry(policy, 1, 2000000, rng);
    ASSERT_EQ(plan.action, RetryPlan::Action::kRetry);
    EXPECT_EQ(plan.delay_us, 2000000);
  }
}

TEST(PlanRetryTest, ServerDelayAboveTheCapFails) {
  RetryPolicy policy;
  policy.max_retry_after_ms = 1000;
  Random rng(5);
  RetryPlan plan = PlanRetry(policy, 1, 1000001, rng);
  EXPECT_EQ(plan.action, RetryPlan::Action::kWaitTooLong);
  EXPECT_EQ(plan.delay_us, 1000001);
  EXPECT_EQ(PlanRetry(policy, 1, 1000000, rng).action, RetryPlan::Action::kRetry);
}

TEST(RetryAfterTest, DelaySeconds) {
  EXPECT_EQ(ParseRetryAfter("2", 0), 2000000);
  EXPECT_EQ(ParseRetryAfter(" 0 ", 0), 0);
  EXPECT_EQ(ParseRetryAfter("1.5", 0), 1500000);
  EXPECT_EQ(ParseRetryAfter("120", 0), 120000000);
  EXPECT_FALSE(ParseRetryAfter("", 0));
  EXPECT_FALSE(ParseRetryAfter("-1", 0));
  EXPECT_FALSE(ParseRetryAfter("soon", 0));
  EXPECT_FALSE(ParseRetryAfter("1e3", 0));
}

TEST(RetryAfterTest, RetryAfterMs) {
  EXPECT_EQ(ParseRetryAfterMs("250"), 250000);
  EXPECT_EQ(ParseRetryAfterMs("0.5"), 500);
  EXPECT_FALSE(ParseRetryAfterMs("x"));
  EXPECT_FALSE(ParseRetryAfterMs("-3"));
}

TEST(HttpDateTest, AllThreeForms) {
  // 1994-11-06 08:49:37 UTC.
  const int64_t expected = 784111777;
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), expected);
  EXPECT_EQ(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), expected);
  EXPECT_EQ(ParseHttpDate("Sun Nov  6 08:49:37 1994"), expected);
  EXPECT_EQ(ParseHttpDate("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
  EXPECT_EQ(ParseHttpDate("Tue, 29 Feb 2028 23:59:59 GMT"), 1835481599);
}

TEST(HttpDateTest, RejectsGarbage) {
  EXPECT_FALSE(ParseHttpDate(""));
  EXPECT_FALSE(ParseHttpDate("Sun, 06 Nov 1994 08:49:37"));
  EXPECT_FALSE(ParseHttpDate("Sun, 06 Foo 1994 08:49:37 GMT"));
  EXPECT_FALSE(ParseHttpDate("Sun, 06 Nov 1994 25:49:37 GMT"));
  EXPECT_FALSE(ParseHttpDate("Sun, 32 Nov 1994 08:49:37 GMT"));
  EXPECT_FALSE(ParseHttpDate("Sun, 06 Nov 94 08:49:37 GMT"));
  EXPECT_FALSE(ParseHttpDate("06 Nov 1994 08:49:37 GMT"));
}

TEST(RetryAfterTest, HttpDateIsRelativeToNow) {
  const int64_t date = 784111777;
  const int64_t now_us = (date - 30) * 1000000;
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now_us), 30000000);
  // A date in the past means "now", not a negative wait.
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", (date + 5) * 1000000), 0);
}

}  // namespace
}  // namespace breakfix
