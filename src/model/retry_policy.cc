#include "model/retry_policy.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <string>
#include <vector>

namespace breakfix {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// A non-negative decimal number ("3", "0.25"); nullopt for anything else.
std::optional<double> ParseNonNegative(std::string_view s) {
  s = Trim(s);
  if (s.empty()) return std::nullopt;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.') return std::nullopt;
  }
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<int> ParseInt(std::string_view s) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<int> MonthIndex(std::string_view name) {
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i) {
    if (name == kMonths[i]) return i + 1;
  }
  return std::nullopt;
}

bool IsWord(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isalpha(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (the usual era-based computation).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

std::optional<int64_t> ToEpoch(int year, int month, int day, std::string_view hms) {
  if (hms.size() != 8 || hms[2] != ':' || hms[5] != ':') return std::nullopt;
  auto h = ParseInt(hms.substr(0, 2)), mi = ParseInt(hms.substr(3, 2)),
       s = ParseInt(hms.substr(6, 2));
  if (!h || !mi || !s || *h > 23 || *mi > 59 || *s > 60) return std::nullopt;
  if (day < 1 || day > 31 || month < 1 || month > 12 || year < 1900 || year > 9999) {
    return std::nullopt;
  }
  return DaysFromCivil(year, month, day) * 86400 + *h * 3600 + *mi * 60 + *s;
}

}  // namespace

int64_t BackoffMicros(const RetryPolicy& policy, int retry, Random& rng) {
  const int64_t initial_us = std::max<int64_t>(0, policy.initial_backoff_ms) * 1000;
  const int64_t max_us = std::max<int64_t>(0, policy.max_backoff_ms) * 1000;
  int64_t cap = initial_us;
  for (int i = 1; i < retry && cap < max_us; ++i) cap *= 2;
  cap = std::min(cap, max_us);
  if (cap <= 0) return 0;
  return static_cast<int64_t>(rng.Below(static_cast<uint64_t>(cap) + 1));
}

RetryPlan PlanRetry(const RetryPolicy& policy, int attempts, std::optional<int64_t> server_delay_us,
                    Random& rng) {
  RetryPlan plan;
  if (server_delay_us && *server_delay_us > policy.max_retry_after_ms * 1000) {
    plan.action = RetryPlan::Action::kWaitTooLong;
    plan.delay_us = *server_delay_us;
    return plan;
  }
  if (attempts > policy.max_retries) {
    plan.action = RetryPlan::Action::kGiveUp;
    return plan;
  }
  plan.action = RetryPlan::Action::kRetry;
  plan.delay_us = std::max(server_delay_us.value_or(0), BackoffMicros(policy, attempts, rng));
  return plan;
}

std::optional<int64_t> ParseRetryAfter(std::string_view value, int64_t now_wall_us) {
  value = Trim(value);
  if (std::optional<double> seconds = ParseNonNegative(value)) {
    return static_cast<int64_t>(std::min(*seconds, 1e9) * 1e6);
  }
  std::optional<int64_t> when = ParseHttpDate(value);
  if (!when) return std::nullopt;
  return std::max<int64_t>(0, *when * 1000000 - now_wall_us);
}

std::optional<int64_t> ParseRetryAfterMs(std::string_view value) {
  std::optional<double> ms = ParseNonNegative(value);
  if (!ms) return std::nullopt;
  return static_cast<int64_t>(std::min(*ms, 1e12) * 1e3);
}

std::optional<int64_t> ParseHttpDate(std::string_view value) {
  std::vector<std::string_view> tokens;
  value = Trim(value);
  size_t i = 0;
  while (i < value.size()) {
    while (i < value.size() && (value[i] == ' ' || value[i] == ',')) ++i;
    size_t start = i;
    while (i < value.size() && value[i] != ' ' && value[i] != ',') ++i;
    if (i > start) tokens.push_back(value.substr(start, i - start));
  }
  if (tokens.empty() || !IsWord(tokens[0])) return std::nullopt;  // the weekday
  if (tokens.size() == 6 && tokens[5] == "GMT") {
    // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    auto day = ParseInt(tokens[1]);
    auto month = MonthIndex(tokens[2]);
    auto year = ParseInt(tokens[3]);
    if (!day || !month || !year || tokens[3].size() != 4) return std::nullopt;
    return ToEpoch(*year, *month, *day, tokens[4]);
  }
  if (tokens.size() == 4 && tokens[3] == "GMT") {
    // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    std::string_view dmy = tokens[1];
    if (dmy.size() != 9 || dmy[2] != '-' || dmy[6] != '-') return std::nullopt;
    auto day = ParseInt(dmy.substr(0, 2));
    auto month = MonthIndex(dmy.substr(3, 3));
    auto yy = ParseInt(dmy.substr(7, 2));
    if (!day || !month || !yy) return std::nullopt;
    return ToEpoch(*yy < 70 ? 2000 + *yy : 1900 + *yy, *month, *day, tokens[2]);
  }
  if (tokens.size() == 5) {
    // asctime: Sun Nov  6 08:49:37 1994
    auto month = MonthIndex(tokens[1]);
    auto day = ParseInt(tokens[2]);
    auto year = ParseInt(tokens[4]);
    if (!day || !month || !year) return std::nullopt;
    return ToEpoch(*year, *month, *day, tokens[3]);
  }
  return std::nullopt;
}

}  // namespace breakfix
