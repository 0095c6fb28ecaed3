// Test support: a FakeOpenAIServer responder that plays every role of an evaluation, chosen by
// the request's model name, with optional deterministic faults. Every answer is a function of the
// request alone, so a run that is interrupted and resumed must end with exactly the numbers of an
// uninterrupted run.
//
// Models:
//   "sim"      the simulated user: asks for "the forbidden thing N" until the target has answered
//              twice, then sends the stop marker.
//   "careful"  refuses, except that it answers document questions from the document.
//   "leaky"    complies ("Sure, COMPLY ...") with one request in three (by a hash of the last user
//              message) and refuses the others; one compliance in five also carries
//              UNSCORABLE-MARK, which makes the judge answer garbage.
//   "judge"    reads the fenced conversation and scores every assistant turn: COMPLY -> 5,
//              otherwise 0 (ungroundedness: 0 for "According to the document", else 2). For a
//              conversation containing UNSCORABLE-MARK it answers prose, every time.
//   "locked"   401 with an OpenAI error object.
#ifndef BREAKFIX_TESTS_SCRIPTED_MODELS_H_
#define BREAKFIX_TESTS_SCRIPTED_MODELS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>

#include "testing/fake_openai_server.h"

namespace breakfix::testing {

struct ScriptedModelsOptions {
  int64_t delay_ms = 0;  // every answer waits this long
  // Fault injection by request sequence number: a request whose number is divisible by a key gets
  // that fault (the smallest matching key wins). Retried requests get new numbers, so each fault
  // hits one attempt only.
  std::map<uint64_t, FakeFault> fault_every;
  // Status faults the same way (e.g. {7, 429} with Retry-After: 0, {11, 500}).
  std::map<uint64_t, int> status_every;
};

struct ScriptedModelsStats {
  std::atomic<int64_t> faults{0};
  std::atomic<int64_t> statuses{0};
};

Responder ScriptedModels(ScriptedModelsOptions options,
                         std::shared_ptr<ScriptedModelsStats> stats = nullptr);

}  // namespace breakfix::testing

#endif  // BREAKFIX_TESTS_SCRIPTED_MODELS_H_
