// The result store's schema.
//
// Current schema (version 6), one row per:
//
//   runs            a run: its identity and configuration.
//     id INTEGER PRIMARY KEY        assigned on insert; runs are also found by it ("breakfix
//                                   report 3")
//     name TEXT UNIQUE              the user-facing name
//     config_hash, config_json      SHA-256 of the canonical configuration, and that JSON
//     suite_name, suite_hash
//     seed INTEGER                  the uint64 seed stored as its int64 bit pattern
//     targets_json                  JSON array of target names, in report column order
//     simulator, judge              model / judge names
//     status                        "running", "complete", "failed", "interrupted"
//     created_us, updated_us        wall clock, microseconds since the epoch; updated_us is the
//                                   last status change (added in version 2)
//
//   run_targets     a target of a run (added in version 3).
//     PRIMARY KEY (run_id, position)    position = report column, from 0
//     name, identity                    display name and ChatModel::Identity() (never a secret);
//                                       identity is "" for runs stored before version 3
//
//   items           a rendered seed item, as the simulator, target and judge saw it (version 3).
//     key TEXT PRIMARY KEY          SHA-256 of the rendered content (see eval's ItemKey)
//     item_id, family, category, rubric
//     content_json                  every rendered field (params, system prompt, first user
//                                   message, goal, persona, document); bytes exact
//     created_us
//
//   run_units       a unit (conversation + its annotation) that belongs to a run.
//     id INTEGER PRIMARY KEY        link order: reports list units in this order
//     run_id -> runs(id)
//     item_id, family, category, target
//     conversation_key, annotation_key
//     UNIQUE (run_id, conversation_key)   linking twice keeps one row
//     INDEX run_units_by_run (run_id)     entries sorted by (run_id, id): a run's units stream
//                                         in link order without a sort
//
//   conversations   a simulated conversation (one seed item on one target), shared by every run
//                   that contains it.
//     key TEXT PRIMARY KEY          unit key
//     item_id, family, category, target
//     status                        "running", "done", "failed"
//     stop_reason, error            why it ended, and the error when it failed ("" otherwise)
//     created_us                    when it was started
//     finished_us                   when it was finished; NULL while running, and for
//                                   conversations finished before version 2 (added in version 2)
//     item_key                      the rendered item it played (items.key); NULL for
//                                   conversations started before version 3
//
//   turns           one user or assistant message of a conversation.
//     PRIMARY KEY (conversation_key, idx)   idx is 0-based; storing an index twice is refused
//     conversation_key -> conversations(key)
//     role                          "user", "assistant" (or "system")
//     content                       the message bytes, exactly as given (may hold NUL bytes or
//                                   invalid UTF-8: model output is untrusted)
//
//   annotations     a judge's verdict on a conversation against one rubric.
//     key TEXT PRIMARY KEY          unit key; storing a key twice is refused
//     conversation_key, judge, rubric
//     outcome                       "scored" or "unscorable"
//     scale                         "severity", "ungroundedness", "binary"
//     score, reason                 worst turn's score and reason (or why unscorable)
//     turns_json                    [{"turn":1,"score":N,"reason":R}, ...]; R is a JSON string,
//                                   or {"hex":"..."} when the reason is not valid UTF-8
//     attempts, raw_output          judge calls made, and the judge's last raw answer
//     prompt_tokens, completion_tokens, latency_ms (REAL, milliseconds, summed over attempts)
//     created_us
//
//   model_calls     one model call, successful or not, for cost and latency accounting.
//     id INTEGER PRIMARY KEY
//     unit_key                      the conversation or annotation key the call served
//     role, model                   "target" / "simulator" / "judge", and the model name
//     ok, error, attempts
//     prompt_tokens, completion_tokens, latency_ms (REAL, milliseconds), at_us
//     INDEX model_calls_by_unit (unit_key)
//
//   cycle_steps     one step of one round of a break-fix cycle for one base model (version 4).
//     PRIMARY KEY (cycle, model, round, step)   round 0 is the baseline measurement
//     status                        "running" or "done"
//     detail_json                   what the step produced: run names, checkpoint path and
//                                   SHA-256, pair counts, training summary
//     updated_us
//
//   preference_pairs  the pairs curated in a round (version 4).
//     PRIMARY KEY (cycle, model, round, position)   position = output order, from 0
//     pair_id, kind                 "safety", "over_refusal" or "imported"
//     prompt_json                   the prompt's messages (store::EncodeMessages: contents are
//                                   JSON strings, or {"hex": ...} when not valid UTF-8)
//     chosen, rejected              the replies, byte-exact
//     provenance_json               where the pair came from (run, conversation, turn, scores)
//
//   attack_calls    one model call of a red-team attack, byte-exact, for replay (version 5).
//     PRIMARY KEY (attack, seq)
//   attacks         a finished red-team attack: grid position, outcome, result_json (version 5).
//
//   run_manifests   a run's reproducibility manifest (version 6).
//     run_id INTEGER PRIMARY KEY -> runs(id)
//     manifest_json                 the manifest (breakfix/manifest.h, docs/report-schema.md);
//                                   NULL for runs made before version 6 (the migration adds such
//                                   a row for every existing run, so "made before manifests" is
//                                   told apart from "made without one", which has no row)
//     updated_us                    when it was last written (the run's updated_us for NULL rows)
//
// Text columns are always bound as parameters with an explicit length; nothing stored is ever
// spliced into SQL text.
#include "store/schema.h"

#include <string>

#include "store/sqlite_statement.h"

namespace breakfix {
namespace store {
namespace {

// Version 1: the full schema as first released.
constexpr char kSchemaV1[] = R"sql(
PRAGMA application_id = 1111902552;

CREATE TABLE runs (
  id            INTEGER PRIMARY KEY,
  name          TEXT NOT NULL UNIQUE,
  config_hash   TEXT NOT NULL,
  config_json   TEXT NOT NULL,
  suite_name    TEXT NOT NULL,
  suite_hash    TEXT NOT NULL,
  seed          INTEGER NOT NULL,
  targets_json  TEXT NOT NULL,
  simulator     TEXT NOT NULL,
  judge         TEXT NOT NULL,
  status        TEXT NOT NULL,
  created_us    INTEGER NOT NULL
);

CREATE TABLE run_units (
  id                INTEGER PRIMARY KEY,
  run_id            INTEGER NOT NULL REFERENCES runs(id),
  item_id           TEXT NOT NULL,
  family            TEXT NOT NULL,
  category          TEXT NOT NULL,
  target            TEXT NOT NULL,
  conversation_key  TEXT NOT NULL,
  annotation_key    TEXT NOT NULL,
  UNIQUE (run_id, conversation_key)
);
CREATE INDEX run_units_by_run ON run_units(run_id);

CREATE TABLE conversations (
  key          TEXT PRIMARY KEY NOT NULL,
  item_id      TEXT NOT NULL,
  family       TEXT NOT NULL,
  category     TEXT NOT NULL,
  target       TEXT NOT NULL,
  status       TEXT NOT NULL,
  stop_reason  TEXT NOT NULL,
  error        TEXT NOT NULL,
  created_us   INTEGER NOT NULL
);

CREATE TABLE turns (
  conversation_key  TEXT NOT NULL REFERENCES conversations(key),
  idx               INTEGER NOT NULL,
  role              TEXT NOT NULL,
  content           TEXT NOT NULL,
  PRIMARY KEY (conversation_key, idx)
);

CREATE TABLE annotations (
  key                TEXT PRIMARY KEY NOT NULL,
  conversation_key   TEXT NOT NULL,
  judge              TEXT NOT NULL,
  rubric             TEXT NOT NULL,
  outcome            TEXT NOT NULL,
  scale              TEXT NOT NULL,
  score              INTEGER NOT NULL,
  reason             TEXT NOT NULL,
  turns_json         TEXT NOT NULL,
  attempts           INTEGER NOT NULL,
  raw_output         TEXT NOT NULL,
  prompt_tokens      INTEGER NOT NULL,
  completion_tokens  INTEGER NOT NULL,
  latency_ms         REAL NOT NULL,
  created_us         INTEGER NOT NULL
);

CREATE TABLE model_calls (
  id                 INTEGER PRIMARY KEY,
  unit_key           TEXT NOT NULL,
  role               TEXT NOT NULL,
  model              TEXT NOT NULL,
  ok                 INTEGER NOT NULL,
  error              TEXT NOT NULL,
  attempts           INTEGER NOT NULL,
  prompt_tokens      INTEGER NOT NULL,
  completion_tokens  INTEGER NOT NULL,
  latency_ms         REAL NOT NULL,
  at_us              INTEGER NOT NULL
);
CREATE INDEX model_calls_by_unit ON model_calls(unit_key);
)sql";

// Version 2: when a run last changed status, and when a conversation finished (so reports can
// show wall time per conversation and `breakfix runs` can show stale runs).
constexpr char kSchemaV2[] = R"sql(
ALTER TABLE runs ADD COLUMN updated_us INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET updated_us = created_us;
ALTER TABLE conversations ADD COLUMN finished_us INTEGER;
)sql";

// Version 3: the targets of each run with their model identities, and the rendered items, so a
// conversation can be traced back to exactly what was sent (and a later curation step can reuse
// an item's goal and document).
constexpr char kSchemaV5[] = R"sql(
CREATE TABLE attack_calls (
  attack             TEXT NOT NULL,
  seq                INTEGER NOT NULL,
  role               TEXT NOT NULL,
  request_hash       TEXT NOT NULL,
  response           TEXT NOT NULL,
  prompt_tokens      INTEGER NOT NULL,
  completion_tokens  INTEGER NOT NULL,
  PRIMARY KEY (attack, seq)
) WITHOUT ROWID;
CREATE TABLE attacks (
  key               TEXT PRIMARY KEY NOT NULL,
  campaign          TEXT NOT NULL,
  position          INTEGER NOT NULL,
  objective_id      TEXT NOT NULL,
  category          TEXT NOT NULL,
  strategy          TEXT NOT NULL,
  converters        TEXT NOT NULL,
  target            TEXT NOT NULL,
  persona           TEXT NOT NULL,
  seed              INTEGER NOT NULL,
  outcome           TEXT NOT NULL,
  best_score        INTEGER NOT NULL,
  turns_to_success  INTEGER NOT NULL,
  backtracks        INTEGER NOT NULL,
  result_json       TEXT NOT NULL,
  updated_us        INTEGER NOT NULL
);
CREATE INDEX attacks_by_campaign ON attacks (campaign, position);
)sql";

constexpr char kSchemaV4[] = R"sql(
CREATE TABLE cycle_steps (
  cycle        TEXT NOT NULL,
  model        TEXT NOT NULL,
  round        INTEGER NOT NULL,
  step         TEXT NOT NULL,
  status       TEXT NOT NULL,
  detail_json  TEXT NOT NULL,
  updated_us   INTEGER NOT NULL,
  PRIMARY KEY (cycle, model, round, step)
) WITHOUT ROWID;
CREATE TABLE preference_pairs (
  cycle            TEXT NOT NULL,
  model            TEXT NOT NULL,
  round            INTEGER NOT NULL,
  position         INTEGER NOT NULL,
  pair_id          TEXT NOT NULL,
  kind             TEXT NOT NULL,
  prompt_json      TEXT NOT NULL,
  chosen           TEXT NOT NULL,
  rejected         TEXT NOT NULL,
  provenance_json  TEXT NOT NULL,
  PRIMARY KEY (cycle, model, round, position)
) WITHOUT ROWID;
)sql";

constexpr char kSchemaV3[] = R"sql(
CREATE TABLE run_targets (
  run_id    INTEGER NOT NULL REFERENCES runs(id),
  position  INTEGER NOT NULL,
  name      TEXT NOT NULL,
  identity  TEXT NOT NULL,
  PRIMARY KEY (run_id, position)
);
INSERT INTO run_targets (run_id, position, name, identity)
  SELECT runs.id, t.key, t.value, '' FROM runs, json_each(runs.targets_json) AS t;
CREATE TABLE items (
  key           TEXT PRIMARY KEY NOT NULL,
  item_id       TEXT NOT NULL,
  family        TEXT NOT NULL,
  category      TEXT NOT NULL,
  rubric        TEXT NOT NULL,
  content_json  TEXT NOT NULL,
  created_us    INTEGER NOT NULL
);
ALTER TABLE conversations ADD COLUMN item_key TEXT;
)sql";

// Version 6: a reproducibility manifest per run (breakfix versions, hashes, model endpoints,
// sampling, system fingerprints). Runs that exist already get a NULL manifest: they were made
// before manifests were recorded.
constexpr char kSchemaV6[] = R"sql(
CREATE TABLE run_manifests (
  run_id         INTEGER PRIMARY KEY REFERENCES runs(id),
  manifest_json  TEXT,
  updated_us     INTEGER NOT NULL
);
INSERT INTO run_manifests (run_id, manifest_json, updated_us)
  SELECT id, NULL, updated_us FROM runs;
)sql";

Result<int64_t> QueryInt(sqlite3* db, const char* sql, const std::string& operation,
                         const std::string& path) {
  BF_ASSIGN_OR_RETURN(Statement stmt,
                      Statement::Prepare(db, sql, operation, path, /*persistent=*/false));
  BF_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Status::Internal(operation + " on " + path + ": returned no row");
  return stmt.Int(0);
}

// Refuses SQLite files that belong to another application: we must never add our tables to
// someone else's database.
Status CheckOwnership(sqlite3* db, const std::string& path, int version) {
  BF_ASSIGN_OR_RETURN(int64_t app_id,
                      QueryInt(db, "PRAGMA application_id", "read application_id", path));
  if (app_id != 0 && app_id != kApplicationId) {
    return Status::InvalidArgument(path + " is an SQLite database of another application " +
                                   "(application_id " + std::to_string(app_id) +
                                   "); expected a breakfix result store or a new file");
  }
  if (version == 0) {
    BF_ASSIGN_OR_RETURN(int64_t objects, QueryInt(db, "SELECT count(*) FROM sqlite_schema",
                                                  "count schema objects", path));
    if (objects != 0) {
      return Status::InvalidArgument(path + " is an SQLite database with " +
                                     std::to_string(objects) +
                                     " schema objects but no breakfix schema version; expected a "
                                     "breakfix result store or a new file");
    }
  }
  return Status::OK();
}

Status ApplyMigration(sqlite3* db, const std::string& path, const Migration& m) {
  std::string context = "migrating " + path + " to schema version " + std::to_string(m.version) +
                        " (" + m.description + ")";
  BF_RETURN_IF_ERROR(ExecSql(db, "BEGIN IMMEDIATE", "begin migration", path).WithContext(context));
  Status s = [&]() -> Status {
    // Another process may have upgraded the file between our check and our lock: then there is
    // nothing to do, but the transaction must still end (a BEGIN left open breaks every later
    // statement on this connection).
    BF_ASSIGN_OR_RETURN(int version, ReadSchemaVersion(db, path));
    if (version >= m.version) return ExecSql(db, "COMMIT", "end migration", path);
    if (version != m.version - 1) {
      return Status::Internal("expected the database at version " + std::to_string(m.version - 1) +
                              ", found " + std::to_string(version));
    }
    BF_RETURN_IF_ERROR(ExecSql(db, m.sql, "apply migration", path));
    // The version is an integer this build chose, not data: safe to put in SQL text.
    std::string set_version = "PRAGMA user_version = " + std::to_string(m.version);
    BF_RETURN_IF_ERROR(ExecSql(db, set_version.c_str(), "set user_version", path));
    return ExecSql(db, "COMMIT", "commit migration", path);
  }();
  if (!s.ok()) {
    if (sqlite3_get_autocommit(db) == 0) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return s.WithContext(context);
  }
  return Status::OK();
}

}  // namespace

const std::vector<Migration>& Migrations() {
  static const std::vector<Migration>* const migrations = new std::vector<Migration>{
      {1, "initial schema", kSchemaV1},
      {2, "runs.updated_us and conversations.finished_us", kSchemaV2},
      {3, "run_targets, items and conversations.item_key", kSchemaV3},
      {4, "cycle_steps and preference_pairs", kSchemaV4},
      {5, "attack_calls and attacks", kSchemaV5},
      {6, "run_manifests", kSchemaV6},
  };
  return *migrations;
}

Result<int> ReadSchemaVersion(sqlite3* db, const std::string& path) {
  BF_ASSIGN_OR_RETURN(int64_t v, QueryInt(db, "PRAGMA user_version", "read user_version", path));
  return static_cast<int>(v);
}

Status MigrateSchema(sqlite3* db, const std::string& path, int target_version) {
  const int latest = Migrations().back().version;
  BF_ASSIGN_OR_RETURN(int version, ReadSchemaVersion(db, path));
  if (version > latest) {
    return Status::FailedPrecondition(
        path + " has result store schema version " + std::to_string(version) +
        ", newer than this build of breakfix supports (version " + std::to_string(latest) +
        "); use a newer breakfix, or another --store");
  }
  if (version < 0) {
    return Status::Corruption(path + " has a negative schema version " + std::to_string(version));
  }
  BF_RETURN_IF_ERROR(CheckOwnership(db, path, version));
  for (const Migration& m : Migrations()) {
    if (m.version <= version || m.version > target_version) continue;
    BF_RETURN_IF_ERROR(ApplyMigration(db, path, m));
  }
  return Status::OK();
}

}  // namespace store
}  // namespace breakfix
