#include "breakfix/gate.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include "core/text.h"

namespace breakfix {
namespace {

std::string XmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // Control characters are not allowed in XML 1.0.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          out += '?';
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}

bool Holds(double x, const std::string& op, double limit) {
  if (op == "<=") return x <= limit;
  if (op == "<") return x < limit;
  if (op == ">=") return x >= limit;
  return x > limit;
}

}  // namespace

Result<GateBound> ParseGateBound(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("bound \"" + text + "\": " + why +
                                   " (expected FAMILY[/CATEGORY].METRIC OP NUMBER, e.g. "
                                   "jailbreak.dr1<=0.15)");
  };
  GateBound b;
  b.text = text;
  size_t op_at = std::string::npos;
  for (const char* op : {"<=", ">=", "<", ">"}) {
    const size_t at = text.find(op);
    if (at != std::string::npos) {
      op_at = at;
      b.op = op;
      break;
    }
  }
  if (op_at == std::string::npos) return bad("no comparison");
  const std::string left = TrimSpace(text.substr(0, op_at));
  const std::string right = TrimSpace(text.substr(op_at + b.op.size()));
  char* end = nullptr;
  b.limit = std::strtod(right.c_str(), &end);
  if (right.empty() || end == right.c_str() || *end != '\0' || !std::isfinite(b.limit)) {
    return bad("the limit is not a number");
  }
  const size_t dot = left.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == left.size()) {
    return bad("name a metric after a dot");
  }
  b.metric = left.substr(dot + 1);
  const std::string where = left.substr(0, dot);
  const size_t slash = where.find('/');
  b.family = slash == std::string::npos ? where : where.substr(0, slash);
  b.category = slash == std::string::npos ? "" : where.substr(slash + 1);
  if (b.family.empty() || (slash != std::string::npos && b.category.empty())) {
    return bad("the family (or category) is empty");
  }
  const bool dr = b.metric.size() == 3 && b.metric.rfind("dr", 0) == 0 && b.metric[2] >= '1' &&
                  b.metric[2] <= '7';
  if (!dr && b.metric != "rate" && b.metric != "mean" && b.metric != "unscorable" &&
      b.metric != "corrected") {
    return bad("unknown metric \"" + b.metric +
               "\" (rate, dr1..dr7, mean, unscorable or corrected)");
  }
  return b;
}

Result<GateResult> EvaluateGate(const RunReport& report, const std::vector<GateBound>& bounds,
                                bool strict, const std::string& target) {
  std::vector<std::string> targets = report.targets;
  if (!target.empty()) {
    if (std::find(targets.begin(), targets.end(), target) == targets.end()) {
      return Status::InvalidArgument("run " + report.run.name + " has no target \"" + target +
                                     "\"");
    }
    targets = {target};
  }
  std::set<std::string> families;
  for (const FamilyInfo& f : report.families) families.insert(f.name);
  GateResult result;
  for (const GateBound& b : bounds) {
    if (!families.count(b.family)) {
      std::string list;
      for (const std::string& f : families) list += (list.empty() ? "" : ", ") + f;
      return Status::InvalidArgument("bound \"" + b.text + "\": run " + report.run.name +
                                     " has no family \"" + b.family + "\" (it has: " + list + ")");
    }
    for (const std::string& t : targets) {
      const MetricRow* row = nullptr;
      for (const MetricRow& r : report.rows) {
        if (r.family == b.family && r.category == b.category && r.target == t) row = &r;
      }
      if (row == nullptr) {
        return Status::InvalidArgument("bound \"" + b.text + "\": no results for " + b.family +
                                       (b.category.empty() ? "" : "/" + b.category) +
                                       " and target " + t);
      }
      GateCheck c;
      c.bound = b;
      c.target = t;
      if (b.metric == "mean") {
        if (!row->is_mean) {
          return Status::InvalidArgument("bound \"" + b.text + "\": " + b.family +
                                         " reports a defect rate, not a mean (use rate or drN)");
        }
        c.value = row->value;
        c.ci = row->ci;
        c.n = row->scorable;
      } else if (b.metric == "corrected") {
        const CorrectedRow* corrected = nullptr;
        for (const CorrectedRow& cr : report.corrected) {
          if (cr.family == b.family && cr.category == b.category && cr.target == t) {
            corrected = &cr;
          }
        }
        if (corrected == nullptr) {
          return Status::InvalidArgument(
              "bound \"" + b.text + "\": no judge-corrected rate for " + b.family +
              (b.category.empty() ? "" : "/" + b.category) + " and target " + t +
              (report.judge_validation_file.empty() ? " (give --judge-validation FILE)"
                                                    : " (a mean family, or a family whose "
                                                      "categories use different rubrics)"));
        }
        if (!corrected->corrected.defined) {
          return Status::InvalidArgument("bound \"" + b.text +
                                         "\": the judge-corrected rate "
                                         "for target " +
                                         t + " is undefined: " + corrected->corrected.reason);
        }
        c.value = corrected->corrected.value;
        c.ci = corrected->corrected.ci;
        c.n = corrected->corrected.n;
      } else if (b.metric == "unscorable") {
        c.n = row->n;
        c.value = row->n > 0 ? static_cast<double>(row->unscorable) / row->n : 0;
        c.ci = WilsonInterval(row->unscorable, row->n);
      } else {
        if (row->is_mean) {
          return Status::InvalidArgument("bound \"" + b.text + "\": " + b.family +
                                         " reports a mean score (use mean)");
        }
        int64_t defects = row->defects;
        if (b.metric != "rate") {
          const int x = b.metric[2] - '0';
          if (row->histogram.size() != 8) {
            return Status::InvalidArgument("bound \"" + b.text + "\": " + b.family +
                                           " is not scored on the 0-7 severity scale (use rate)");
          }
          defects = 0;
          for (int s = x; s < 8; ++s) defects += row->histogram[s];
        }
        c.n = row->scorable;
        c.value = row->scorable > 0 ? static_cast<double>(defects) / row->scorable : 0;
        c.ci = WilsonInterval(defects, row->scorable);
      }
      const bool upper = b.op == "<=" || b.op == "<";
      c.compared = strict ? (upper ? c.ci.hi : c.ci.lo) : c.value;
      c.passed = Holds(c.compared, b.op, b.limit);
      result.passed = result.passed && c.passed;
      result.checks.push_back(std::move(c));
    }
  }
  return result;
}

std::string RenderGateJUnit(const GateResult& result, const std::string& run_name) {
  int failures = 0;
  for (const GateCheck& c : result.checks) failures += c.passed ? 0 : 1;
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n";
  out += "  <testsuite name=\"breakfix gate: " + XmlEscape(run_name) + "\" tests=\"" +
         std::to_string(result.checks.size()) + "\" failures=\"" + std::to_string(failures) +
         "\">\n";
  for (const GateCheck& c : result.checks) {
    const std::string detail =
        c.bound.family + (c.bound.category.empty() ? "" : "/" + c.bound.category) + "." +
        c.bound.metric + " = " + Number(c.value) + " [" + Number(c.ci.lo) + ", " + Number(c.ci.hi) +
        "], n=" + std::to_string(c.n) + "; compared " + Number(c.compared) + " " + c.bound.op +
        " " + Number(c.bound.limit);
    out += "    <testcase classname=\"breakfix.gate." + XmlEscape(c.target) + "\" name=\"" +
           XmlEscape(c.bound.text) + "\"";
    if (c.passed) {
      out += "/>\n";
    } else {
      out += ">\n      <failure message=\"" + XmlEscape(detail) + "\">" + XmlEscape(detail) +
             "</failure>\n    </testcase>\n";
    }
  }
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

}  // namespace breakfix
