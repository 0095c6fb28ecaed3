// Training data shared by the fix half: chat examples for supervised fine-tuning and preference
// pairs for DPO/IPO. `breakfix curate` produces them (src/curate), `breakfix train` consumes them
// (src/train, inside the engine plugin). Plain types only, so both sides of the plugin boundary
// agree on them.
#ifndef BREAKFIX_PREFERENCE_H_
#define BREAKFIX_PREFERENCE_H_

#include <string>
#include <vector>

#include "breakfix/chat_model.h"

namespace breakfix {

// One supervised example: a conversation whose assistant turns are the targets (the loss covers
// assistant tokens only; system and user turns are context).
struct ChatExample {
  std::string id;
  std::vector<Message> messages;
};

// What a preference pair teaches.
inline constexpr char kPairKindSafety[] = "safety";             // safe reply over a harmful one
inline constexpr char kPairKindOverRefusal[] = "over_refusal";  // help over a needless refusal
inline constexpr char kPairKindImported[] = "imported";         // from an external dataset

// One preference: given the same prompt (a conversation ending with a user turn, optionally
// opened by a system turn), `chosen` is the better assistant reply and `rejected` the worse.
struct PreferencePair {
  std::string id;
  std::vector<Message> prompt;
  std::string chosen;
  std::string rejected;
  std::string kind = kPairKindSafety;
  std::string provenance_json;  // a JSON object: where the pair came from (run, conversation,
                                // turn, judge scores, fixer), "{}" when unknown
};

}  // namespace breakfix

#endif  // BREAKFIX_PREFERENCE_H_
