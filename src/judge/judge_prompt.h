// Internal: the pieces of the LLM judge's prompt that BuildJudgeMessages (judge.h) assembles, the
// re-ask message, and the versions that go into the judge's Identity().
#ifndef BREAKFIX_JUDGE_JUDGE_PROMPT_H_
#define BREAKFIX_JUDGE_JUDGE_PROMPT_H_

#include <string>
#include <string_view>

#include "breakfix/judge.h"

namespace breakfix {

// Rewrites evaluated text (a message or the document) so it cannot forge the prompt's
// structure: every run of three or more '<' or '>' gets spaces inserted ("<<<" -> "<< <"), and a
// line whose first non-blank characters are "[user turn" or "[assistant turn" (any case) is
// prefixed with "> ". Everything else is kept byte for byte.
std::string NeutraliseEvaluatedText(std::string_view text);

// The conversation fence nonce: the first 16 hex digits of a SHA-256 over every field of the
// input (rubric, family, category, goal, document, each message's role and content). Identical
// inputs get identical prompts, and the evaluated text cannot predict the fence that wraps it.
std::string JudgeNonce(const JudgeInput& input);

// Number of assistant messages in the conversation: the turns the judge must score.
int CountAssistantTurns(const std::vector<Message>& conversation);

// The user message sent after a malformed answer: quotes `parse_error` and restates the format.
std::string BuildReaskMessage(const std::string& parse_error, Scale scale, int assistant_turns);

// First 12 hex digits of a SHA-256 over every fixed text of the judge prompt (system and user
// templates, format instructions, re-ask wording). Rubric texts are versioned separately
// (Rubric::version).
const std::string& JudgePromptVersion();

}  // namespace breakfix

#endif  // BREAKFIX_JUDGE_JUDGE_PROMPT_H_
