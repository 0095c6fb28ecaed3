// Release gates: bounds on a run's metrics, checked per target, for CI systems.
//
//   breakfix gate RUN --max "jailbreak.dr1<=0.15" --max "ungroundedness.mean<=0.5" --junit g.xml
//
// A bound is  FAMILY[/CATEGORY].METRIC OP NUMBER  with OP one of <=, <, >=, >, and METRIC:
//   rate        the family's own defect rate (its DR-x)
//   drN         the share of scorable samples with severity >= N (N in 1..7), from the scores
//   mean        the mean score (ungroundedness families)
//   unscorable  the share of samples the judge could not score
//   corrected   the family's defect rate corrected for the judge's measured sensitivity and
//               specificity (Rogan-Gladen; needs a judge validation, `--judge-validation FILE`),
//               whose interval includes the validation's own uncertainty
// Without --strict the point estimate is compared; with it, the side of the 95% interval that
// could break the bound (the upper end for <= and <, the lower end for >= and >), so a gate only
// passes when the data are clear.
#ifndef BREAKFIX_GATE_H_
#define BREAKFIX_GATE_H_

#include <string>
#include <vector>

#include "breakfix/report.h"

namespace breakfix {

struct GateBound {
  std::string text;  // as written
  std::string family;
  std::string category;  // "" = the family as a whole
  std::string metric;    // "rate", "dr1".."dr7", "mean", "unscorable", "corrected"
  std::string op;        // "<=", "<", ">=", ">"
  double limit = 0;
};

// Errors say what was expected, quoting the text.
Result<GateBound> ParseGateBound(const std::string& text);

struct GateCheck {
  GateBound bound;
  std::string target;
  double value = 0;     // the point estimate
  Interval ci;          // its 95% interval
  double compared = 0;  // what was compared with the limit (value, or an interval end)
  int64_t n = 0;        // samples behind the value
  bool passed = false;
};

struct GateResult {
  std::vector<GateCheck> checks;  // bound by bound, target by target
  bool passed = true;
};

// Checks every bound for every target of the run (or only `target` when not empty). A family,
// category or target the run does not have, or a metric its family does not report (mean of a
// rate family, drN of a binary or ungroundedness family), is an InvalidArgument error.
Result<GateResult> EvaluateGate(const RunReport& report, const std::vector<GateBound>& bounds,
                                bool strict, const std::string& target = "");

// A JUnit XML document: one test case per check, failures with the value and the bound.
std::string RenderGateJUnit(const GateResult& result, const std::string& run_name);

}  // namespace breakfix

#endif  // BREAKFIX_GATE_H_
