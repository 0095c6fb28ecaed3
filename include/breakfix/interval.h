// A confidence interval and the Wilson score interval for a proportion. In core, so that every
// stage can report a rate with its interval (the judge stage's validation as well as metrics).
#ifndef BREAKFIX_INTERVAL_H_
#define BREAKFIX_INTERVAL_H_

#include <cstdint>

namespace breakfix {

struct Interval {
  double lo = 0;
  double hi = 0;
};

// z for a two-sided 95% interval.
inline constexpr double kZ95 = 1.959963984540054;

// Wilson score interval for `successes` out of `n` trials. n == 0 gives [0, 1].
Interval WilsonInterval(int64_t successes, int64_t n, double z = kZ95);

}  // namespace breakfix

#endif  // BREAKFIX_INTERVAL_H_
