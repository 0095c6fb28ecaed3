// Evaluation runs: suite -> simulated conversations on every target -> judge -> store.
//
// A run is a set of units of work. Simulating item i on target t is one unit (a conversation);
// annotating that conversation with judge j is another (an annotation). Each unit is keyed by a
// SHA-256 of its inputs: the rendered item, the model identities and sampling, the seed and the
// prompt/rubric versions. Re-running the same command finds finished units in the store and never
// repeats or duplicates them, whether the earlier run ended normally, by Ctrl-C or by kill -9.
// Conversations are checkpointed turn by turn, so an interrupted one resumes at its next turn.
#ifndef BREAKFIX_EVAL_H_
#define BREAKFIX_EVAL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "breakfix/chat_model.h"
#include "breakfix/env.h"
#include "breakfix/judge.h"
#include "breakfix/manifest.h"
#include "breakfix/simulate.h"
#include "breakfix/status.h"
#include "breakfix/store.h"
#include "breakfix/suite.h"

namespace breakfix {

// The models of a run. Not owned; they must outlive RunEval.
struct EvalModels {
  std::vector<ChatModel*> targets;  // the models under test, in report column order
  ChatModel* simulator = nullptr;   // plays the user; required when a multi-turn item is run
  Judge* judge = nullptr;           // scores conversations
};

struct EvalOptions {
  std::string run_name;                // "" = "<suite>-<first 10 hex of the config hash>"
  uint64_t seed = 0;                   // sent with every request (mixed with the item id)
  std::vector<std::string> families;   // run only these families; empty = all
  int64_t limit_per_family = 0;        // first N items of each family; 0 = all
  int max_turns = 0;                   // overrides every multi-turn family's max_turns; 0 = keep
  int max_in_flight = 256;             // conversations and annotations active at once
  SamplingOptions target_sampling;     // sampling for targets: greedy, 512 tokens by default
  SimulatorOptions simulator;          // simulator prompt options and sampling
  int64_t progress_interval_ms = 500;  // how often the progress callback is called
  int64_t drain_timeout_ms = 30000;    // after a stop request, wait this long for in-flight
                                       // calls to finish (and be stored) before cancelling
};

// Live counters, passed to the progress callback.
struct EvalProgress {
  int64_t total = 0;       // units (item x target) in the run
  int64_t done = 0;        // annotated (this session or earlier)
  int64_t resumed = 0;     // found already finished in the store
  int64_t failed = 0;      // units that failed this session (model errors)
  int64_t in_flight = 0;   // units active now
  int64_t unscorable = 0;  // annotations the judge could not score
  TokenUsage tokens;       // tokens spent this session, all roles
  double elapsed_s = 0;
  bool finished = false;  // the last call
};

using ProgressCallback = std::function<void(const EvalProgress&)>;

struct EvalResult {
  RunRecord run;
  EvalProgress progress;
  Status first_error;  // the first model error seen (OK when none)
};

// Canonical configuration of a run (suite, families, models, judge, seed, versions), as JSON
// text with no secrets; its SHA-256 names the run. Exposed so `breakfix eval --dry-run` and tests
// can show it.
std::string RunConfigJson(const Suite& suite, const EvalModels& models, const EvalOptions& options);

// The reproducibility manifest of a run (breakfix/manifest.h) as far as the inputs tell: the
// breakfix version, suite and rubric versions, every model role with its identity, endpoint and
// sampling, and the seed; `run` supplies the id, name, configuration hash and creation time.
// Sessions are left empty and fingerprint counts at zero: RunEval adds them as the run plays, and
// writes the manifest to the store when the run starts, as fingerprints arrive, and at the end.
RunManifest BuildRunManifest(const Suite& suite, const EvalModels& models,
                             const EvalOptions& options, const RunRecord& run);

// Runs (or resumes) the evaluation to completion. Returns an error for setup problems (a run with
// the same name but another configuration, a missing simulator) and for fatal model errors
// (authentication, unknown model), after storing everything finished so far. Units whose model
// calls failed are left unfinished (a later run retries them); the result's progress counts
// them. `stop` (may be null) asks the run to finish in-flight calls and return early; the run is
// then marked interrupted.
Result<EvalResult> RunEval(const Suite& suite, const EvalModels& models, Store* store,
                           const EvalOptions& options, Env* env, const ProgressCallback& progress,
                           const std::atomic<bool>* stop);

// Unit keys, exposed for tests and tools. ItemKey covers every rendered field of an item (it keys
// the store's items table); ConversationKey covers what changes the conversation.
std::string ItemKey(const SeedItem& item);
std::string ConversationKey(const SeedItem& item, const Family& family, int max_turns,
                            const ChatModel& target, const ChatModel* simulator,
                            const EvalOptions& options);
std::string AnnotationKey(const std::string& conversation_key, const Judge& judge,
                          const std::string& rubric_id);

}  // namespace breakfix

#endif  // BREAKFIX_EVAL_H_
