// Supervised data for training a chat model that plays every role of a break-fix cycle: the
// target, the fixer (the same model under the written safety policy) and the user simulator.
// The offline demo trains its model from these two formats (demo/data/README.md); anyone who
// wants a model of their own to play those roles can write files the same way.
#ifndef BREAKFIX_CYCLE_TRAINING_DATA_H_
#define BREAKFIX_CYCLE_TRAINING_DATA_H_

#include <string>
#include <vector>

#include "breakfix/preference.h"
#include "breakfix/simulate.h"
#include "breakfix/status.h"

namespace breakfix {

// Dialogues, one per line: {"id"?, "messages": [{"role", "content"}...], "policy"?: bool, ...}.
// Messages alternate user/assistant from a user turn and end with an assistant turn (no system
// message: the file holds what the bare model should do). `"policy": true` marks a dialogue the
// model should learn to give under the safety policy: it gets `policy` as its system message, so
// the model learns how to answer when the fixer's prompt is in front of it. Other keys (tags)
// are ignored. Errors name file:line and the field; an empty file is an error.
Result<std::vector<ChatExample>> ReadPolicyDialogues(const std::string& path,
                                                     const std::string& policy);

// User-simulator examples, one per line: {"id"?, "persona", "goal", "category", "family"?,
// "turns": [{"role", "content"}...], "next"}. `turns` is the conversation so far as stored (user
// first, alternating, ending with an assistant turn; empty before the opening message) and
// `next` the user's next message, or exactly options.stop_marker to end. Each becomes the request
// BuildSimulatorRequest() sends the simulator, with `next` as the reply, so a model trained on
// them answers that prompt in the eval. Errors name file:line and the field.
Result<std::vector<ChatExample>> ReadSimulatorExamples(const std::string& path,
                                                       const SimulatorOptions& options);

}  // namespace breakfix

#endif  // BREAKFIX_CYCLE_TRAINING_DATA_H_
