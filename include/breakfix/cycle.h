// The break-fix cycle: measure -> curate -> train -> measure again, round after round.
//
// Round 0 measures each base model (the suite, and an over-refusal suite of benign prompts).
// Each later round curates preference pairs from the previous round's judged runs, post-trains
// that round's model on them (DPO by default), and measures the result with the same items,
// seeds and judges, so rounds compare item for item. One recipe (suites, judges, curation and
// training settings) is applied to every base model of the cycle, so their results stay
// comparable.
//
// Everything is kept in the result store: the runs, every step of every round (what it produced:
// run names, checkpoint path and SHA-256, pair counts, training summary) and each round's pairs.
// A killed cycle resumes where it stopped: finished steps are skipped, a measurement resumes its
// run, curation resumes from its cache and training from its last checkpoint.
#ifndef BREAKFIX_CYCLE_H_
#define BREAKFIX_CYCLE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "breakfix/campaign.h"
#include "breakfix/chat_model.h"
#include "breakfix/curate.h"
#include "breakfix/env.h"
#include "breakfix/html_report.h"
#include "breakfix/judge.h"
#include "breakfix/metrics.h"
#include "breakfix/status.h"
#include "breakfix/store.h"
#include "breakfix/train.h"

namespace breakfix {

struct CycleModel {
  std::string name;  // column and run-name prefix, e.g. "tiny"
  std::string path;  // a local model (Hugging Face directory or GGUF file)
};

struct CycleConfig {
  std::string name;     // the cycle's name; runs are "<name>/<model>/r<round>/<suite>"
  std::string out_dir;  // checkpoints, pair files and reports, per model and round
  int rounds = 1;       // fix rounds after the baseline (round 0 only measures)
  std::vector<CycleModel> models;

  // Measurement, identical in every round.
  std::string suite = "rai";          // built-in name or YAML file
  std::vector<std::string> families;  // empty = all
  int64_t limit_per_family = 0;       // 0 = every item
  int max_turns = 0;                  // 0 = the suite's
  uint64_t seed = 0;
  SamplingOptions target_sampling;  // greedy by default
  int max_in_flight = 256;
  std::string over_refusal_suite = "overrefusal";  // benign prompts; "" = none
  std::string over_refusal_judge = "refusal";      // judge spec for it

  // Roles. "self" is the round's own model (for the simulator: the model under test plays the
  // user too; for the fixer: the model answers again under the safety policy).
  std::string simulator = "self";
  std::string judge = "refusal";  // judge spec (see `breakfix eval --judge`)
  std::string fixer = "self";

  // A red-team campaign file (breakfix/campaign.h) run against every round's model after the
  // measurement; "" = none. Its `targets` are replaced by the round's model, its name by
  // "<cycle>/<model>/r<round>/redteam"; its findings join the round's curation, and the report
  // gains an attack-success-rate row.
  std::string redteam;

  // A judge validation file (breakfix judge validate --out); "" = none. The report then adds,
  // under each defect-rate row, the rate corrected for the judge's measured sensitivity and
  // specificity (Rogan-Gladen), with an interval that includes the validation's uncertainty.
  std::string judge_validation;

  CurateOptions curate;  // cache_path is set per round
  TrainOptions train;    // base_model and output_dir are set per round; method DPO by default

  CycleConfig() { train.method = TrainMethod::kDpo; }
};

// Parses a cycle YAML file (format in docs/cycle.md). Relative paths are resolved against the
// file's folder. Errors name file:line:column and what was expected.
Result<CycleConfig> ParseCycleConfig(const std::string& yaml_text, const std::string& file);
Result<CycleConfig> LoadCycleConfig(const std::string& path, Env* env);

// What the cycle needs from outside the library: local models and judges (the CLI builds them
// through the engine plugin), and the trainer (which lives in the engine plugin).
class CycleServices {
 public:
  virtual ~CycleServices() = default;
  // A ChatModel running the local model at `path`, named `name`; loaded once and shared.
  virtual Result<ChatModel*> LocalModel(const std::string& path, const std::string& name) = 0;
  // A model from any other spec (an endpoint, a configured name).
  virtual Result<ChatModel*> Model(const std::string& spec) = 0;
  virtual Result<Judge*> JudgeFor(const std::string& spec) = 0;
  virtual Result<TrainResult> Train(const TrainOptions& options, const TrainData& data,
                                    const TrainProgressFn& progress,
                                    const std::atomic<bool>* stop) = 0;
  // The local model at `path` will not be used again: its memory may be released.
  virtual void Release(const std::string& path) {}
  // A model of a red-team campaign (attacker, scorer, converter model): `models_yaml` is the
  // campaign's `models:` table (may be empty), `file` the campaign file, for names and errors.
  virtual Result<ChatModel*> CampaignModel(const std::string& spec, const std::string& models_yaml,
                                           const std::string& file) {
    return Model(spec);
  }
};

// One line of progress: "[tiny r1] measure rai: 120/260 ..." and so on.
using CycleProgressFn = std::function<void(const std::string& line)>;

struct CycleRoundResult {
  std::string model;
  int round = 0;
  std::string model_path;        // what was measured
  std::string run;               // the suite's run
  std::string over_refusal_run;  // "" when none
  int64_t pairs = 0;             // curated from this round (for the next), -1 = not curated
  std::string trained_model;     // the next round's model ("" when none)
};

struct CycleResult {
  std::vector<CycleRoundResult> rounds;  // by model, then round
  bool interrupted = false;
};

// Runs (or resumes) the cycle. `stop` (may be null) stops after the step in hand.
Result<CycleResult> RunCycle(const CycleConfig& config, Store* store, CycleServices* services,
                             Env* env, const CycleProgressFn& progress,
                             const std::atomic<bool>* stop);

// --- The round-over-round report ---

struct CycleCell {
  bool present = false;
  bool is_mean = false;  // mean ungroundedness instead of a rate
  int64_t n = 0;         // scored samples
  double value = 0;      // rate in [0, 1] or mean
  Interval interval;     // 95%
  // Against round 0, paired item for item (rates: Newcombe interval of the difference and the
  // exact McNemar p; means: bootstrap interval of the mean difference).
  bool has_delta = false;
  double delta = 0;
  Interval delta_interval;
  double p_value = 1;
};

struct CycleReportRow {
  std::string metric;  // family title, or "Over-refusal (refusal rate on benign prompts)"
  bool over_refusal = false;
  std::vector<CycleCell> cells;  // one per round
};

struct CycleModelReport {
  std::string model;
  std::vector<std::string> round_labels;  // "r0", "r1", ...
  std::vector<std::string> runs;          // the suite's run per round
  std::vector<CycleReportRow> rows;
  std::vector<int64_t> pairs;      // pairs curated after each round (-1 = none)
  std::vector<std::string> notes;  // training summaries, missing rounds
};

struct CycleReport {
  std::string cycle;
  std::vector<CycleModelReport> models;
};

Result<CycleReport> BuildCycleReport(Store* store, const CycleConfig& config, uint64_t seed);
std::string RenderCycleMarkdown(const CycleReport& report);
std::string RenderCycleJson(const CycleReport& report);

// The self-contained HTML page of a cycle (breakfix/html_report.h): each model's defect rates and
// over-refusal across rounds as trend lines with intervals, the last round's results tables and
// charts, and every round's conversations in the browser (its run filter tells rounds apart).
std::vector<HtmlTrendChart> CycleTrendCharts(const CycleReport& report);
Status WriteCycleHtml(const CycleReport& report, Store* store, const std::string& path);

}  // namespace breakfix

#endif  // BREAKFIX_CYCLE_H_
