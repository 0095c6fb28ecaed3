// Red-team campaigns: objectives x targets x strategies x converter chains x attacker personas,
// from a YAML file, every attack resumable call by call and every finding replayable.
//
//   name: rt1                          # required; part of every attack's key
//   seed: 1
//   concurrency: 4                     # attacks in flight
//   objectives:                        # any mix; ids must not repeat
//     - {csv: data/jbb-behaviors/harmful-behaviors.csv, limit: 10, categories: [Malware/Hacking]}
//     - {suite: rai, limit: 5}
//     - {builtin: indirect_injection}
//   strategies: [crescendo, pair, tap, many_shot, direct, direct_jailbreak, indirect_injection]
//   converters: [[], [base64], ["translate:French", leetspeak]]   # chains; [] = none
//   personas: [low_skilled, intermediate]     # for attacker-driven strategies
//   targets: [my-model, "local:models/tiny"]  # model specs (or names from `models:`)
//   attacker: attacker-model                  # crescendo, pair, tap
//   scorer: scorer-model                      # rates replies 1..10
//   converter_model: rewriter                 # for rephrase/translate; default: the attacker
//   models: {...}                             # as in eval configs
//   settings: {success_threshold: 8, max_turns: 5, max_backtracks: 5, width: 4, branching: 2,
//              shots: 16, max_tokens: 512, target_temperature: 0}
//
// indirect_injection pairs only with the built-in injection objectives, and they only with it;
// personas multiply only the attacker-driven strategies. Relative paths resolve against the file.
#ifndef BREAKFIX_CAMPAIGN_H_
#define BREAKFIX_CAMPAIGN_H_

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "breakfix/html_report.h"
#include "breakfix/interval.h"
#include "breakfix/metrics.h"
#include "breakfix/redteam.h"
#include "breakfix/store.h"

namespace breakfix {

struct ObjectiveSource {
  std::string csv;                      // a behaviour CSV (ReadObjectivesCsv)
  std::string suite;                    // a suite name or file (ObjectivesFromSuite)
  std::string builtin;                  // "indirect_injection"
  int64_t limit = 0;                    // first N after the category filter; 0 = all
  std::vector<std::string> categories;  // keep only these; empty = all
  std::string where;                    // file:line:column, for messages
};

struct CampaignConfig {
  std::string name;
  std::string file;  // where it came from, for messages
  uint64_t seed = 0;
  int concurrency = 4;
  std::vector<ObjectiveSource> objectives;
  std::vector<std::string> strategies;
  std::vector<std::vector<std::string>> converters = {{}};
  std::vector<AttackerPersona> personas = {AttackerPersona::kIntermediate};
  std::vector<std::string> targets;
  std::string attacker;
  std::string scorer;
  std::string converter_model;  // "" = the attacker
  AttackSettings settings;
  std::string models_yaml;  // the `models:` node as YAML text, for the CLI to resolve names
};

// Parses a campaign file. Unknown keys, unknown strategies, converters or personas, and values
// of the wrong type are InvalidArgument errors naming file:line:column.
Result<CampaignConfig> ParseCampaignConfig(const std::string& yaml_text, const std::string& file);

// Every objective of the config's sources, in order; repeated ids are an error.
Result<std::vector<Objective>> LoadCampaignObjectives(const CampaignConfig& config);

// One cell of the grid.
struct PlannedAttack {
  int64_t position = 0;
  Objective objective;
  std::string strategy;
  size_t converter_chain = 0;  // index into config.converters
  std::string target;          // the spec as written
  AttackerPersona persona = AttackerPersona::kIntermediate;
  bool uses_persona = false;
};
std::vector<PlannedAttack> PlanCampaign(const CampaignConfig& config,
                                        const std::vector<Objective>& objectives);

// Models for a campaign: the CLI builds them from specs (endpoints or local models).
class CampaignModels {
 public:
  virtual ~CampaignModels() = default;
  virtual Result<ChatModel*> Model(const std::string& spec) = 0;
};

struct CampaignProgress {
  int64_t total = 0;
  int64_t done = 0;     // finished now or earlier
  int64_t resumed = 0;  // of those, found finished in the store
  int64_t succeeded = 0;
  int64_t failed = 0;          // errors (retried by the next run)
  int64_t calls_replayed = 0;  // model calls answered from the journal
  int64_t calls_made = 0;
};
using CampaignProgressFn = std::function<void(const CampaignProgress&)>;

struct CampaignResult {
  CampaignProgress progress;
  bool interrupted = false;
  std::vector<std::string> errors;  // one line per failed attack
};

// Runs (or resumes) every attack of the campaign, `concurrency` at a time. Finished attacks are
// skipped; an unfinished one reruns with its journal, so no recorded call is repeated.
Result<CampaignResult> RunCampaign(const CampaignConfig& config, Store* store,
                                   CampaignModels* models, const CampaignProgressFn& progress,
                                   const std::atomic<bool>* stop);

// --- the report ---

struct AsrCell {
  std::string key;      // the strategy, converter chain, category, target or persona
  int64_t attacks = 0;  // attacks counted (attacker refusals and drift excluded)
  int64_t succeeded = 0;
  double rate = 0;
  Interval ci;  // Wilson 95%
  int64_t attacker_refused = 0;
  int64_t attacker_off_topic = 0;
  double mean_turns_to_success = 0;  // over successes
  double mean_backtracks = 0;
};

struct CampaignReport {
  std::string campaign;
  int64_t attacks = 0;
  int64_t planned = 0;
  std::map<std::string, std::vector<AsrCell>> by;  // "strategy", "converters", "category",
                                                   // "target", "persona"
  std::map<std::string, TokenUsage> tokens_by_role;
  // direct_jailbreak against direct on the same objective, target and converters.
  bool has_paired_jailbreak = false;
  PairedRateComparison jailbreak_vs_direct;
};

Result<CampaignReport> BuildCampaignReport(const CampaignConfig& config, Store* store);
std::string RenderCampaignMarkdown(const CampaignReport& report);
std::string RenderCampaignJson(const CampaignReport& report);

// The campaign's self-contained HTML page (breakfix/html_report.h): attack success by strategy,
// target, converter chain, category and persona as bars with Wilson intervals, and every attack's
// transcript (each sent turn, reply and rating; backtracked and pruned turns marked) in the
// browser.
std::vector<HtmlRateChart> CampaignRateCharts(const CampaignReport& report);
Status ForEachCampaignAttack(Store* store, const std::string& campaign,
                             const std::function<Status(const HtmlConversation&)>& emit);
Status WriteCampaignHtml(const CampaignReport& report, Store* store, const std::string& path);

// A finding: one successful attack, everything needed to replay it (JSONL, one per line).
Result<std::vector<std::string>> CampaignFindingsJsonl(const std::string& campaign, Store* store);

// Replays a stored attack against `target`: sends the target the same user turns in the same
// order (what it saw, converters applied) and reports each new reply next to the recorded one.
struct ReplayTurn {
  std::string sent;
  std::string recorded_reply;
  std::string new_reply;
  bool same = false;
};
Result<std::vector<ReplayTurn>> ReplayAttack(const AttackRecord& attack, ChatModel* target);

}  // namespace breakfix

#endif  // BREAKFIX_CAMPAIGN_H_
