#include "report/format.h"

#include <cmath>
#include <cstdio>

namespace breakfix {

std::string FormatValue(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", v);
  return buf;
}

std::string FormatWithInterval(const MetricRow& row) {
  return FormatValue(row.value) + " [" + FormatValue(row.ci.lo) + ", " + FormatValue(row.ci.hi) +
         "]";
}

std::string MarkdownCell(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '|':
        out += "\\|";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '`':
        out += "\\`";
        break;
      case '*':
        out += "\\*";
        break;
      case '_':
        out += "\\_";
        break;
      case '[':
        out += "\\[";
        break;
      case ']':
        out += "\\]";
        break;
      case '\n':
        out += "<br>";
        break;
      case '\r':
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string CsvCell(const std::string& text) {
  std::string v = text;
  if (!v.empty() &&
      (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@' || v[0] == '\t' || v[0] == '\r')) {
    // A number like -1 is data, not a formula; keep it as is.
    char* end = nullptr;
    std::strtod(v.c_str(), &end);
    if (end == nullptr || *end != '\0') v = "'" + v;
  }
  bool quote = v.find_first_of(",\"\r\n") != std::string::npos;
  if (!quote) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

int BestTarget(const RunReport& report, const std::string& family) {
  int best = -1;
  double best_value = 0;
  int with_value = 0;
  bool all_equal = true;
  for (size_t i = 0; i < report.targets.size(); ++i) {
    const MetricRow* row = FindHeadline(report, family, report.targets[i]);
    if (row == nullptr || row->scorable == 0) continue;
    if (with_value > 0 && row->value != best_value) all_equal = false;
    ++with_value;
    if (best < 0 || row->value < best_value) {
      best = static_cast<int>(i);
      best_value = row->value;
    }
  }
  if (with_value < 2 || all_equal) return -1;
  return best;
}

std::string MetricLabel(const FamilyInfo& family) {
  return family.title.empty() ? family.name : family.title;
}

std::string RunStatusLine(const RunReport& report) {
  int64_t units = 0, pending = 0;
  for (const auto& [target, c] : report.counts) {
    units += c.units;
    pending += c.pending;
  }
  std::string s = RunStatusName(report.run.status);
  if (pending > 0) {
    s += " (" + std::to_string(pending) + " of " + std::to_string(units) +
         " units not judged yet; rerun the same eval command to finish them)";
  }
  return s;
}

}  // namespace breakfix
