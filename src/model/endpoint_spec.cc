// ParseEndpointSpec: the command-line form of EndpointOptions.
#include <charconv>
#include <cmath>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "breakfix/openai_client.h"

namespace breakfix {
namespace {

constexpr const char* kSpecKeys =
    "name, url, model, key_env, key_header, concurrency, rpm, tpm, retries, backoff_ms, "
    "max_backoff_ms, max_retry_after_ms, connect_timeout_ms, timeout_ms, idle_timeout_ms, "
    "temperature, max_tokens, top_p, header.NAME";

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsUrl(std::string_view s) {
  return s.substr(0, 7) == "http://" || s.substr(0, 8) == "https://";
}

// Splits on commas; "\," is a literal comma and "\\" a literal backslash.
std::vector<std::string> SplitSpec(const std::string& spec) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < spec.size(); ++i) {
    char c = spec[i];
    if (c == '\\' && i + 1 < spec.size() && (spec[i + 1] == ',' || spec[i + 1] == '\\')) {
      parts.back().push_back(spec[++i]);
    } else if (c == ',') {
      parts.emplace_back();
    } else {
      parts.back().push_back(c);
    }
  }
  return parts;
}

Status BadValue(const std::string& key, const std::string& value, const std::string& expected) {
  return Status::InvalidArgument("endpoint spec key \"" + key + "\": expected " + expected +
                                 ", got \"" + value + "\"");
}

Result<int64_t> ParseInteger(const std::string& key, const std::string& value, int64_t min,
                             const std::string& expected) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (value.empty() || ec != std::errc() || p != value.data() + value.size() || v < min) {
    return BadValue(key, value, expected);
  }
  return v;
}

Result<double> ParseNumber(const std::string& key, const std::string& value, double min, double max,
                           bool min_inclusive, const std::string& expected) {
  double v = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (value.empty() || ec != std::errc() || p != value.data() + value.size() || !std::isfinite(v) ||
      v > max || v < min || (!min_inclusive && v == min)) {
    return BadValue(key, value, expected);
  }
  return v;
}

}  // namespace

Result<EndpointOptions> ParseEndpointSpec(const std::string& spec) {
  EndpointOptions o;
  std::set<std::string> seen;
  for (const std::string& raw : SplitSpec(spec)) {
    std::string part(Trim(raw));
    if (part.empty()) continue;
    std::string key, value;
    if (IsUrl(part)) {
      key = "url";
      value = part;
    } else {
      size_t eq = part.find('=');
      if (eq == std::string::npos) {
        return Status::InvalidArgument("endpoint spec: \"" + part +
                                       "\" is neither key=value nor a URL; keys: " + kSpecKeys);
      }
      key = std::string(Trim(std::string_view(part).substr(0, eq)));
      value = std::string(Trim(std::string_view(part).substr(eq + 1)));
    }
    if (!seen.insert(key).second) {
      return Status::InvalidArgument("endpoint spec: key \"" + key + "\" is given twice");
    }
    if (key == "name") {
      o.name = value;
    } else if (key == "url") {
      if (!IsUrl(value)) return BadValue(key, value, "an http:// or https:// URL");
      o.base_url = value;
    } else if (key == "model") {
      o.model = value;
    } else if (key == "key_env") {
      o.api_key_env = value;
    } else if (key == "key_header") {
      if (value.empty()) return BadValue(key, value, "a header name");
      o.api_key_header = value;
    } else if (key == "concurrency") {
      BF_ASSIGN_OR_RETURN(int64_t v, ParseInteger(key, value, 1, "an integer >= 1"));
      if (v > 100000) return BadValue(key, value, "an integer in [1, 100000]");
      o.max_concurrency = static_cast<int>(v);
    } else if (key == "rpm") {
      BF_ASSIGN_OR_RETURN(o.requests_per_minute,
                          ParseNumber(key, value, 0, 1e12, true, "a number >= 0 (0 = unlimited)"));
    } else if (key == "tpm") {
      BF_ASSIGN_OR_RETURN(o.tokens_per_minute,
                          ParseNumber(key, value, 0, 1e15, true, "a number >= 0 (0 = unlimited)"));
    } else if (key == "retries") {
      BF_ASSIGN_OR_RETURN(int64_t v, ParseInteger(key, value, 0, "an integer >= 0"));
      if (v > 1000) return BadValue(key, value, "an integer in [0, 1000]");
      o.max_retries = static_cast<int>(v);
    } else if (key == "backoff_ms") {
      BF_ASSIGN_OR_RETURN(o.initial_backoff_ms,
                          ParseInteger(key, value, 1, "a whole number of milliseconds >= 1"));
    } else if (key == "max_backoff_ms") {
      BF_ASSIGN_OR_RETURN(o.max_backoff_ms,
                          ParseInteger(key, value, 1, "a whole number of milliseconds >= 1"));
    } else if (key == "max_retry_after_ms") {
      BF_ASSIGN_OR_RETURN(o.max_retry_after_ms,
                          ParseInteger(key, value, 0, "a whole number of milliseconds >= 0"));
    } else if (key == "connect_timeout_ms") {
      BF_ASSIGN_OR_RETURN(o.connect_timeout_ms,
                          ParseInteger(key, value, 1, "a whole number of milliseconds >= 1"));
    } else if (key == "timeout_ms") {
      BF_ASSIGN_OR_RETURN(o.total_timeout_ms,
                          ParseInteger(key, value, 1, "a whole number of milliseconds >= 1"));
    } else if (key == "idle_timeout_ms") {
      BF_ASSIGN_OR_RETURN(o.idle_timeout_ms,
                          ParseInteger(key, value, 1, "a whole number of milliseconds >= 1"));
    } else if (key == "temperature") {
      BF_ASSIGN_OR_RETURN(o.temperature, ParseNumber(key, value, 0, 100, true, "a number >= 0"));
    } else if (key == "max_tokens") {
      BF_ASSIGN_OR_RETURN(int64_t v, ParseInteger(key, value, 1, "an integer >= 1"));
      if (v > 100000000) return BadValue(key, value, "an integer in [1, 100000000]");
      o.max_tokens = static_cast<int>(v);
    } else if (key == "top_p") {
      BF_ASSIGN_OR_RETURN(o.top_p, ParseNumber(key, value, 0, 1, false, "a number in (0, 1]"));
    } else if (key.rfind("header.", 0) == 0 && key.size() > 7) {
      o.extra_headers[key.substr(7)] = value;
    } else {
      return Status::InvalidArgument("endpoint spec: unknown key \"" + key +
                                     "\"; valid keys: " + kSpecKeys);
    }
  }
  if (o.base_url.empty()) {
    return Status::InvalidArgument(
        "endpoint spec: no url; give url=http://HOST:PORT/v1 or a bare URL");
  }
  return o;  // an empty name is left for the caller to fill (the CLI uses the role)
}

}  // namespace breakfix
