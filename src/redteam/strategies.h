// The strategy constructors MakeStrategy (strategy_factory.cc) registers; one file each.
#ifndef BREAKFIX_REDTEAM_STRATEGIES_H_
#define BREAKFIX_REDTEAM_STRATEGIES_H_

#include <memory>

#include "breakfix/redteam.h"

namespace breakfix::redteam {

std::unique_ptr<Strategy> NewCrescendo();
std::unique_ptr<Strategy> NewPair();
std::unique_ptr<Strategy> NewTap();
std::unique_ptr<Strategy> NewIndirectInjection();
std::unique_ptr<Strategy> NewManyShot();
std::unique_ptr<Strategy> NewDirect(bool jailbreak_wrapper);

}  // namespace breakfix::redteam

#endif  // BREAKFIX_REDTEAM_STRATEGIES_H_
