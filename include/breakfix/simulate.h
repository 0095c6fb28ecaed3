// Simulation: the user simulator and the turn-by-turn plan of a conversation.
//
// A conversation is one seed item played against one target. Single-turn items send the rendered
// first user message and take one answer. Multi-turn items let the simulator model, which plays
// the user (persona, goal, category), write each next user turn from the conversation so far,
// until max_turns assistant turns or until it answers with the stop marker.
//
// Everything here is a pure function of its inputs, so a conversation interrupted at any turn
// resumes from its stored turns with the same next step.
#ifndef BREAKFIX_SIMULATE_H_
#define BREAKFIX_SIMULATE_H_

#include <string>
#include <vector>

#include "breakfix/chat_model.h"
#include "breakfix/suite.h"

namespace breakfix {

struct SimulatorOptions {
  std::string stop_marker = "[[END-OF-CONVERSATION]]";  // the simulator's way to end early
  SamplingOptions sampling = DefaultSampling();         // simulator sampling: greedy, 400 tokens

  static SamplingOptions DefaultSampling() {
    SamplingOptions s;
    s.max_tokens = 400;
    return s;
  }
};

// Version of the simulator prompt template (first 12 hex of its SHA-256); part of unit keys.
const std::string& SimulatorPromptVersion();

// The request that asks the simulator for the next user turn. `turns` alternate user/assistant
// starting with user (as stored); roles are mirrored for the simulator (the target's answers
// become its "user" messages, its earlier turns its own "assistant" messages).
ChatRequest BuildSimulatorRequest(const SeedItem& item, const std::vector<Message>& turns,
                                  const SimulatorOptions& options);

// What the simulator's answer means.
struct SimulatorTurn {
  bool stop = false;  // the simulator ended the conversation; `text` is empty
  std::string text;   // the next user message (marker, wrapping quotes and "User:" removed)
};
SimulatorTurn InterpretSimulatorAnswer(const std::string& answer, const SimulatorOptions& options);

// The request sent to the target: the item's system prompt (if any) then the turns so far.
ChatRequest BuildTargetRequest(const SeedItem& item, const std::vector<Message>& turns,
                               const SamplingOptions& sampling);

// The next step of a conversation given what is stored.
enum class StepKind {
  kUseFirstUser,  // append the item's rendered first user message (no model call)
  kAskSimulator,  // ask the simulator for the next user turn
  kAskTarget,     // the last turn is the user's: ask the target
  kDone,          // finished; see stop_reason
};
struct Step {
  StepKind kind = StepKind::kDone;
  std::string stop_reason;  // with kDone: "single_turn", "max_turns"
};
// `max_turns` is the family's limit on assistant turns (multi-turn).
Step NextStep(const SeedItem& item, TurnMode mode, int max_turns,
              const std::vector<Message>& turns);

// Counts assistant messages.
int AssistantTurns(const std::vector<Message>& turns);

}  // namespace breakfix

#endif  // BREAKFIX_SIMULATE_H_
