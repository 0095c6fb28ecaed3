// Store on SQLite: one connection in WAL mode, every statement prepared once at open.
//
// Durability: journal_mode=WAL with synchronous=NORMAL. A committed transaction survives the
// process being killed (the WAL is in the OS page cache and is replayed at the next open); a
// power loss may lose the last transactions but never corrupts the file. That is the failure
// model of a long evaluation run: Ctrl-C, kill -9, OOM kills.
#include <sqlite3.h>

#include <cstdlib>
#include <string>
#include <utility>

#include "breakfix/store.h"
#include "store/record_encoding.h"
#include "store/schema.h"
#include "store/sqlite_statement.h"

namespace breakfix {
namespace {

using store::ConnectionHandle;
using store::ScopedReset;
using store::Statement;

constexpr char kRunColumns[] =
    "id, name, config_hash, config_json, suite_name, suite_hash, seed, targets_json, simulator, "
    "judge, status, created_us, updated_us, "
    "(SELECT json_group_array(identity) FROM "
    "   (SELECT identity FROM run_targets WHERE run_id = runs.id ORDER BY position))";

// SQL for every statement prepared at open. Text values are always parameters.
constexpr char kInsertRunSql[] =
    "INSERT INTO runs (name, config_hash, config_json, suite_name, suite_hash, seed, "
    "targets_json, simulator, judge, status, created_us, updated_us) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
constexpr char kUpdateRunStatusSql[] = "UPDATE runs SET status = ?2, updated_us = ?3 WHERE id = ?1";
constexpr char kInsertRunTargetSql[] =
    "INSERT INTO run_targets (run_id, position, name, identity) VALUES (?1, ?2, ?3, ?4)";
constexpr char kInsertItemSql[] =
    "INSERT INTO items (key, item_id, family, category, rubric, content_json, created_us) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (key) DO NOTHING";
constexpr char kSelectItemSql[] = "SELECT content_json FROM items WHERE key = ?1";
constexpr char kLinkUnitSql[] =
    "INSERT INTO run_units (run_id, item_id, family, category, target, conversation_key, "
    "annotation_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
    "ON CONFLICT (run_id, conversation_key) DO NOTHING";
constexpr char kSelectConversationSql[] =
    "SELECT item_id, family, category, target, status, stop_reason, error, item_key "
    "FROM conversations WHERE key = ?1";
constexpr char kSelectTurnsSql[] =
    "SELECT idx, role, content FROM turns WHERE conversation_key = ?1 ORDER BY idx";
constexpr char kInsertConversationSql[] =
    "INSERT INTO conversations (key, item_id, family, category, target, status, stop_reason, "
    "error, created_us, item_key) VALUES (?1, ?2, ?3, ?4, ?5, 'running', '', '', ?6, ?7) "
    "ON CONFLICT (key) DO NOTHING";
constexpr char kInsertTurnSql[] =
    "INSERT INTO turns (conversation_key, idx, role, content) VALUES (?1, ?2, ?3, ?4)";
constexpr char kFinishConversationSql[] =
    "UPDATE conversations SET status = ?2, stop_reason = ?3, error = ?4, finished_us = ?5 "
    "WHERE key = ?1";
constexpr char kHasAnnotationSql[] = "SELECT 1 FROM annotations WHERE key = ?1";
constexpr char kInsertAnnotationSql[] =
    "INSERT INTO annotations (key, conversation_key, judge, rubric, outcome, scale, score, "
    "reason, turns_json, attempts, raw_output, prompt_tokens, completion_tokens, latency_ms, "
    "created_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
constexpr char kSelectAnnotationSql[] =
    "SELECT conversation_key, judge, rubric, outcome, scale, score, reason, turns_json, attempts, "
    "raw_output, prompt_tokens, completion_tokens, latency_ms FROM annotations WHERE key = ?1";
constexpr char kInsertModelCallSql[] =
    "INSERT INTO model_calls (unit_key, role, model, ok, error, attempts, prompt_tokens, "
    "completion_tokens, latency_ms, at_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

// Streams in link order: run_units_by_run holds (run_id, id), so no sort is needed and memory
// stays flat however many units the run has.
constexpr char kForEachResultSql[] =
    "SELECT u.item_id, u.family, u.category, u.target, u.conversation_key, u.annotation_key, "
    "  c.key IS NOT NULL, c.status, c.stop_reason, "
    "  (SELECT count(*) FROM turns AS t "
    "     WHERE t.conversation_key = u.conversation_key AND t.role = 'assistant'), "
    "  a.key IS NOT NULL, a.judge, a.rubric, a.outcome, a.scale, a.score, a.reason, a.turns_json, "
    "  a.attempts, a.prompt_tokens, a.completion_tokens, a.latency_ms "
    "FROM run_units AS u "
    "LEFT JOIN conversations AS c ON c.key = u.conversation_key "
    "LEFT JOIN annotations AS a ON a.key = u.annotation_key "
    "WHERE u.run_id = ?1 ORDER BY u.id";

// Every model call of the run's units, streamed: for each unit (in run order), its calls found
// through model_calls_by_unit. No sort and no temporary set of keys, so memory stays flat however
// large the run; the sums are taken in C++.
constexpr char kPutCycleStepSql[] =
    "INSERT OR REPLACE INTO cycle_steps (cycle, model, round, step, status, detail_json, "
    "updated_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr char kSelectCycleStepsSql[] =
    "SELECT model, round, step, status, detail_json, updated_us FROM cycle_steps WHERE cycle = ?1 "
    "ORDER BY model, round, step";
constexpr char kDeletePairsSql[] =
    "DELETE FROM preference_pairs WHERE cycle = ?1 AND model = ?2 AND round = ?3";
constexpr char kInsertPairSql[] =
    "INSERT INTO preference_pairs (cycle, model, round, position, pair_id, kind, prompt_json, "
    "chosen, rejected, provenance_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
constexpr char kSelectPairsSql[] =
    "SELECT pair_id, kind, prompt_json, chosen, rejected, provenance_json FROM preference_pairs "
    "WHERE cycle = ?1 AND model = ?2 AND round = ?3 ORDER BY position";

constexpr char kInsertAttackCallSql[] =
    "INSERT INTO attack_calls (attack, seq, role, request_hash, response, prompt_tokens, "
    "completion_tokens) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr char kSelectAttackCallSql[] =
    "SELECT role, request_hash, response, prompt_tokens, completion_tokens FROM attack_calls "
    "WHERE attack = ?1 AND seq = ?2";
constexpr char kAttackColumns[] =
    "key, campaign, position, objective_id, category, strategy, converters, target, persona, "
    "seed, outcome, best_score, turns_to_success, backtracks, result_json, updated_us";
constexpr char kPutAttackSql[] =
    "INSERT OR REPLACE INTO attacks (key, campaign, position, objective_id, category, strategy, "
    "converters, target, persona, seed, outcome, best_score, turns_to_success, backtracks, "
    "result_json, updated_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
    "?14, ?15, ?16)";

constexpr char kPutRunManifestSql[] =
    "INSERT INTO run_manifests (run_id, manifest_json, updated_us) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (run_id) DO UPDATE SET manifest_json = excluded.manifest_json, "
    "updated_us = excluded.updated_us";
constexpr char kSelectRunManifestSql[] =
    "SELECT manifest_json IS NULL, manifest_json, updated_us FROM run_manifests WHERE run_id = ?1";
constexpr char kRunExistsSql[] = "SELECT 1 FROM runs WHERE id = ?1";

constexpr char kUsageByRoleSql[] =
    "SELECT m.role, m.ok, m.prompt_tokens, m.completion_tokens, m.latency_ms "
    "FROM run_units AS u JOIN model_calls AS m ON m.unit_key = u.conversation_key "
    "WHERE u.run_id = ?1 "
    "UNION ALL "
    "SELECT m.role, m.ok, m.prompt_tokens, m.completion_tokens, m.latency_ms "
    "FROM run_units AS u JOIN model_calls AS m ON m.unit_key = u.annotation_key "
    "WHERE u.run_id = ?1";

class SqliteStore final : public Store {
 public:
  SqliteStore(ConnectionHandle db, std::string path, Env* env)
      : db_(std::move(db)), path_(std::move(path)), env_(env) {}

  ~SqliteStore() override {
    // An open transaction is abandoned, exactly as a crash would abandon it.
    if (in_transaction_ && sqlite3_get_autocommit(db_.get()) == 0) (void)rollback_.Run();
  }

  Status Prepare() {
    struct Entry {
      Statement* stmt;
      const char* sql;
      const char* operation;
    };
    const std::string select_run_by_name =
        std::string("SELECT ") + kRunColumns + " FROM runs WHERE name = ?1";
    const std::string select_run_by_id =
        std::string("SELECT ") + kRunColumns + " FROM runs WHERE id = ?1";
    const std::string list_runs = std::string("SELECT ") + kRunColumns + " FROM runs ORDER BY id";
    const Entry entries[] = {
        {&begin_, "BEGIN IMMEDIATE", "begin transaction"},
        {&commit_, "COMMIT", "commit transaction"},
        {&rollback_, "ROLLBACK", "roll back transaction"},
        {&insert_run_, kInsertRunSql, "insert run"},
        {&select_run_by_name_, select_run_by_name.c_str(), "find run by name"},
        {&select_run_by_id_, select_run_by_id.c_str(), "find run by id"},
        {&list_runs_, list_runs.c_str(), "list runs"},
        {&update_run_status_, kUpdateRunStatusSql, "update run status"},
        {&link_unit_, kLinkUnitSql, "link unit"},
        {&insert_run_target_, kInsertRunTargetSql, "insert run target"},
        {&insert_item_, kInsertItemSql, "insert item"},
        {&select_item_, kSelectItemSql, "read item"},
        {&select_conversation_, kSelectConversationSql, "read conversation"},
        {&select_turns_, kSelectTurnsSql, "read turns"},
        {&insert_conversation_, kInsertConversationSql, "insert conversation"},
        {&insert_turn_, kInsertTurnSql, "insert turn"},
        {&finish_conversation_, kFinishConversationSql, "finish conversation"},
        {&has_annotation_, kHasAnnotationSql, "look up annotation"},
        {&insert_annotation_, kInsertAnnotationSql, "insert annotation"},
        {&select_annotation_, kSelectAnnotationSql, "read annotation"},
        {&insert_model_call_, kInsertModelCallSql, "insert model call"},
        {&put_cycle_step_, kPutCycleStepSql, "store cycle step"},
        {&delete_pairs_, kDeletePairsSql, "delete preference pairs"},
        {&insert_pair_, kInsertPairSql, "insert preference pair"},
        {&insert_attack_call_, kInsertAttackCallSql, "record attack call"},
        {&select_attack_call_, kSelectAttackCallSql, "read attack call"},
        {&put_attack_, kPutAttackSql, "store attack"},
        {&put_run_manifest_, kPutRunManifestSql, "store run manifest"},
        {&select_run_manifest_, kSelectRunManifestSql, "read run manifest"},
        {&run_exists_, kRunExistsSql, "look up run"},
    };
    for (const Entry& e : entries) {
      BF_ASSIGN_OR_RETURN(*e.stmt, Statement::Prepare(db_.get(), e.sql, e.operation, path_));
    }
    return Status::OK();
  }

  int SchemaVersion() override {
    Result<int> v = store::ReadSchemaVersion(db_.get(), path_);
    return v.ok() ? *v : -1;
  }

  Status Begin() override {
    if (in_transaction_) {
      return Status::FailedPrecondition("Begin on " + path_ +
                                        ": a transaction is already open (transactions do not "
                                        "nest); Commit or Rollback it first");
    }
    BF_RETURN_IF_ERROR(begin_.Run());
    in_transaction_ = true;
    return Status::OK();
  }

  Status Commit() override {
    if (!in_transaction_) {
      return Status::FailedPrecondition("Commit on " + path_ +
                                        ": no transaction is open; call Begin first");
    }
    Status s = commit_.Run();
    // A failed COMMIT usually leaves the transaction open (e.g. SQLITE_BUSY), so the caller may
    // retry or roll back; when sqlite has already rolled it back, there is nothing left open.
    if (s.ok() || sqlite3_get_autocommit(db_.get()) != 0) in_transaction_ = false;
    return s;
  }

  Status Rollback() override {
    if (!in_transaction_) {
      return Status::FailedPrecondition("Rollback on " + path_ +
                                        ": no transaction is open; call Begin first");
    }
    if (sqlite3_get_autocommit(db_.get()) != 0) {
      // sqlite rolled back on its own after an I/O or out-of-memory error.
      in_transaction_ = false;
      return Status::OK();
    }
    Status s = rollback_.Run();
    if (s.ok() || sqlite3_get_autocommit(db_.get()) != 0) in_transaction_ = false;
    return s;
  }

  Result<RunRecord> BeginRun(const RunRecord& requested) override {
    RunRecord run = requested;
    if (run.name.empty()) run.name = run.config_hash.substr(0, 12);
    if (run.name.empty()) {
      return Status::InvalidArgument("BeginRun: run has neither a name nor a config_hash");
    }
    // Found: resume it, provided it is the same configuration.
    BF_ASSIGN_OR_RETURN(std::optional<RunRecord> existing, ReadRun(select_run_by_name_, run.name));
    if (!existing) {
      if (run.created_us == 0) run.created_us = env_->WallMicros();
      run.updated_us = run.created_us;
      std::string targets_json = store::EncodeStringList(run.targets);
      Statement& s = insert_run_;
      s.BindText(1, run.name);
      s.BindText(2, run.config_hash);
      s.BindText(3, run.config_json);
      s.BindText(4, run.suite_name);
      s.BindText(5, run.suite_hash);
      s.BindInt(6, static_cast<int64_t>(run.seed));
      s.BindText(7, targets_json);
      s.BindText(8, run.simulator);
      s.BindText(9, run.judge);
      s.BindText(10, RunStatusName(run.status));
      s.BindInt(11, run.created_us);
      s.BindInt(12, run.updated_us);
      Status inserted = s.Run();
      if (inserted.ok()) {
        run.id = sqlite3_last_insert_rowid(db_.get());
        run.target_identities.resize(run.targets.size());
        for (size_t i = 0; i < run.targets.size(); ++i) {
          Statement& t = insert_run_target_;
          t.BindInt(1, run.id);
          t.BindInt(2, static_cast<int64_t>(i));
          t.BindText(3, run.targets[i]);
          t.BindText(4, run.target_identities[i]);
          BF_RETURN_IF_ERROR(t.Run());
        }
        return run;
      }
      if (s.last_result_code() != SQLITE_CONSTRAINT_UNIQUE) return inserted;
      // Another process created it between our lookup and our insert.
      BF_ASSIGN_OR_RETURN(existing, ReadRun(select_run_by_name_, run.name));
      if (!existing) return inserted;
    }
    if (existing->config_hash != run.config_hash) {
      return Status::FailedPrecondition(
          "run \"" + run.name + "\" already exists in " + path_ + " with config_hash " +
          existing->config_hash + ", but this configuration hashes to " + run.config_hash +
          "; resume it with its original configuration or choose another run name");
    }
    return *existing;
  }

  Status SetRunStatus(int64_t run_id, RunStatus status) override {
    Statement& s = update_run_status_;
    s.BindInt(1, run_id);
    s.BindText(2, RunStatusName(status));
    s.BindInt(3, env_->WallMicros());
    BF_RETURN_IF_ERROR(s.Run());
    if (sqlite3_changes(db_.get()) == 0) {
      return Status::NotFound("SetRunStatus: no run with id " + std::to_string(run_id) + " in " +
                              path_);
    }
    return Status::OK();
  }

  Result<RunRecord> FindRun(const std::string& name_or_id) override {
    BF_ASSIGN_OR_RETURN(std::optional<RunRecord> run, ReadRun(select_run_by_name_, name_or_id));
    if (run) return *run;
    if (!name_or_id.empty() && name_or_id.size() <= 18 &&
        name_or_id.find_first_not_of("0123456789") == std::string::npos) {
      int64_t id = std::strtoll(name_or_id.c_str(), nullptr, 10);
      BF_ASSIGN_OR_RETURN(run, ReadRunById(id));
      if (run) return *run;
    }
    return Status::NotFound("no run named or numbered \"" + name_or_id + "\" in " + path_ +
                            " (`breakfix runs` lists them)");
  }

  Result<std::vector<RunRecord>> ListRuns() override {
    Statement& s = list_runs_;
    ScopedReset reset(s);
    std::vector<RunRecord> runs;
    while (true) {
      BF_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      BF_ASSIGN_OR_RETURN(RunRecord run, RunFromRow(s));
      runs.push_back(std::move(run));
    }
    return runs;
  }

  Status LinkUnit(const RunUnit& unit) override {
    if (unit.conversation_key.empty()) {
      return Status::InvalidArgument("LinkUnit: conversation_key is empty (item " + unit.item_id +
                                     ", target " + unit.target + ")");
    }
    Statement& s = link_unit_;
    s.BindInt(1, unit.run_id);
    s.BindText(2, unit.item_id);
    s.BindText(3, unit.family);
    s.BindText(4, unit.category);
    s.BindText(5, unit.target);
    s.BindText(6, unit.conversation_key);
    s.BindText(7, unit.annotation_key);
    Status st = s.Run();
    if (!st.ok() && s.last_result_code() == SQLITE_CONSTRAINT_FOREIGNKEY) {
      return Status::NotFound("LinkUnit: no run with id " + std::to_string(unit.run_id) + " in " +
                              path_ + "; call BeginRun first");
    }
    return st;
  }

  Result<std::optional<ConversationRecord>> GetConversation(const std::string& key) override {
    ConversationRecord c;
    {
      Statement& s = select_conversation_;
      ScopedReset reset(s);
      s.BindText(1, key);
      BF_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return std::optional<ConversationRecord>();
      c.key = key;
      c.item_id = s.Text(0);
      c.family = s.Text(1);
      c.category = s.Text(2);
      c.target = s.Text(3);
      BF_ASSIGN_OR_RETURN(
          c.status, WithRow(store::ParseConversationStatus(s.Text(4)), "conversation " + key));
      c.stop_reason = s.Text(5);
      c.error = s.Text(6);
      c.item_key = s.IsNull(7) ? std::string() : s.Text(7);
    }
    Statement& s = select_turns_;
    ScopedReset reset(s);
    s.BindText(1, key);
    while (true) {
      BF_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      int64_t idx = s.Int(0);
      if (idx != static_cast<int64_t>(c.turns.size())) {
        return Status::Corruption("conversation " + key + " in " + path_ + ": turn " +
                                  std::to_string(c.turns.size()) +
                                  " is missing (next stored turn "
                                  "is " +
                                  std::to_string(idx) + ")");
      }
      Result<Role> role = ParseRole(s.Text(1));
      if (!role.ok()) {
        return Status::Corruption("conversation " + key + " turn " + std::to_string(idx) + " in " +
                                  path_ + ": " + role.status().message());
      }
      c.turns.push_back(Message{*role, s.Text(2)});
    }
    return std::optional<ConversationRecord>(std::move(c));
  }

  Status StartConversation(const ConversationRecord& c) override {
    if (c.key.empty()) {
      return Status::InvalidArgument("StartConversation: key is empty (item " + c.item_id + ")");
    }
    Statement& s = insert_conversation_;
    s.BindText(1, c.key);
    s.BindText(2, c.item_id);
    s.BindText(3, c.family);
    s.BindText(4, c.category);
    s.BindText(5, c.target);
    s.BindInt(6, env_->WallMicros());
    if (c.item_key.empty()) {
      s.BindNull(7);
    } else {
      s.BindText(7, c.item_key);
    }
    return s.Run();
  }

  Status PutItem(const std::string& key, const SeedItem& item) override {
    if (key.empty()) return Status::InvalidArgument("PutItem: key is empty (item " + item.id + ")");
    const std::string content = store::EncodeItem(item);  // bound without a copy: keep it alive
    Statement& s = insert_item_;
    s.BindText(1, key);
    s.BindText(2, item.id);
    s.BindText(3, item.family);
    s.BindText(4, item.category);
    s.BindText(5, item.rubric);
    s.BindText(6, content);
    s.BindInt(7, env_->WallMicros());
    return s.Run();
  }

  Result<std::optional<SeedItem>> GetItem(const std::string& key) override {
    Statement& s = select_item_;
    ScopedReset reset(s);
    s.BindText(1, key);
    BF_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<SeedItem>();
    BF_ASSIGN_OR_RETURN(SeedItem item,
                        store::DecodeItem(s.Text(0), "item " + key + " in " + path_));
    return std::optional<SeedItem>(std::move(item));
  }

  Status AppendTurn(const std::string& key, int index, const Message& message) override {
    if (index < 0) {
      return Status::InvalidArgument("AppendTurn: conversation " + key + ": turn index " +
                                     std::to_string(index) + " is negative; expected 0 or more");
    }
    Statement& s = insert_turn_;
    s.BindText(1, key);
    s.BindInt(2, index);
    s.BindText(3, RoleName(message.role));
    s.BindText(4, message.content);
    Status st = s.Run();
    if (st.ok()) return st;
    switch (s.last_result_code()) {
      case SQLITE_CONSTRAINT_PRIMARYKEY:
      case SQLITE_CONSTRAINT_UNIQUE:
        return Status::Corruption("duplicate turn " + std::to_string(index) + " of conversation " +
                                  key + " in " + path_ +
                                  ": that turn is already stored, so this work was duplicated");
      case SQLITE_CONSTRAINT_FOREIGNKEY:
        return Status::FailedPrecondition("AppendTurn: conversation " + key + " is not in " +
                                          path_ + "; call StartConversation first");
      default:
        return st;
    }
  }

  Status FinishConversation(const std::string& key, ConversationStatus status,
                            const std::string& stop_reason, const std::string& error) override {
    Statement& s = finish_conversation_;
    s.BindText(1, key);
    s.BindText(2, ConversationStatusName(status));
    s.BindText(3, stop_reason);
    s.BindText(4, error);
    s.BindInt(5, env_->WallMicros());
    BF_RETURN_IF_ERROR(s.Run());
    if (sqlite3_changes(db_.get()) == 0) {
      return Status::NotFound("FinishConversation: conversation " + key + " is not in " + path_ +
                              "; call StartConversation first");
    }
    return Status::OK();
  }

  Result<bool> HasAnnotation(const std::string& key) override {
    Statement& s = has_annotation_;
    ScopedReset reset(s);
    s.BindText(1, key);
    return s.Step();
  }

  Status PutAnnotation(const AnnotationRecord& record) override {
    if (record.key.empty()) {
      return Status::InvalidArgument("PutAnnotation: key is empty (conversation " +
                                     record.conversation_key + ")");
    }
    const Annotation& a = record.annotation;
    std::string turns_json = store::EncodeTurnScores(a.turns);
    Statement& s = insert_annotation_;
    s.BindText(1, record.key);
    s.BindText(2, record.conversation_key);
    s.BindText(3, record.judge);
    s.BindText(4, record.rubric);
    s.BindText(5, OutcomeName(a.outcome));
    s.BindText(6, ScaleName(a.scale));
    s.BindInt(7, a.score);
    s.BindText(8, a.reason);
    s.BindText(9, turns_json);
    s.BindInt(10, a.attempts);
    s.BindText(11, a.raw_output);
    s.BindInt(12, a.usage.prompt_tokens);
    s.BindInt(13, a.usage.completion_tokens);
    s.BindDouble(14, a.latency_ms);
    s.BindInt(15, env_->WallMicros());
    Status st = s.Run();
    if (!st.ok() && (s.last_result_code() == SQLITE_CONSTRAINT_PRIMARYKEY ||
                     s.last_result_code() == SQLITE_CONSTRAINT_UNIQUE)) {
      return Status::Corruption("duplicate annotation " + record.key + " (conversation " +
                                record.conversation_key + ") in " + path_ +
                                ": it is already stored, so this work was duplicated");
    }
    return st;
  }

  Result<std::optional<AnnotationRecord>> GetAnnotation(const std::string& key) override {
    Statement& s = select_annotation_;
    ScopedReset reset(s);
    s.BindText(1, key);
    BF_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<AnnotationRecord>();
    AnnotationRecord r;
    r.key = key;
    r.conversation_key = s.Text(0);
    r.judge = s.Text(1);
    r.rubric = s.Text(2);
    const std::string where = "annotation " + key;
    Annotation& a = r.annotation;
    BF_ASSIGN_OR_RETURN(a.outcome, WithRow(store::ParseOutcomeText(s.Text(3)), where));
    BF_ASSIGN_OR_RETURN(a.scale, WithRow(store::ParseScaleText(s.Text(4)), where));
    a.score = static_cast<int>(s.Int(5));
    a.reason = s.Text(6);
    BF_ASSIGN_OR_RETURN(a.turns, store::DecodeTurnScores(s.Text(7), where + " in " + path_));
    a.attempts = static_cast<int>(s.Int(8));
    a.raw_output = s.Text(9);
    a.usage.prompt_tokens = s.Int(10);
    a.usage.completion_tokens = s.Int(11);
    a.latency_ms = s.Double(12);
    return std::optional<AnnotationRecord>(std::move(r));
  }

  Status RecordModelCall(const ModelCallRecord& call) override {
    Statement& s = insert_model_call_;
    s.BindText(1, call.unit_key);
    s.BindText(2, call.role);
    s.BindText(3, call.model);
    s.BindInt(4, call.ok ? 1 : 0);
    s.BindText(5, call.error);
    s.BindInt(6, call.attempts);
    s.BindInt(7, call.usage.prompt_tokens);
    s.BindInt(8, call.usage.completion_tokens);
    s.BindDouble(9, call.latency_ms);
    s.BindInt(10, call.at_us != 0 ? call.at_us : env_->WallMicros());
    return s.Run();
  }

  Status ForEachResult(int64_t run_id, const std::function<Status(const ResultRow&)>& fn) override {
    // Prepared per call (a report runs it once), which also lets `fn` start another iteration.
    BF_ASSIGN_OR_RETURN(Statement s,
                        Statement::Prepare(db_.get(), kForEachResultSql, "read run results", path_,
                                           /*persistent=*/false));
    ScopedReset reset(s);
    s.BindInt(1, run_id);
    ResultRow r;  // reused, so each row costs no allocation beyond its strings
    r.unit.run_id = run_id;
    while (true) {
      BF_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      r.unit.item_id = s.Text(0);
      r.unit.family = s.Text(1);
      r.unit.category = s.Text(2);
      r.unit.target = s.Text(3);
      r.unit.conversation_key = s.Text(4);
      r.unit.annotation_key = s.Text(5);
      r.conversation_started = s.Int(6) != 0;
      if (r.conversation_started) {
        BF_ASSIGN_OR_RETURN(r.conversation_status,
                            WithRow(store::ParseConversationStatus(s.Text(7)),
                                    "conversation " + r.unit.conversation_key));
      } else {
        r.conversation_status = ConversationStatus::kRunning;
      }
      r.stop_reason = s.Text(8);
      r.assistant_turns = static_cast<int>(s.Int(9));
      r.annotated = s.Int(10) != 0;
      r.annotation = Annotation();
      if (r.annotated) {
        const std::string where = "annotation " + r.unit.annotation_key;
        r.judge = s.Text(11);
        r.rubric = s.Text(12);
        Annotation& a = r.annotation;
        BF_ASSIGN_OR_RETURN(a.outcome, WithRow(store::ParseOutcomeText(s.Text(13)), where));
        BF_ASSIGN_OR_RETURN(a.scale, WithRow(store::ParseScaleText(s.Text(14)), where));
        a.score = static_cast<int>(s.Int(15));
        a.reason = s.Text(16);
        BF_ASSIGN_OR_RETURN(a.turns, store::DecodeTurnScores(s.Text(17), where + " in " + path_));
        a.attempts = static_cast<int>(s.Int(18));
        a.usage.prompt_tokens = s.Int(19);
        a.usage.completion_tokens = s.Int(20);
        a.latency_ms = s.Double(21);
      } else {
        r.judge.clear();
        r.rubric.clear();
      }
      BF_RETURN_IF_ERROR(fn(r));
    }
    return Status::OK();
  }

  Result<std::map<std::string, RoleUsage>> UsageByRole(int64_t run_id) override {
    BF_ASSIGN_OR_RETURN(Statement s, Statement::Prepare(db_.get(), kUsageByRoleSql,
                                                        "sum model calls by role", path_,
                                                        /*persistent=*/false));
    ScopedReset reset(s);
    s.BindInt(1, run_id);
    std::map<std::string, RoleUsage> usage;
    while (true) {
      BF_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      RoleUsage& u = usage[s.Text(0)];
      ++u.calls;
      if (s.Int(1) == 0) ++u.failed_calls;
      u.usage.prompt_tokens += s.Int(2);
      u.usage.completion_tokens += s.Int(3);
      u.latency_ms_total += s.Double(4);
    }
    return usage;
  }

  Status PutCycleStep(const CycleStepRecord& step) override {
    Statement& s = put_cycle_step_;
    s.BindText(1, step.cycle);
    s.BindText(2, step.model);
    s.BindInt(3, step.round);
    s.BindText(4, step.step);
    s.BindText(5, step.status);
    s.BindText(6, step.detail_json);
    s.BindInt(7, step.updated_us != 0 ? step.updated_us : env_->WallMicros());
    return s.Run();
  }

  Result<std::vector<CycleStepRecord>> CycleSteps(const std::string& cycle) override {
    BF_ASSIGN_OR_RETURN(
        Statement s, Statement::Prepare(db_.get(), kSelectCycleStepsSql, "read cycle steps", path_,
                                        /*persistent=*/false));
    ScopedReset reset(s);
    s.BindText(1, cycle);
    std::vector<CycleStepRecord> steps;
    while (true) {
      BF_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      CycleStepRecord r;
      r.cycle = cycle;
      r.model = s.Text(0);
      r.round = static_cast<int>(s.Int(1));
      r.step = s.Text(2);
      r.status = s.Text(3);
      r.detail_json = s.Text(4);
      r.updated_us = s.Int(5);
      steps.push_back(std::move(r));
    }
    return steps;
  }

  Status PutPreferencePairs(const std::string& cycle, const std::string& model, int round,
                            const std::vector<PreferencePair>& pairs) override {
    // All or nothing: inside the caller's transaction when one is open, else in our own.
    const bool own = !in_transaction_;
    if (own) BF_RETURN_IF_ERROR(Begin());
    Status s = [&]() -> Status {
      delete_pairs_.BindText(1, cycle);
      delete_pairs_.BindText(2, model);
      delete_pairs_.BindInt(3, round);
      BF_RETURN_IF_ERROR(delete_pairs_.Run());
      for (size_t i = 0; i < pairs.size(); ++i) {
        const PreferencePair& p = pairs[i];
        // Bound text is not copied: it must outlive Run().
        const std::string prompt_json = store::EncodeMessages(p.prompt);
        const std::string provenance = p.provenance_json.empty() ? "{}" : p.provenance_json;
        Statement& q = insert_pair_;
        q.BindText(1, cycle);
        q.BindText(2, model);
        q.BindInt(3, round);
        q.BindInt(4, static_cast<int64_t>(i));
        q.BindText(5, p.id);
        q.BindText(6, p.kind);
        q.BindText(7, prompt_json);
        q.BindText(8, p.chosen);
        q.BindText(9, p.rejected);
        q.BindText(10, provenance);
        BF_RETURN_IF_ERROR(q.Run());
      }
      return Status::OK();
    }();
    if (!own) return s;
    if (!s.ok()) {
      (void)Rollback();
      return s;
    }
    return Commit();
  }

  Status PutAttackCall(const AttackCallRecord& call) override {
    Statement& s = insert_attack_call_;
    s.BindText(1, call.attack);
    s.BindInt(2, call.seq);
    s.BindText(3, call.role);
    s.BindText(4, call.request_hash);
    s.BindText(5, call.response);
    s.BindInt(6, call.prompt_tokens);
    s.BindInt(7, call.completion_tokens);
    return s.Run();
  }

  Result<std::optional<AttackCallRecord>> FindAttackCall(const std::string& attack,
                                                         int64_t seq) override {
    Statement& s = select_attack_call_;
    ScopedReset reset(s);
    s.BindText(1, attack);
    s.BindInt(2, seq);
    BF_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<AttackCallRecord>();
    AttackCallRecord r;
    r.attack = attack;
    r.seq = seq;
    r.role = s.Text(0);
    r.request_hash = s.Text(1);
    r.response = s.Text(2);
    r.prompt_tokens = s.Int(3);
    r.completion_tokens = s.Int(4);
    return std::optional<AttackCallRecord>(std::move(r));
  }

  Status PutAttack(const AttackRecord& a) override {
    Statement& s = put_attack_;
    s.BindText(1, a.key);
    s.BindText(2, a.campaign);
    s.BindInt(3, a.position);
    s.BindText(4, a.objective_id);
    s.BindText(5, a.category);
    s.BindText(6, a.strategy);
    s.BindText(7, a.converters);
    s.BindText(8, a.target);
    s.BindText(9, a.persona);
    s.BindInt(10, a.seed);
    s.BindText(11, a.outcome);
    s.BindInt(12, a.best_score);
    s.BindInt(13, a.turns_to_success);
    s.BindInt(14, a.backtracks);
    s.BindText(15, a.result_json);
    s.BindInt(16, a.updated_us != 0 ? a.updated_us : env_->WallMicros());
    return s.Run();
  }

  Result<std::optional<AttackRecord>> FindAttack(const std::string& key) override {
    BF_ASSIGN_OR_RETURN(
        std::vector<AttackRecord> found,
        SelectAttacks(std::string("SELECT ") + kAttackColumns + " FROM attacks WHERE key = ?1",
                      key));
    if (found.empty()) return std::optional<AttackRecord>();
    return std::optional<AttackRecord>(std::move(found[0]));
  }

  Result<std::vector<AttackRecord>> Attacks(const std::string& campaign) override {
    return SelectAttacks(std::string("SELECT ") + kAttackColumns +
                             " FROM attacks WHERE campaign = ?1 ORDER BY position, key",
                         campaign);
  }

  Result<std::vector<AttackRecord>> SelectAttacks(const std::string& sql, const std::string& arg) {
    BF_ASSIGN_OR_RETURN(Statement s, Statement::Prepare(db_.get(), sql, "read attacks", path_,
                                                        /*persistent=*/false));
    ScopedReset reset(s);
    s.BindText(1, arg);
    std::vector<AttackRecord> out;
    while (true) {
      BF_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      AttackRecord a;
      a.key = s.Text(0);
      a.campaign = s.Text(1);
      a.position = s.Int(2);
      a.objective_id = s.Text(3);
      a.category = s.Text(4);
      a.strategy = s.Text(5);
      a.converters = s.Text(6);
      a.target = s.Text(7);
      a.persona = s.Text(8);
      a.seed = s.Int(9);
      a.outcome = s.Text(10);
      a.best_score = static_cast<int>(s.Int(11));
      a.turns_to_success = static_cast<int>(s.Int(12));
      a.backtracks = static_cast<int>(s.Int(13));
      a.result_json = s.Text(14);
      a.updated_us = s.Int(15);
      out.push_back(std::move(a));
    }
    return out;
  }

  Result<std::vector<PreferencePair>> PreferencePairs(const std::string& cycle,
                                                      const std::string& model,
                                                      int round) override {
    BF_ASSIGN_OR_RETURN(
        Statement s, Statement::Prepare(db_.get(), kSelectPairsSql, "read preference pairs", path_,
                                        /*persistent=*/false));
    ScopedReset reset(s);
    s.BindText(1, cycle);
    s.BindText(2, model);
    s.BindInt(3, round);
    std::vector<PreferencePair> pairs;
    while (true) {
      BF_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      PreferencePair p;
      p.id = s.Text(0);
      p.kind = s.Text(1);
      BF_ASSIGN_OR_RETURN(
          p.prompt,
          WithRow(store::DecodeMessages(s.Text(2), "preference pair " + p.id + " prompt_json"),
                  "cycle " + cycle));
      p.chosen = s.Text(3);
      p.rejected = s.Text(4);
      p.provenance_json = s.Text(5);
      pairs.push_back(std::move(p));
    }
    return pairs;
  }

  Status PutRunManifest(int64_t run_id, const std::string& manifest_json) override {
    Statement& s = put_run_manifest_;
    s.BindInt(1, run_id);
    s.BindText(2, manifest_json);
    s.BindInt(3, env_->WallMicros());
    Status st = s.Run();
    if (!st.ok() && s.last_result_code() == SQLITE_CONSTRAINT_FOREIGNKEY) {
      return Status::NotFound("PutRunManifest: no run with id " + std::to_string(run_id) + " in " +
                              path_);
    }
    return st;
  }

  Result<RunManifestRecord> GetRunManifest(int64_t run_id) override {
    RunManifestRecord record;
    {
      Statement& s = select_run_manifest_;
      ScopedReset reset(s);
      s.BindInt(1, run_id);
      BF_ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) {
        if (s.Int(0) != 0) {
          record.state = RunManifestState::kBeforeSchema;
        } else {
          record.state = RunManifestState::kRecorded;
          record.manifest_json = s.Text(1);
          record.updated_us = s.Int(2);
        }
        return record;
      }
    }
    Statement& s = run_exists_;
    ScopedReset reset(s);
    s.BindInt(1, run_id);
    BF_ASSIGN_OR_RETURN(bool exists, s.Step());
    if (!exists) {
      return Status::NotFound("GetRunManifest: no run with id " + std::to_string(run_id) + " in " +
                              path_);
    }
    record.state = RunManifestState::kNotRecorded;
    return record;
  }

 private:
  // Adds the database path and row to a decoding error.
  template <typename T>
  Result<T> WithRow(Result<T> r, const std::string& where) const {
    if (r.ok()) return r;
    return r.status().WithContext(where + " in " + path_);
  }

  Result<RunRecord> RunFromRow(const Statement& s) const {
    RunRecord run;
    run.id = s.Int(0);
    run.name = s.Text(1);
    run.config_hash = s.Text(2);
    run.config_json = s.Text(3);
    run.suite_name = s.Text(4);
    run.suite_hash = s.Text(5);
    run.seed = static_cast<uint64_t>(s.Int(6));
    const std::string where = "run " + std::to_string(run.id) + " in " + path_ + ": targets_json";
    BF_ASSIGN_OR_RETURN(run.targets, store::DecodeStringList(s.Text(7), where));
    run.simulator = s.Text(8);
    run.judge = s.Text(9);
    BF_ASSIGN_OR_RETURN(
        run.status, WithRow(store::ParseRunStatus(s.Text(10)), "run " + std::to_string(run.id)));
    run.created_us = s.Int(11);
    run.updated_us = s.Int(12);
    BF_ASSIGN_OR_RETURN(run.target_identities,
                        store::DecodeStringList(
                            s.IsNull(13) ? "[]" : s.Text(13),
                            "run " + std::to_string(run.id) + " in " + path_ + ": run_targets"));
    run.target_identities.resize(run.targets.size());
    return run;
  }

  Result<std::optional<RunRecord>> ReadRun(Statement& s, const std::string& name) {
    ScopedReset reset(s);
    s.BindText(1, name);
    BF_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<RunRecord>();
    BF_ASSIGN_OR_RETURN(RunRecord run, RunFromRow(s));
    return std::optional<RunRecord>(std::move(run));
  }

  Result<std::optional<RunRecord>> ReadRunById(int64_t id) {
    Statement& s = select_run_by_id_;
    ScopedReset reset(s);
    s.BindInt(1, id);
    BF_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<RunRecord>();
    BF_ASSIGN_OR_RETURN(RunRecord run, RunFromRow(s));
    return std::optional<RunRecord>(std::move(run));
  }

  // Declared first so that it is destroyed last, after every statement is finalized.
  ConnectionHandle db_;
  std::string path_;
  Env* env_;  // not owned
  bool in_transaction_ = false;

  Statement begin_;
  Statement commit_;
  Statement rollback_;
  Statement insert_run_;
  Statement select_run_by_name_;
  Statement select_run_by_id_;
  Statement list_runs_;
  Statement update_run_status_;
  Statement link_unit_;
  Statement insert_run_target_;
  Statement insert_item_;
  Statement select_item_;
  Statement select_conversation_;
  Statement select_turns_;
  Statement insert_conversation_;
  Statement insert_turn_;
  Statement finish_conversation_;
  Statement has_annotation_;
  Statement insert_annotation_;
  Statement select_annotation_;
  Statement insert_model_call_;
  Statement put_cycle_step_;
  Statement delete_pairs_;
  Statement insert_pair_;
  Statement insert_attack_call_;
  Statement select_attack_call_;
  Statement put_attack_;
  Statement put_run_manifest_;
  Statement select_run_manifest_;
  Statement run_exists_;
};

// Runs a pragma that returns one text value (journal_mode).
Result<std::string> PragmaText(sqlite3* db, const char* sql, const std::string& path) {
  BF_ASSIGN_OR_RETURN(Statement s, Statement::Prepare(db, sql, sql, path, /*persistent=*/false));
  BF_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return Status::Internal(std::string(sql) + " on " + path + ": returned no row");
  return s.Text(0);
}

// Configures the connection: WAL, synchronous=NORMAL, bounded cache, foreign keys.
Status Configure(sqlite3* db, const std::string& path, const StoreOptions& options) {
  sqlite3_extended_result_codes(db, 1);
  int rc = sqlite3_busy_timeout(db, options.busy_timeout_ms);
  if (rc != SQLITE_OK) return store::SqliteStatus(db, rc, "set busy_timeout", path);
  BF_ASSIGN_OR_RETURN(std::string mode, PragmaText(db, "PRAGMA journal_mode = WAL", path));
  // An in-memory database (":memory:") has no journal file; it reports "memory".
  if (mode != "wal" && mode != "memory") {
    return Status::IOError("cannot switch " + path + " to write-ahead logging (journal_mode is \"" +
                           mode + "\"); the store needs a local filesystem that supports it");
  }
  // Negative cache_size is in KiB.
  int64_t cache_kib = options.cache_size_kib > 0 ? options.cache_size_kib : 2048;
  std::string pragmas =
      "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; "
      "PRAGMA journal_size_limit = 67108864; PRAGMA wal_autocheckpoint = 8192; "
      "PRAGMA cache_size = -" +
      std::to_string(cache_kib) + ";";
  return store::ExecSql(db, pragmas.c_str(), "configure connection", path);
}

}  // namespace

int Store::CurrentSchemaVersion() { return store::Migrations().back().version; }

Result<std::unique_ptr<Store>> Store::OpenSqlite(const std::string& path,
                                                 const StoreOptions& options) {
  if (path.empty()) {
    return Status::InvalidArgument("result store path is empty; expected a file path");
  }
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  ConnectionHandle db(raw);  // sqlite allocates a handle even when opening fails
  if (rc != SQLITE_OK) {
    return Status::IOError("cannot open result store " + path + ": " +
                           (db != nullptr ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc)) +
                           "; expected a writable file in an existing directory");
  }
  Status s = Configure(db.get(), path, options);
  if (s.ok()) s = store::MigrateSchema(db.get(), path, CurrentSchemaVersion());
  if (!s.ok()) {
    if ((sqlite3_extended_errcode(db.get()) & 0xff) == SQLITE_NOTADB) {
      return Status::InvalidArgument(
          path + " is not an SQLite database (sqlite: " + sqlite3_errmsg(db.get()) +
          "); expected a breakfix result store or a path for a new "
          "one");
    }
    return s;
  }
  auto store = std::make_unique<SqliteStore>(std::move(db), path,
                                             options.env != nullptr ? options.env : Env::Default());
  BF_RETURN_IF_ERROR(store->Prepare());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace breakfix
