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

// One single-turn exchange at position `index` of an attack: `prompt` goes through the
// converters, alone in a new conversation, to the target, and the reply is scored. Fills
// turn->attacker, sent, reply, score and reason. The scorer is told the target was asked
// `score_prompt`, or what was sent when that is empty. Returns the conversation (the sent user
// message and the reply).
Result<std::vector<Message>> SendAndScore(AttackCalls& calls, const AttackContext& context,
                                          const std::string& prompt, int index, AttackTurn* turn,
                                          const std::string& score_prompt = "");

// Appends a scored single-turn exchange (the `target_turns`th reply the target gave) to a
// refining attack's result: the best-scoring exchange becomes the result's conversation. Returns
// true, with the outcome set, when the turn reached the success threshold.
bool AddRefinedTurn(const AttackContext& context, const AttackTurn& turn,
                    std::vector<Message> conversation, int target_turns, AttackResult* result);

// What a refining attacker (PAIR, TAP) is told about its last prompt.
std::string RatingFeedback(const AttackTurn& turn);

// The result of an attack made of one exchange.
AttackResult OneTurnResult(const AttackContext& context, const AttackTurn& turn,
                           std::vector<Message> conversation);

// The seed of the `n`th call of kind `stream` within an attack seeded with `seed`.
uint64_t SubSeed(uint64_t seed, uint64_t stream, uint64_t n);

}  // namespace breakfix::redteam

#endif  // BREAKFIX_REDTEAM_ATTACKER_H_
