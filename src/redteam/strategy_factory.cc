// The one place strategies are registered.
#include "redteam/strategies.h"

namespace breakfix {

const std::vector<std::string>& StrategyNames() {
  static const auto* names = new std::vector<std::string>{
      "crescendo", "pair", "tap", "many_shot", "direct", "direct_jailbreak", "indirect_injection"};
  return *names;
}

Result<std::unique_ptr<Strategy>> MakeStrategy(const std::string& name) {
  if (name == "crescendo") return redteam::NewCrescendo();
  if (name == "pair") return redteam::NewPair();
  if (name == "tap") return redteam::NewTap();
  if (name == "indirect_injection") return redteam::NewIndirectInjection();
  if (name == "many_shot") return redteam::NewManyShot();
  if (name == "direct") return redteam::NewDirect(false);
  if (name == "direct_jailbreak") return redteam::NewDirect(true);
  std::string known;
  for (const std::string& n : StrategyNames()) known += (known.empty() ? "" : ", ") + n;
  return Status::InvalidArgument("unknown strategy \"" + name + "\" (expected one of: " + known +
                                 ")");
}

}  // namespace breakfix
