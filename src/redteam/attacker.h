// What the strategies share: the attacker's persona text, asking the attacker for a JSON answer
// (and noticing when it will not play), and sending a conversation to the target.
#ifndef BREAKFIX_REDTEAM_ATTACKER_H_
#define BREAKFIX_REDTEAM_ATTACKER_H_

#include <optional>
#include <string>
#include <vector>

#include "breakfix/redteam.h"

namespace breakfix::redteam {

// One paragraph describing how the persona writes.
const char* PersonaStyle(AttackerPersona persona);

// The attacker's reply to `request`, read as a JSON object holding the string field `field`.
// When the reply has no such object, the attacker is reminded once. Returns the field's value,
// or nullopt with *why set when the attacker refused or produced nothing usable twice.
Result<std::optional<std::string>> AskAttacker(AttackCalls& calls, ChatRequest request,
                                               const std::string& field, std::string* why);

// The target's reply to `conversation` (which ends with a user turn).
Result<std::string> AskTarget(AttackCalls& calls, const std::vector<Message>& conversation,
                              const AttackSettings& settings, uint64_t seed);

// The seed of the `n`th call of kind `stream` within an attack seeded with `seed`.
uint64_t SubSeed(uint64_t seed, uint64_t stream, uint64_t n);

}  // namespace breakfix::redteam

#endif  // BREAKFIX_REDTEAM_ATTACKER_H_
