// The result store: every run, conversation, turn, annotation and model call, in SQLite (WAL).
//
// Units of work are keyed by a hash of their inputs (see eval.h), so re-running a command finds
// what is finished and never repeats or duplicates it. Writes happen inside explicit transactions
// (Begin/Commit); a crash loses at most the open transaction, never leaves a half-written row.
// The schema is versioned (PRAGMA user_version) and upgraded by ordered migrations at open.
//
// A Store is not thread-safe: one thread uses it (the run's main loop).
#ifndef BREAKFIX_STORE_H_
#define BREAKFIX_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "breakfix/chat_model.h"
#include "breakfix/env.h"
#include "breakfix/judge.h"
#include "breakfix/preference.h"
#include "breakfix/status.h"
#include "breakfix/suite.h"

namespace breakfix {

enum class RunStatus { kRunning, kComplete, kFailed, kInterrupted };
const char* RunStatusName(RunStatus status);  // "running", "complete", "failed", "interrupted"

struct RunRecord {
  int64_t id = 0;           // assigned by the store
  std::string name;         // unique; defaults to a prefix of config_hash
  std::string config_hash;  // SHA-256 of the canonical run configuration
  std::string config_json;  // the configuration as run (no secrets), for the manifest
  std::string suite_name;
  std::string suite_hash;
  uint64_t seed = 0;
  std::vector<std::string> targets;            // target names, in column order
  std::vector<std::string> target_identities;  // ChatModel::Identity() of each target, same order
                                               // (empty strings for runs stored before schema 3)
  std::string simulator;  // simulator model name ("" when the suite has no multi-turn item)
  std::string judge;      // judge name
  RunStatus status = RunStatus::kRunning;
  int64_t created_us = 0;  // wall clock, microseconds since the epoch
  int64_t updated_us = 0;
};

enum class ConversationStatus { kRunning, kDone, kFailed };
const char* ConversationStatusName(ConversationStatus status);  // "running", "done", "failed"

// A simulated conversation: one seed item on one target.
struct ConversationRecord {
  std::string key;       // unit key (hash of item, target, simulator, seed, versions)
  std::string item_key;  // key of the rendered item in the items table ("" when unknown)
  std::string item_id;
  std::string family;
  std::string category;
  std::string target;
  ConversationStatus status = ConversationStatus::kRunning;
  std::string stop_reason;     // "single_turn", "max_turns", "simulator_stop", "error"
  std::string error;           // why it failed, when it did
  std::vector<Message> turns;  // user/assistant messages in order (no system message)
};

struct AnnotationRecord {
  std::string key;  // unit key (hash of conversation key, judge identity, rubric)
  std::string conversation_key;
  std::string judge;   // judge name
  std::string rubric;  // rubric id
  Annotation annotation;
};

// One model call (successful or not), for cost and latency accounting.
struct ModelCallRecord {
  std::string unit_key;  // conversation or annotation key the call served
  std::string role;      // "target", "simulator", "judge"
  std::string model;     // model name
  bool ok = true;
  std::string error;  // status message when !ok
  int attempts = 1;
  TokenUsage usage;
  double latency_ms = 0;
  int64_t at_us = 0;  // wall clock when it finished
};

// Links a run to the units it consists of. The same unit may belong to several runs (a repeated
// or extended run reuses finished work).
struct RunUnit {
  int64_t run_id = 0;
  std::string item_id;
  std::string family;
  std::string category;
  std::string target;
  std::string conversation_key;
  std::string annotation_key;
};

// A run's unit with whatever is finished of it, for reports.
struct ResultRow {
  RunUnit unit;
  bool conversation_started = false;  // a conversation record exists (else nothing is stored yet)
  ConversationStatus conversation_status = ConversationStatus::kRunning;
  std::string stop_reason;
  int assistant_turns = 0;
  bool annotated = false;
  std::string judge;
  std::string rubric;
  Annotation annotation;  // valid when annotated (raw_output omitted)
};

struct RoleUsage {
  int64_t calls = 0;
  int64_t failed_calls = 0;
  TokenUsage usage;
  double latency_ms_total = 0;
};

// A step of a break-fix cycle (see `breakfix cycle`).
struct CycleStepRecord {
  std::string cycle;               // the cycle's name
  std::string model;               // the base model's name within the cycle
  int round = 0;                   // 0 = the baseline measurement
  std::string step;                // "measure", "curate", "train", ...
  std::string status;              // "running" or "done"
  std::string detail_json = "{}";  // what the step produced (run names, paths, hashes, counts)
  int64_t updated_us = 0;          // set by the store when 0
};

// One model call of a red-team attack (see breakfix/redteam.h, CallJournal).
struct AttackCallRecord {
  std::string attack;  // the attack's key
  int64_t seq = 0;     // 0-based position among the attack's calls
  std::string role;    // "attacker", "target" or "scorer"
  std::string request_hash;
  std::string response;  // byte-exact
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// A finished red-team attack (see `breakfix redteam`).
struct AttackRecord {
  std::string key;       // the attack's key (hash of everything that defines it)
  std::string campaign;  // the campaign's name
  int64_t position = 0;  // order within the campaign's grid
  std::string objective_id;
  std::string category;
  std::string strategy;
  std::string converters;  // the chain's identity ("" = none)
  std::string target;      // the target's name
  std::string persona;
  int64_t seed = 0;
  std::string outcome;  // AttackOutcomeName
  int best_score = 0;
  int turns_to_success = 0;
  int backtracks = 0;
  std::string result_json = "{}";  // the whole transcript, scores and token counts
  int64_t updated_us = 0;          // set by the store when 0
};

// Whether a run's reproducibility manifest (breakfix/manifest.h) is in the store.
enum class RunManifestState {
  kRecorded,      // manifest_json holds it
  kNotRecorded,   // the run was created without one (BeginRun alone, not through RunEval)
  kBeforeSchema,  // the run was created before schema version kRunManifestSchemaVersion
};

// The schema version that introduced run manifests.
inline constexpr int kRunManifestSchemaVersion = 6;

struct RunManifestRecord {
  RunManifestState state = RunManifestState::kNotRecorded;
  std::string manifest_json;  // the manifest's JSON text when kRecorded, else ""
  int64_t updated_us = 0;     // when it was last written (kRecorded), else 0
};

struct StoreOptions {
  int64_t cache_size_kib = 16384;  // SQLite page cache (bounded, so memory stays flat)
  int busy_timeout_ms = 5000;      // wait this long for a lock held by another process
  Env* env = nullptr;              // clock for created/updated timestamps; null = Env::Default()
};

class Store {
 public:
  // Opens (creating if needed) and migrates to the current schema. A file from a newer breakfix
  // is refused with a message naming both versions (kFailedPrecondition); a file that is not a
  // breakfix store is refused (kInvalidArgument). ":memory:" opens a private in-memory store.
  // Destroying the Store discards a transaction still open, as a crash would.
  static Result<std::unique_ptr<Store>> OpenSqlite(const std::string& path,
                                                   const StoreOptions& options = {});
  virtual ~Store() = default;

  // The schema version this build writes.
  static int CurrentSchemaVersion();
  virtual int SchemaVersion() = 0;

  // Batches writes. Nested Begin() is an error. Commit() makes everything since Begin() durable
  // against a process crash. Writes outside Begin/Commit are committed one by one.
  virtual Status Begin() = 0;
  virtual Status Commit() = 0;
  virtual Status Rollback() = 0;

  // Creates the run, or returns the existing one with the same name. An existing run whose
  // config_hash differs is a FailedPrecondition naming the run.
  virtual Result<RunRecord> BeginRun(const RunRecord& run) = 0;
  virtual Status SetRunStatus(int64_t run_id, RunStatus status) = 0;
  // By name, or by numeric id given as a string.
  virtual Result<RunRecord> FindRun(const std::string& name_or_id) = 0;
  virtual Result<std::vector<RunRecord>> ListRuns() = 0;

  // Idempotent: linking the same (run, conversation_key) twice keeps one row.
  virtual Status LinkUnit(const RunUnit& unit) = 0;

  virtual Result<std::optional<ConversationRecord>> GetConversation(const std::string& key) = 0;
  // Inserts the conversation header (status running, no turns) unless it exists.
  virtual Status StartConversation(const ConversationRecord& conversation) = 0;
  // Stores turn `index` (0-based over user/assistant messages). Storing an index that exists is
  // an error (kCorruption): it would mean duplicated work.
  virtual Status AppendTurn(const std::string& key, int index, const Message& message) = 0;
  virtual Status FinishConversation(const std::string& key, ConversationStatus status,
                                    const std::string& stop_reason, const std::string& error) = 0;

  // Stores a rendered seed item under `key` (a hash of its content) unless it is there already,
  // so every conversation can be traced back to exactly what the simulator and target were given.
  virtual Status PutItem(const std::string& key, const SeedItem& item) = 0;
  virtual Result<std::optional<SeedItem>> GetItem(const std::string& key) = 0;

  virtual Result<bool> HasAnnotation(const std::string& key) = 0;
  // Inserts; an existing key is an error (kCorruption).
  virtual Status PutAnnotation(const AnnotationRecord& annotation) = 0;
  virtual Result<std::optional<AnnotationRecord>> GetAnnotation(const std::string& key) = 0;

  virtual Status RecordModelCall(const ModelCallRecord& call) = 0;

  // Every unit of the run with its state, in the order the units were linked. Streams: `fn` is
  // called as each row is read, so memory stays flat for any run size; `fn` may call other
  // methods of this Store. A non-OK status from `fn` stops the iteration and is returned.
  virtual Status ForEachResult(int64_t run_id,
                               const std::function<Status(const ResultRow&)>& fn) = 0;
  // Model calls of the run's units (calls whose unit_key is one of the run's conversation or
  // annotation keys), summed per role. A unit shared by several runs counts in each.
  virtual Result<std::map<std::string, RoleUsage>> UsageByRole(int64_t run_id) = 0;

  // --- Break-fix cycles (schema version 4) ---
  // One step of one round of a cycle for one base model ("measure", "curate", "train"...).
  // Putting a step again replaces it (a step goes from "running" to "done").
  virtual Status PutCycleStep(const CycleStepRecord& step) = 0;
  // Every step of the cycle, ordered by model, round, then step name.
  virtual Result<std::vector<CycleStepRecord>> CycleSteps(const std::string& cycle) = 0;
  // The preference pairs curated in a round, stored byte-exact (model output included) in one
  // transaction; putting a round's pairs again replaces them.
  virtual Status PutPreferencePairs(const std::string& cycle, const std::string& model, int round,
                                    const std::vector<PreferencePair>& pairs) = 0;
  virtual Result<std::vector<PreferencePair>> PreferencePairs(const std::string& cycle,
                                                              const std::string& model,
                                                              int round) = 0;

  // Red-team attacks. A call is recorded once (recording the same attack and seq again is a
  // FailedPrecondition error: calls are never rewritten); an attack record replaces an earlier
  // one with the same key.
  virtual Status PutAttackCall(const AttackCallRecord& call) = 0;
  virtual Result<std::optional<AttackCallRecord>> FindAttackCall(const std::string& attack,
                                                                 int64_t seq) = 0;
  virtual Status PutAttack(const AttackRecord& attack) = 0;
  virtual Result<std::optional<AttackRecord>> FindAttack(const std::string& key) = 0;
  // The campaign's attacks in grid order.
  virtual Result<std::vector<AttackRecord>> Attacks(const std::string& campaign) = 0;

  // --- Run manifests (schema version 6) ---
  // Records the run's manifest (JSON text, see breakfix/manifest.h), replacing an earlier one.
  // Joins an open transaction like any other write. An unknown run id is kNotFound.
  virtual Status PutRunManifest(int64_t run_id, const std::string& manifest_json) = 0;
  // The run's manifest, or why there is none (state). An unknown run id is kNotFound.
  virtual Result<RunManifestRecord> GetRunManifest(int64_t run_id) = 0;
};

}  // namespace breakfix

#endif  // BREAKFIX_STORE_H_
