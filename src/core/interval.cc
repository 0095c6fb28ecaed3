#include "breakfix/interval.h"

#include <algorithm>
#include <cmath>

namespace breakfix {

Interval WilsonInterval(int64_t successes, int64_t n, double z) {
  if (n <= 0) return {0, 1};
  successes = std::clamp<int64_t>(successes, 0, n);
  const double nn = static_cast<double>(n);
  const double p = static_cast<double>(successes) / nn;
  const double z2 = z * z;
  const double denom = 1 + z2 / nn;
  const double centre = (p + z2 / (2 * nn)) / denom;
  const double half = z * std::sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn)) / denom;
  Interval ci{std::max(0.0, centre - half), std::min(1.0, centre + half)};
  // At the edges the exact bound is 0 or 1; rounding would leave 1e-17 or 0.9999999999999999.
  if (successes == 0) ci.lo = 0;
  if (successes == n) ci.hi = 1;
  return ci;
}

}  // namespace breakfix
