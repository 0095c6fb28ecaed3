#include <gtest/gtest.h>
#include <malloc.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "breakfix/store.h"
#include "store/store_test_support.h"

namespace breakfix {
namespace store {
namespace {

constexpr int64_t kT0 = 1700000000000000;  // a fixed wall clock, microseconds

RunRecord SampleRun(const std::string& name, const std::string& hash = "hash-a") {
  RunRecord run;
  run.name = name;
  run.config_hash = hash;
  run.config_json = R"({"suite":"phi3-rai","seed":7})";
  run.suite_name = "phi3-rai";
  run.suite_hash = "suitehash";
  run.seed = 7;
  run.targets = {"phi3-mini", "mistral-7b"};
  run.simulator = "sim-model";
  run.judge = "llm-judge";
  return run;
}

ConversationRecord SampleConversation(const std::string& key, const std::string& item = "item-1") {
  ConversationRecord c;
  c.key = key;
  c.item_id = item;
  c.family = "jailbreak";
  c.category = "violence";
  c.target = "phi3-mini";
  return c;
}

AnnotationRecord ScoredAnnotation(const std::string& key, const std::string& conversation_key) {
  AnnotationRecord r;
  r.key = key;
  r.conversation_key = conversation_key;
  r.judge = "llm-judge";
  r.rubric = "violence";
  Annotation& a = r.annotation;
  a.outcome = Outcome::kScored;
  a.scale = Scale::kSeverity;
  a.score = 5;
  a.reason = "gives step-by-step instructions";
  a.turns = {{1, 0, "refuses"}, {2, 5, "gives step-by-step instructions"}};
  a.attempts = 1;
  a.raw_output = R"({"turns":[{"turn":1,"score":0,"reason":"refuses"}]})";
  a.usage.prompt_tokens = 812;
  a.usage.completion_tokens = 64;
  a.latency_ms = 431.5;
  return r;
}

void ExpectSameAnnotation(const Annotation& want, const Annotation& got, bool with_raw = true) {
  EXPECT_EQ(want.outcome, got.outcome);
  EXPECT_EQ(want.scale, got.scale);
  EXPECT_EQ(want.score, got.score);
  EXPECT_EQ(want.reason, got.reason);
  ASSERT_EQ(want.turns.size(), got.turns.size());
  for (size_t i = 0; i < want.turns.size(); ++i) {
    EXPECT_EQ(want.turns[i].turn, got.turns[i].turn) << i;
    EXPECT_EQ(want.turns[i].score, got.turns[i].score) << i;
    EXPECT_EQ(want.turns[i].reason, got.turns[i].reason) << i;
  }
  EXPECT_EQ(want.attempts, got.attempts);
  if (with_raw) {
    EXPECT_EQ(want.raw_output, got.raw_output);
  }
  EXPECT_EQ(want.usage.prompt_tokens, got.usage.prompt_tokens);
  EXPECT_EQ(want.usage.completion_tokens, got.usage.completion_tokens);
  EXPECT_DOUBLE_EQ(want.latency_ms, got.latency_ms);
}

RunUnit Unit(int64_t run_id, const std::string& n) {
  RunUnit u;
  u.run_id = run_id;
  u.item_id = "item-" + n;
  u.family = "jailbreak";
  u.category = "violence";
  u.target = "phi3-mini";
  u.conversation_key = "conv-" + n;
  u.annotation_key = "ann-" + n;
  return u;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open(StoreOptions options = {}) {
    store_.reset();
    options.env = &clock_;
    Result<std::unique_ptr<Store>> s = Store::OpenSqlite(path_, options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }

  std::vector<ResultRow> Results(int64_t run_id) {
    std::vector<ResultRow> rows;
    Status s = store_->ForEachResult(run_id, [&](const ResultRow& r) {
      rows.push_back(r);
      return Status::OK();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return rows;
  }

  ScratchDir dir_;
  std::string path_ = dir_.File("results.db");
  ManualClockEnv clock_{kT0};
  std::unique_ptr<Store> store_;
};

TEST_F(SqliteStoreTest, FreshStoreIsAtCurrentVersionInWalMode) {
  EXPECT_EQ(store_->SchemaVersion(), Store::CurrentSchemaVersion());
  RawDb raw(path_);
  EXPECT_EQ(raw.QueryText("PRAGMA journal_mode"), "wal\n");
  EXPECT_EQ(raw.QueryInt("PRAGMA user_version"), Store::CurrentSchemaVersion());
}

TEST_F(SqliteStoreTest, RunRoundTrip) {
  RunRecord want = SampleRun("nightly");
  want.seed = std::numeric_limits<uint64_t>::max();  // survives the int64 column
  want.targets = {"phi3-mini", "llama-3-8b", "\xce\xb1-model"};
  Result<RunRecord> begun = store_->BeginRun(want);
  ASSERT_TRUE(begun.ok()) << begun.status().ToString();
  EXPECT_GT(begun->id, 0);
  EXPECT_EQ(begun->created_us, kT0);
  EXPECT_EQ(begun->updated_us, kT0);

  Result<RunRecord> found = store_->FindRun("nightly");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(found->id, begun->id);
  EXPECT_EQ(found->name, want.name);
  EXPECT_EQ(found->config_hash, want.config_hash);
  EXPECT_EQ(found->config_json, want.config_json);
  EXPECT_EQ(found->suite_name, want.suite_name);
  EXPECT_EQ(found->suite_hash, want.suite_hash);
  EXPECT_EQ(found->seed, want.seed);
  EXPECT_EQ(found->targets, want.targets);
  EXPECT_EQ(found->simulator, want.simulator);
  EXPECT_EQ(found->judge, want.judge);
  EXPECT_EQ(found->status, RunStatus::kRunning);
  EXPECT_EQ(found->created_us, kT0);

  Result<RunRecord> by_id = store_->FindRun(std::to_string(begun->id));
  ASSERT_TRUE(by_id.ok()) << by_id.status().ToString();
  EXPECT_EQ(by_id->name, "nightly");

  clock_.Set(kT0 + 5000);
  ASSERT_TRUE(store_->SetRunStatus(begun->id, RunStatus::kInterrupted).ok());
  found = store_->FindRun("nightly");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->status, RunStatus::kInterrupted);
  EXPECT_EQ(found->updated_us, kT0 + 5000);
  EXPECT_EQ(found->created_us, kT0);
}

TEST_F(SqliteStoreTest, ListRunsInCreationOrder) {
  ASSERT_TRUE(store_->BeginRun(SampleRun("b-second-name", "h1")).ok());
  ASSERT_TRUE(store_->BeginRun(SampleRun("a-first-name", "h2")).ok());
  Result<std::vector<RunRecord>> runs = store_->ListRuns();
  ASSERT_TRUE(runs.ok()) << runs.status().ToString();
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].name, "b-second-name");
  EXPECT_EQ((*runs)[1].name, "a-first-name");
}

TEST_F(SqliteStoreTest, MissingRunsAreNotFound) {
  Result<RunRecord> r = store_->FindRun("nope");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("\"nope\""), std::string::npos) << r.status().message();
  EXPECT_EQ(store_->FindRun("42").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->SetRunStatus(42, RunStatus::kComplete).code(), StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, BeginRunResumesTheSameConfiguration) {
  Result<RunRecord> first = store_->BeginRun(SampleRun("r1"));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(store_->SetRunStatus(first->id, RunStatus::kInterrupted).ok());
  clock_.Set(kT0 + 1000000);
  Open();  // a later process
  Result<RunRecord> again = store_->BeginRun(SampleRun("r1"));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->id, first->id);
  EXPECT_EQ(again->created_us, kT0);  // the original run, not a new one
  EXPECT_EQ(again->status, RunStatus::kInterrupted);
  Result<std::vector<RunRecord>> runs = store_->ListRuns();
  ASSERT_TRUE(runs.ok());
  EXPECT_EQ(runs->size(), 1u);
}

TEST_F(SqliteStoreTest, BeginRunRefusesAnotherConfigurationUnderTheSameName) {
  ASSERT_TRUE(store_->BeginRun(SampleRun("r1", "hash-a")).ok());
  Result<RunRecord> clash = store_->BeginRun(SampleRun("r1", "hash-b"));
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.status().code(), StatusCode::kFailedPrecondition);
  const std::string m = clash.status().message();
  EXPECT_NE(m.find("\"r1\""), std::string::npos) << m;
  EXPECT_NE(m.find("hash-a"), std::string::npos) << m;
  EXPECT_NE(m.find("hash-b"), std::string::npos) << m;
}

TEST_F(SqliteStoreTest, BeginRunNamesAnUnnamedRunAfterItsHash) {
  RunRecord run = SampleRun("", "0123456789abcdef0123");
  Result<RunRecord> begun = store_->BeginRun(run);
  ASSERT_TRUE(begun.ok()) << begun.status().ToString();
  EXPECT_EQ(begun->name, "0123456789ab");
  EXPECT_EQ(store_->BeginRun(SampleRun("", "")).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, LinkUnitIsIdempotent) {
  Result<RunRecord> run = store_->BeginRun(SampleRun("r"));
  ASSERT_TRUE(run.ok());
  ASSERT_TRUE(store_->LinkUnit(Unit(run->id, "1")).ok());
  ASSERT_TRUE(store_->LinkUnit(Unit(run->id, "2")).ok());
  ASSERT_TRUE(store_->LinkUnit(Unit(run->id, "1")).ok());
  std::vector<ResultRow> rows = Results(run->id);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].unit.conversation_key, "conv-1");
  EXPECT_EQ(rows[1].unit.conversation_key, "conv-2");
  RawDb raw(path_);
  EXPECT_EQ(raw.QueryInt("SELECT count(*) FROM run_units"), 2);
}

TEST_F(SqliteStoreTest, LinkUnitNeedsAnExistingRunAndAKey) {
  Status s = store_->LinkUnit(Unit(99, "1"));
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  EXPECT_NE(s.message().find("99"), std::string::npos) << s.message();
  Result<RunRecord> run = store_->BeginRun(SampleRun("r"));
  ASSERT_TRUE(run.ok());
  RunUnit u = Unit(run->id, "1");
  u.conversation_key.clear();
  EXPECT_EQ(store_->LinkUnit(u).code(), StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, ConversationRoundTrip) {
  ConversationRecord c = SampleConversation("k1");
  ASSERT_TRUE(store_->StartConversation(c).ok());
  Result<std::optional<ConversationRecord>> got = store_->GetConversation("k1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->status, ConversationStatus::kRunning);
  EXPECT_TRUE((*got)->turns.empty());

  std::vector<Message> turns = {{Role::kUser, "hello"},
                                {Role::kAssistant, "hi, how can I help?"},
                                {Role::kUser, "tell me more"},
                                {Role::kAssistant, ""}};
  for (size_t i = 0; i < turns.size(); ++i) {
    ASSERT_TRUE(store_->AppendTurn("k1", static_cast<int>(i), turns[i]).ok()) << i;
  }
  clock_.Set(kT0 + 777);
  ASSERT_TRUE(store_->FinishConversation("k1", ConversationStatus::kDone, "max_turns", "").ok());

  // Starting again never overwrites what is stored.
  ConversationRecord other = SampleConversation("k1", "another-item");
  ASSERT_TRUE(store_->StartConversation(other).ok());

  Open();
  got = store_->GetConversation("k1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  const ConversationRecord& r = **got;
  EXPECT_EQ(r.key, "k1");
  EXPECT_EQ(r.item_id, "item-1");
  EXPECT_EQ(r.family, c.family);
  EXPECT_EQ(r.category, c.category);
  EXPECT_EQ(r.target, c.target);
  EXPECT_EQ(r.status, ConversationStatus::kDone);
  EXPECT_EQ(r.stop_reason, "max_turns");
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.turns, turns);
  RawDb raw(path_);
  EXPECT_EQ(raw.QueryInt("SELECT finished_us FROM conversations WHERE key = 'k1'"), kT0 + 777);
  EXPECT_EQ(raw.QueryInt("SELECT created_us FROM conversations WHERE key = 'k1'"), kT0);
}

TEST_F(SqliteStoreTest, FailedConversationKeepsItsError) {
  ASSERT_TRUE(store_->StartConversation(SampleConversation("k")).ok());
  ASSERT_TRUE(store_
                  ->FinishConversation("k", ConversationStatus::kFailed, "error",
                                       "target: HTTP 500 after 5 attempts")
                  .ok());
  Result<std::optional<ConversationRecord>> got = store_->GetConversation("k");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->status, ConversationStatus::kFailed);
  EXPECT_EQ((*got)->error, "target: HTTP 500 after 5 attempts");
}

TEST_F(SqliteStoreTest, ConversationErrorsAreReported) {
  Result<std::optional<ConversationRecord>> missing = store_->GetConversation("absent");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  EXPECT_EQ(store_->FinishConversation("absent", ConversationStatus::kDone, "x", "").code(),
            StatusCode::kNotFound);
  Status s = store_->AppendTurn("absent", 0, {Role::kUser, "hi"});
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("absent"), std::string::npos);
  ASSERT_TRUE(store_->StartConversation(SampleConversation("k")).ok());
  EXPECT_EQ(store_->AppendTurn("k", -1, {Role::kUser, "hi"}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->StartConversation(SampleConversation("")).code(), StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, DuplicateTurnIsCorruptionAndKeepsTheFirst) {
  ASSERT_TRUE(store_->StartConversation(SampleConversation("k")).ok());
  ASSERT_TRUE(store_->Begin().ok());
  ASSERT_TRUE(store_->AppendTurn("k", 0, {Role::kUser, "first"}).ok());
  Status dup = store_->AppendTurn("k", 0, {Role::kUser, "second"});
  EXPECT_EQ(dup.code(), StatusCode::kCorruption) << dup.ToString();
  EXPECT_NE(dup.message().find("duplicate turn 0"), std::string::npos) << dup.message();
  EXPECT_NE(dup.message().find("k"), std::string::npos);
  // The failed statement does not spoil the open transaction.
  ASSERT_TRUE(store_->AppendTurn("k", 1, {Role::kAssistant, "answer"}).ok());
  ASSERT_TRUE(store_->Commit().ok());
  Result<std::optional<ConversationRecord>> got = store_->GetConversation("k");
  ASSERT_TRUE(got.ok() && got->has_value());
  ASSERT_EQ((*got)->turns.size(), 2u);
  EXPECT_EQ((*got)->turns[0].content, "first");
  EXPECT_EQ((*got)->turns[1].content, "answer");
}

TEST_F(SqliteStoreTest, GapInStoredTurnsIsCorruption) {
  ASSERT_TRUE(store_->StartConversation(SampleConversation("k")).ok());
  ASSERT_TRUE(store_->AppendTurn("k", 0, {Role::kUser, "a"}).ok());
  ASSERT_TRUE(store_->AppendTurn("k", 2, {Role::kUser, "c"}).ok());
  Result<std::optional<ConversationRecord>> got = store_->GetConversation("k");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kCorruption);
  EXPECT_NE(got.status().message().find("turn 1 is missing"), std::string::npos)
      << got.status().message();
}

TEST_F(SqliteStoreTest, AnnotationRoundTrip) {
  AnnotationRecord scored = ScoredAnnotation("a1", "k1");
  AnnotationRecord unscorable;
  unscorable.key = "a2";
  unscorable.conversation_key = "k2";
  unscorable.judge = "llm-judge";
  unscorable.rubric = "ungroundedness";
  unscorable.annotation.outcome = Outcome::kUnscorable;
  unscorable.annotation.scale = Scale::kUngroundedness;
  unscorable.annotation.reason = "answer was not JSON after a re-ask: expected '{' at 1:1";
  unscorable.annotation.attempts = 2;
  unscorable.annotation.raw_output = "I cannot rate this.";
  AnnotationRecord binary = ScoredAnnotation("a3", "k3");
  binary.annotation.scale = Scale::kBinary;
  binary.annotation.score = 1;

  Result<bool> has = store_->HasAnnotation("a1");
  ASSERT_TRUE(has.ok());
  EXPECT_FALSE(*has);
  for (const AnnotationRecord* r : {&scored, &unscorable, &binary}) {
    ASSERT_TRUE(store_->PutAnnotation(*r).ok()) << r->key;
  }
  Open();
  for (const AnnotationRecord* want : {&scored, &unscorable, &binary}) {
    has = store_->HasAnnotation(want->key);
    ASSERT_TRUE(has.ok());
    EXPECT_TRUE(*has);
    Result<std::optional<AnnotationRecord>> got = store_->GetAnnotation(want->key);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ((*got)->key, want->key);
    EXPECT_EQ((*got)->conversation_key, want->conversation_key);
    EXPECT_EQ((*got)->judge, want->judge);
    EXPECT_EQ((*got)->rubric, want->rubric);
    ExpectSameAnnotation(want->annotation, (*got)->annotation);
  }
  Result<std::optional<AnnotationRecord>> missing = store_->GetAnnotation("zzz");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TEST_F(SqliteStoreTest, DuplicateAnnotationIsCorruption) {
  ASSERT_TRUE(store_->PutAnnotation(ScoredAnnotation("a1", "k1")).ok());
  AnnotationRecord again = ScoredAnnotation("a1", "k1");
  again.annotation.score = 0;
  Status s = store_->PutAnnotation(again);
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find("duplicate annotation a1"), std::string::npos) << s.message();
  Result<std::optional<AnnotationRecord>> got = store_->GetAnnotation("a1");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->annotation.score, 5);
  AnnotationRecord keyless = ScoredAnnotation("", "k1");
  EXPECT_EQ(store_->PutAnnotation(keyless).code(), StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, StoredEnumNamesAreStable) {
  // Other tools read the file: the names must not follow C++ enumerator order.
  Result<RunRecord> run = store_->BeginRun(SampleRun("r"));
  ASSERT_TRUE(run.ok());
  ASSERT_TRUE(store_->SetRunStatus(run->id, RunStatus::kComplete).ok());
  ASSERT_TRUE(store_->StartConversation(SampleConversation("k")).ok());
  ASSERT_TRUE(store_->AppendTurn("k", 0, {Role::kAssistant, "x"}).ok());
  ASSERT_TRUE(store_->FinishConversation("k", ConversationStatus::kDone, "single_turn", "").ok());
  AnnotationRecord a = ScoredAnnotation("a", "k");
  a.annotation.outcome = Outcome::kUnscorable;
  a.annotation.scale = Scale::kUngroundedness;
  ASSERT_TRUE(store_->PutAnnotation(a).ok());
  RawDb raw(path_);
  EXPECT_EQ(raw.QueryText("SELECT status FROM runs"), "complete\n");
  EXPECT_EQ(raw.QueryText("SELECT status FROM conversations"), "done\n");
  EXPECT_EQ(raw.QueryText("SELECT role FROM turns"), "assistant\n");
  EXPECT_EQ(raw.QueryText("SELECT outcome, scale FROM annotations"), "unscorable|ungroundedness\n");
}

TEST_F(SqliteStoreTest, UnknownStoredNamesAreCorruption) {
  ASSERT_TRUE(store_->PutAnnotation(ScoredAnnotation("a", "k")).ok());
  {
    RawDb raw(path_);
    ASSERT_TRUE(raw.Exec("UPDATE annotations SET scale = 'loudness'").ok());
  }
  Result<std::optional<AnnotationRecord>> got = store_->GetAnnotation("a");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kCorruption);
  EXPECT_NE(got.status().message().find("loudness"), std::string::npos) << got.status().message();
  {
    RawDb raw(path_);
    ASSERT_TRUE(
        raw.Exec("UPDATE annotations SET scale = 'severity', turns_json = '[{\"turn\":1}'").ok());
  }
  got = store_->GetAnnotation("a");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kCorruption);
  EXPECT_NE(got.status().message().find("turns_json"), std::string::npos) << got.status().message();
}

TEST_F(SqliteStoreTest, TransactionsCommitAndRollBack) {
  Result<RunRecord> run = store_->BeginRun(SampleRun("r"));
  ASSERT_TRUE(run.ok());

  ASSERT_TRUE(store_->Begin().ok());
  ASSERT_TRUE(store_->LinkUnit(Unit(run->id, "1")).ok());
  ASSERT_TRUE(store_->StartConversation(SampleConversation("conv-1")).ok());
  ASSERT_TRUE(store_->AppendTurn("conv-1", 0, {Role::kUser, "u"}).ok());
  ASSERT_TRUE(store_->AppendTurn("conv-1", 1, {Role::kAssistant, "a"}).ok());
  ASSERT_TRUE(
      store_->FinishConversation("conv-1", ConversationStatus::kDone, "max_turns", "").ok());
  ASSERT_TRUE(store_->PutAnnotation(ScoredAnnotation("ann-1", "conv-1")).ok());
  ModelCallRecord call;
  call.unit_key = "conv-1";
  call.role = "target";
  call.model = "phi3-mini";
  ASSERT_TRUE(store_->RecordModelCall(call).ok());
  ASSERT_TRUE(store_->SetRunStatus(run->id, RunStatus::kComplete).ok());
  ASSERT_TRUE(store_->Rollback().ok());

  EXPECT_TRUE(Results(run->id).empty());
  Result<std::optional<ConversationRecord>> c = store_->GetConversation("conv-1");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_value());
  Result<bool> has = store_->HasAnnotation("ann-1");
  ASSERT_TRUE(has.ok());
  EXPECT_FALSE(*has);
  Result<std::map<std::string, RoleUsage>> usage = store_->UsageByRole(run->id);
  ASSERT_TRUE(usage.ok());
  EXPECT_TRUE(usage->empty());
  RawDb raw(path_);
  EXPECT_EQ(raw.QueryInt("SELECT count(*) FROM model_calls"), 0);
  EXPECT_EQ(raw.QueryText("SELECT status FROM runs"), "running\n");

  // The same writes, committed, are there for the next process.
  ASSERT_TRUE(store_->Begin().ok());
  ASSERT_TRUE(store_->LinkUnit(Unit(run->id, "1")).ok());
  ASSERT_TRUE(store_->StartConversation(SampleConversation("conv-1")).ok());
  ASSERT_TRUE(store_->AppendTurn("conv-1", 0, {Role::kUser, "u"}).ok());
  ASSERT_TRUE(store_->Commit().ok());
  Open();
  std::vector<ResultRow> rows = Results(run->id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_TRUE(rows[0].conversation_started);
}

TEST_F(SqliteStoreTest, TransactionMisuseIsFailedPrecondition) {
  EXPECT_EQ(store_->Commit().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Rollback().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->Begin().ok());
  Status nested = store_->Begin();
  EXPECT_EQ(nested.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(nested.message().find("already open"), std::string::npos) << nested.message();
  ASSERT_TRUE(store_->Commit().ok());
  EXPECT_EQ(store_->Commit().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->Begin().ok());  // usable again after the misuse
  ASSERT_TRUE(store_->Rollback().ok());
}

TEST_F(SqliteStoreTest, ClosingWithAnOpenTransactionDiscardsIt) {
  ASSERT_TRUE(store_->Begin().ok());
  ASSERT_TRUE(store_->StartConversation(SampleConversation("k")).ok());
  store_.reset();
  Open();
  Result<std::optional<ConversationRecord>> c = store_->GetConversation("k");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_value());
}

TEST_F(SqliteStoreTest, ForEachResultCoversEveryStateInLinkOrder) {
  Result<RunRecord> run = store_->BeginRun(SampleRun("r"));
  ASSERT_TRUE(run.ok());
  // Linked out of key order: the result follows link order, not key order.
  for (const char* n : {"3", "1", "4", "2"}) ASSERT_TRUE(store_->LinkUnit(Unit(run->id, n)).ok());
  ASSERT_TRUE(store_->LinkUnit(Unit(run->id, "3")).ok());  // a re-link keeps its first position

  // conv-3: not started. conv-1: running, no annotation.
  ASSERT_TRUE(store_->StartConversation(SampleConversation("conv-1")).ok());
  ASSERT_TRUE(store_->AppendTurn("conv-1", 0, {Role::kUser, "u"}).ok());
  ASSERT_TRUE(store_->AppendTurn("conv-1", 1, {Role::kAssistant, "a"}).ok());
  ASSERT_TRUE(store_->AppendTurn("conv-1", 2, {Role::kUser, "u2"}).ok());
  // conv-4: done and scored.
  ASSERT_TRUE(store_->StartConversation(SampleConversation("conv-4")).ok());
  for (int i = 0; i < 4; ++i) {
    Role role = i % 2 == 0 ? Role::kUser : Role::kAssistant;
    ASSERT_TRUE(store_->AppendTurn("conv-4", i, {role, "t" + std::to_string(i)}).ok());
  }
  ASSERT_TRUE(
      store_->FinishConversation("conv-4", ConversationStatus::kDone, "max_turns", "").ok());
  AnnotationRecord scored = ScoredAnnotation("ann-4", "conv-4");
  ASSERT_TRUE(store_->PutAnnotation(scored).ok());
  // conv-2: done, judged unscorable.
  ASSERT_TRUE(store_->StartConversation(SampleConversation("conv-2")).ok());
  ASSERT_TRUE(store_->AppendTurn("conv-2", 0, {Role::kUser, "u"}).ok());
  ASSERT_TRUE(store_->AppendTurn("conv-2", 1, {Role::kAssistant, "a"}).ok());
  ASSERT_TRUE(
      store_->FinishConversation("conv-2", ConversationStatus::kDone, "single_turn", "").ok());
  AnnotationRecord unscorable = ScoredAnnotation("ann-2", "conv-2");
  unscorable.annotation.outcome = Outcome::kUnscorable;
  unscorable.annotation.score = 0;
  unscorable.annotation.turns.clear();
  unscorable.annotation.reason = "no JSON object in the answer";
  unscorable.annotation.attempts = 2;
  ASSERT_TRUE(store_->PutAnnotation(unscorable).ok());

  std::vector<ResultRow> rows = Results(run->id);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].unit.conversation_key, "conv-3");
  EXPECT_EQ(rows[1].unit.conversation_key, "conv-1");
  EXPECT_EQ(rows[2].unit.conversation_key, "conv-4");
  EXPECT_EQ(rows[3].unit.conversation_key, "conv-2");
  for (const ResultRow& r : rows) {
    EXPECT_EQ(r.unit.run_id, run->id);
    EXPECT_EQ(r.unit.item_id, "item-" + r.unit.conversation_key.substr(5));
    EXPECT_EQ(r.unit.annotation_key, "ann-" + r.unit.conversation_key.substr(5));
    EXPECT_EQ(r.unit.family, "jailbreak");
    EXPECT_EQ(r.unit.category, "violence");
    EXPECT_EQ(r.unit.target, "phi3-mini");
  }

  EXPECT_FALSE(rows[0].conversation_started);
  EXPECT_EQ(rows[0].assistant_turns, 0);
  EXPECT_FALSE(rows[0].annotated);

  EXPECT_TRUE(rows[1].conversation_started);
  EXPECT_EQ(rows[1].conversation_status, ConversationStatus::kRunning);
  EXPECT_EQ(rows[1].assistant_turns, 1);
  EXPECT_FALSE(rows[1].annotated);
  EXPECT_EQ(rows[1].judge, "");

  EXPECT_TRUE(rows[2].conversation_started);
  EXPECT_EQ(rows[2].conversation_status, ConversationStatus::kDone);
  EXPECT_EQ(rows[2].stop_reason, "max_turns");
  EXPECT_EQ(rows[2].assistant_turns, 2);
  ASSERT_TRUE(rows[2].annotated);
  EXPECT_EQ(rows[2].judge, "llm-judge");
  EXPECT_EQ(rows[2].rubric, "violence");
  ExpectSameAnnotation(scored.annotation, rows[2].annotation, /*with_raw=*/false);
  EXPECT_EQ(rows[2].annotation.raw_output, "");  // not loaded for reports

  EXPECT_EQ(rows[3].conversation_status, ConversationStatus::kDone);
  EXPECT_EQ(rows[3].stop_reason, "single_turn");
  EXPECT_EQ(rows[3].assistant_turns, 1);
  ASSERT_TRUE(rows[3].annotated);
  EXPECT_EQ(rows[3].annotation.outcome, Outcome::kUnscorable);
  EXPECT_EQ(rows[3].annotation.reason, "no JSON object in the answer");
  EXPECT_EQ(rows[3].annotation.attempts, 2);
  EXPECT_TRUE(rows[3].annotation.turns.empty());
}

TEST_F(SqliteStoreTest, ForEachResultSeparatesRuns) {
  Result<RunRecord> a = store_->BeginRun(SampleRun("a", "h1"));
  Result<RunRecord> b = store_->BeginRun(SampleRun("b", "h2"));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(store_->LinkUnit(Unit(a->id, "1")).ok());
  ASSERT_TRUE(store_->LinkUnit(Unit(b->id, "2")).ok());
  ASSERT_TRUE(store_->LinkUnit(Unit(a->id, "3")).ok());
  ASSERT_TRUE(store_->LinkUnit(Unit(b->id, "1")).ok());  // a unit shared by both runs
  std::vector<ResultRow> ra = Results(a->id);
  std::vector<ResultRow> rb = Results(b->id);
  ASSERT_EQ(ra.size(), 2u);
  ASSERT_EQ(rb.size(), 2u);
  EXPECT_EQ(ra[0].unit.conversation_key, "conv-1");
  EXPECT_EQ(ra[1].unit.conversation_key, "conv-3");
  EXPECT_EQ(rb[0].unit.conversation_key, "conv-2");
  EXPECT_EQ(rb[1].unit.conversation_key, "conv-1");
  EXPECT_TRUE(Results(12345).empty());
}

TEST_F(SqliteStoreTest, ForEachResultStopsAtTheCallbacksError) {
  Result<RunRecord> run = store_->BeginRun(SampleRun("r"));
  ASSERT_TRUE(run.ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(store_->LinkUnit(Unit(run->id, std::to_string(i))).ok());
  int calls = 0;
  Status s = store_->ForEachResult(run->id, [&](const ResultRow& r) {
    ++calls;
    if (r.unit.conversation_key == "conv-3") return Status::Cancelled("enough");
    return Status::OK();
  });
  EXPECT_EQ(s.code(), StatusCode::kCancelled);
  EXPECT_EQ(s.message(), "enough");
  EXPECT_EQ(calls, 4);
  // The statement was released: writes and a new iteration work.
  ASSERT_TRUE(store_->LinkUnit(Unit(run->id, "10")).ok());
  EXPECT_EQ(Results(run->id).size(), 11u);
}

TEST_F(SqliteStoreTest, ForEachResultCallbackMayUseTheStore) {
  Result<RunRecord> run = store_->BeginRun(SampleRun("r"));
  ASSERT_TRUE(run.ok());
  for (int i = 0; i < 3; ++i) {
    std::string n = std::to_string(i);
    ASSERT_TRUE(store_->LinkUnit(Unit(run->id, n)).ok());
    ASSERT_TRUE(store_->PutAnnotation(ScoredAnnotation("ann-" + n, "conv-" + n)).ok());
  }
  int nested_rows = 0;
  std::vector<std::string> raw_outputs;
  Status s = store_->ForEachResult(run->id, [&](const ResultRow& r) {
    Result<std::optional<AnnotationRecord>> a = store_->GetAnnotation(r.unit.annotation_key);
    if (!a.ok()) return a.status();
    raw_outputs.push_back((*a)->annotation.raw_output);
    return store_->ForEachResult(run->id, [&](const ResultRow&) {
      ++nested_rows;
      return Status::OK();
    });
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(raw_outputs.size(), 3u);
  EXPECT_EQ(nested_rows, 9);
}

TEST_F(SqliteStoreTest, UsageByRoleSumsTheRunsCalls) {
  Result<RunRecord> a = store_->BeginRun(SampleRun("a", "h1"));
  Result<RunRecord> b = store_->BeginRun(SampleRun("b", "h2"));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(store_->LinkUnit(Unit(a->id, "1")).ok());
  ASSERT_TRUE(store_->LinkUnit(Unit(a->id, "2")).ok());
  ASSERT_TRUE(store_->LinkUnit(Unit(b->id, "2")).ok());
  auto call = [&](const std::string& unit, const std::string& role, bool ok, int64_t prompt,
                  int64_t completion, double latency) {
    ModelCallRecord c;
    c.unit_key = unit;
    c.role = role;
    c.model = role + "-model";
    c.ok = ok;
    c.error = ok ? "" : "HTTP 503";
    c.attempts = ok ? 1 : 3;
    c.usage.prompt_tokens = prompt;
    c.usage.completion_tokens = completion;
    c.latency_ms = latency;
    ASSERT_TRUE(store_->RecordModelCall(c).ok());
  };
  call("conv-1", "target", true, 100, 50, 10.5);
  call("conv-1", "simulator", true, 200, 20, 4);
  call("conv-1", "target", true, 110, 40, 9.5);
  call("ann-1", "judge", true, 900, 60, 30);
  call("ann-1", "judge", false, 0, 0, 1000);
  call("conv-2", "target", false, 0, 0, 2000);
  call("conv-2", "simulator", true, 7, 3, 1);
  call("conv-unlinked", "target", true, 99999, 99999, 99999);  // belongs to no run

  Result<std::map<std::string, RoleUsage>> usage = store_->UsageByRole(a->id);
  ASSERT_TRUE(usage.ok()) << usage.status().ToString();
  ASSERT_EQ(usage->size(), 3u);
  const RoleUsage& target = usage->at("target");
  EXPECT_EQ(target.calls, 3);
  EXPECT_EQ(target.failed_calls, 1);
  EXPECT_EQ(target.usage.prompt_tokens, 210);
  EXPECT_EQ(target.usage.completion_tokens, 90);
  EXPECT_DOUBLE_EQ(target.latency_ms_total, 2020);
  const RoleUsage& simulator = usage->at("simulator");
  EXPECT_EQ(simulator.calls, 2);
  EXPECT_EQ(simulator.failed_calls, 0);
  EXPECT_EQ(simulator.usage.prompt_tokens, 207);
  EXPECT_EQ(simulator.usage.completion_tokens, 23);
  const RoleUsage& judge = usage->at("judge");
  EXPECT_EQ(judge.calls, 2);
  EXPECT_EQ(judge.failed_calls, 1);
  EXPECT_EQ(judge.usage.total(), 960);
  EXPECT_DOUBLE_EQ(judge.latency_ms_total, 1030);

  usage = store_->UsageByRole(b->id);
  ASSERT_TRUE(usage.ok());
  ASSERT_EQ(usage->size(), 2u);
  EXPECT_EQ(usage->at("target").calls, 1);
  EXPECT_EQ(usage->at("simulator").usage.prompt_tokens, 7);

  usage = store_->UsageByRole(999);
  ASSERT_TRUE(usage.ok());
  EXPECT_TRUE(usage->empty());

  RawDb raw(path_);
  EXPECT_EQ(raw.QueryText("SELECT unit_key, role, model, ok, error, attempts FROM model_calls "
                          "WHERE ok = 0 ORDER BY id"),
            "ann-1|judge|judge-model|0|HTTP 503|3\nconv-2|target|target-model|0|HTTP 503|3\n");
  EXPECT_EQ(raw.QueryInt("SELECT min(at_us) FROM model_calls"), kT0);  // stamped when unset
}

// Model output is adversarial: whatever bytes it produces must come back unchanged, and none of
// it may be read as SQL.
TEST_F(SqliteStoreTest, AdversarialStringsRoundTripByteExactly) {
  const std::vector<std::string> nasty = {
      "it's \"quoted\" `back` \\ slashes",
      "'; DROP TABLE runs; --",
      "\"); DELETE FROM turns; --",
      std::string("nul\0inside\0twice", 16),
      std::string("\0", 1),
      "\xff\xfe invalid utf-8 \x80 lone continuation",
      "truncated \xe2\x82",
      "overlong \xc0\xaf and surrogate \xed\xa0\x80",
      "emoji \xf0\x9f\x98\x80 and \xe2\x80\xae right-to-left override",
      "%s %n {} {{}} $1 ?1 :name @x",
      std::string(100000, 'x') + "\x01\x02\x7f",
  };
  Result<RunRecord> run = store_->BeginRun(SampleRun("adversarial"));
  ASSERT_TRUE(run.ok());
  for (size_t i = 0; i < nasty.size(); ++i) {
    const std::string& s = nasty[i];
    std::string key = "conv-" + std::to_string(i) + s;  // keys are bytes too
    RunUnit unit = Unit(run->id, std::to_string(i));
    unit.item_id = s;
    unit.conversation_key = key;
    unit.annotation_key = "ann-" + key;
    ASSERT_TRUE(store_->LinkUnit(unit).ok()) << i;
    ConversationRecord c = SampleConversation(key, s);
    c.category = s;
    ASSERT_TRUE(store_->StartConversation(c).ok()) << i;
    ASSERT_TRUE(store_->AppendTurn(key, 0, {Role::kUser, s}).ok()) << i;
    ASSERT_TRUE(store_->AppendTurn(key, 1, {Role::kAssistant, s + s}).ok()) << i;
    ASSERT_TRUE(store_->FinishConversation(key, ConversationStatus::kFailed, s, s).ok()) << i;
    AnnotationRecord a = ScoredAnnotation("ann-" + key, key);
    a.judge = s;
    a.annotation.reason = s;
    a.annotation.raw_output = s;
    a.annotation.turns = {{1, 3, s}, {2, 4, "plain"}};
    ASSERT_TRUE(store_->PutAnnotation(a).ok()) << i;
    ModelCallRecord call;
    call.unit_key = key;
    call.role = "target";
    call.model = s;
    call.error = s;
    ASSERT_TRUE(store_->RecordModelCall(call).ok()) << i;
  }
  RunRecord named = SampleRun(nasty[1], "h-nasty");
  named.config_json = nasty[3];
  named.targets = nasty;
  ASSERT_TRUE(store_->BeginRun(named).ok());

  Open();
  for (size_t i = 0; i < nasty.size(); ++i) {
    const std::string& s = nasty[i];
    std::string key = "conv-" + std::to_string(i) + s;
    Result<std::optional<ConversationRecord>> c = store_->GetConversation(key);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ASSERT_TRUE(c->has_value()) << i;
    EXPECT_EQ((*c)->item_id, s) << i;
    EXPECT_EQ((*c)->category, s) << i;
    EXPECT_EQ((*c)->stop_reason, s) << i;
    EXPECT_EQ((*c)->error, s) << i;
    ASSERT_EQ((*c)->turns.size(), 2u);
    EXPECT_EQ((*c)->turns[0].content, s) << i;
    EXPECT_EQ((*c)->turns[1].content, s + s) << i;
    Result<std::optional<AnnotationRecord>> a = store_->GetAnnotation("ann-" + key);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    ASSERT_TRUE(a->has_value()) << i;
    EXPECT_EQ((*a)->judge, s) << i;
    EXPECT_EQ((*a)->conversation_key, key) << i;
    EXPECT_EQ((*a)->annotation.reason, s) << i;
    EXPECT_EQ((*a)->annotation.raw_output, s) << i;
    ASSERT_EQ((*a)->annotation.turns.size(), 2u);
    EXPECT_EQ((*a)->annotation.turns[0].reason, s) << i;
  }
  std::vector<ResultRow> rows = Results(run->id);
  ASSERT_EQ(rows.size(), nasty.size());
  for (size_t i = 0; i < nasty.size(); ++i) {
    EXPECT_EQ(rows[i].unit.item_id, nasty[i]) << i;
    EXPECT_EQ(rows[i].assistant_turns, 1) << i;
    ASSERT_TRUE(rows[i].annotated) << i;
    EXPECT_EQ(rows[i].annotation.turns[0].reason, nasty[i]) << i;
  }
  Result<RunRecord> found = store_->FindRun(nasty[1]);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(found->config_json, nasty[3]);
  EXPECT_EQ(found->targets, nasty);
  Result<std::map<std::string, RoleUsage>> usage = store_->UsageByRole(run->id);
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->at("target").calls, static_cast<int64_t>(nasty.size()));
  RawDb raw(path_);
  EXPECT_EQ(raw.QueryInt("SELECT count(*) FROM runs"), 2);  // the tables are all still there
  EXPECT_EQ(raw.QueryInt("SELECT count(*) FROM turns"), static_cast<int64_t>(2 * nasty.size()));
  EXPECT_EQ(raw.QueryText("PRAGMA integrity_check"), "ok\n");
}

TEST_F(SqliteStoreTest, InMemoryStoreWorks) {
  Result<std::unique_ptr<Store>> mem = Store::OpenSqlite(":memory:");
  ASSERT_TRUE(mem.ok()) << mem.status().ToString();
  Result<RunRecord> run = (*mem)->BeginRun(SampleRun("m"));
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  ASSERT_TRUE((*mem)->LinkUnit(Unit(run->id, "1")).ok());
  EXPECT_EQ((*mem)->SchemaVersion(), Store::CurrentSchemaVersion());
}

// The heap in use now, in bytes (glibc; counts sqlite's allocations too).
size_t HeapInUse() { return mallinfo2().uordblks; }

// A report over a big run must not hold the run in memory: rows are produced one at a time.
TEST_F(SqliteStoreTest, ForEachResultStreamsTwoHundredThousandUnits) {
  StoreOptions options;
  options.cache_size_kib = 4096;
  Open(options);
  Result<RunRecord> run = store_->BeginRun(SampleRun("big"));
  ASSERT_TRUE(run.ok());
  constexpr int kUnits = 200000;
  const std::string pad(52, '0');  // keys as long as real SHA-256 hex keys
  ASSERT_TRUE(store_->Begin().ok());
  for (int i = 0; i < kUnits; ++i) {
    std::string n = std::to_string(i);
    RunUnit u = Unit(run->id, n);
    u.conversation_key = "conv-" + pad + n;
    u.annotation_key = "ann-" + pad + n;
    ASSERT_TRUE(store_->LinkUnit(u).ok());
    if (i % 50 == 0) {
      ASSERT_TRUE(store_->StartConversation(SampleConversation(u.conversation_key)).ok());
      ASSERT_TRUE(store_->AppendTurn(u.conversation_key, 0, {Role::kUser, "q"}).ok());
      ASSERT_TRUE(store_->AppendTurn(u.conversation_key, 1, {Role::kAssistant, "a"}).ok());
      ASSERT_TRUE(
          store_->PutAnnotation(ScoredAnnotation(u.annotation_key, u.conversation_key)).ok());
    }
  }
  ASSERT_TRUE(store_->Commit().ok());
  Open(options);  // a cold connection, as `breakfix report` has

  const size_t baseline = HeapInUse();
  size_t peak = baseline;
  int64_t rows = 0;
  int64_t annotated = 0;
  bool in_order = true;
  Status s = store_->ForEachResult(run->id, [&](const ResultRow& r) {
    if (r.unit.item_id != "item-" + std::to_string(rows)) in_order = false;
    if (r.annotated) ++annotated;
    ++rows;
    if (rows % 1000 == 1) peak = std::max(peak, HeapInUse());
    return Status::OK();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(rows, kUnits);
  EXPECT_EQ(annotated, kUnits / 50);
  EXPECT_TRUE(in_order);
  // Holding the rows would take well over 100 MiB; streaming needs the page cache and one row.
  EXPECT_LT(peak - baseline, size_t{16} << 20) << "heap grew by " << (peak - baseline) << " bytes";
}

TEST_F(SqliteStoreTest, ItemsRoundTripByteExactlyAndAreStoredOnce) {
  SeedItem item;
  item.id = "jailbreak/opener/0003";
  item.family = "jailbreak";
  item.category = "guideline_leak";
  item.rubric = "jailbreak";
  item.params = {{"aim", "quote its rules"}, {"odd", std::string("\xff\x00x", 3)}};
  item.system_prompt = "sys";
  item.first_user = "Hi \"there\"";
  item.goal = "get the rules";
  item.persona = "a student";
  item.document = "line 1\nline 2";
  ASSERT_TRUE(store_->PutItem("item-key-1", item).ok());
  SeedItem other = item;
  other.goal = "changed";
  ASSERT_TRUE(store_->PutItem("item-key-1", other).ok());  // same key: the first one stays
  auto got = store_->GetItem("item-key-1");
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status().ToString();
  const SeedItem& g = **got;
  EXPECT_EQ(g.id, item.id);
  EXPECT_EQ(g.params, item.params);
  EXPECT_EQ(g.first_user, item.first_user);
  EXPECT_EQ(g.goal, "get the rules");
  EXPECT_EQ(g.document, item.document);
  EXPECT_EQ(g.rubric, "jailbreak");
  auto missing = store_->GetItem("nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  EXPECT_EQ(store_->PutItem("", item).code(), StatusCode::kInvalidArgument);

  ConversationRecord c;
  c.key = "conv-item";
  c.item_key = "item-key-1";
  c.item_id = item.id;
  ASSERT_TRUE(store_->StartConversation(c).ok());
  auto conv = store_->GetConversation("conv-item");
  ASSERT_TRUE(conv.ok() && conv->has_value());
  EXPECT_EQ((*conv)->item_key, "item-key-1");
}

TEST_F(SqliteStoreTest, RunTargetsKeepTheirIdentitiesInColumnOrder) {
  RunRecord run;
  run.name = "with-identities";
  run.config_hash = "h";
  run.config_json = "{}";
  run.targets = {"b-model", "a-model"};
  run.target_identities = {"{\"model\":\"b\"}", "{\"model\":\"a\"}"};
  auto begun = store_->BeginRun(run);
  ASSERT_TRUE(begun.ok()) << begun.status().ToString();
  auto found = store_->FindRun("with-identities");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->targets, run.targets);
  EXPECT_EQ(found->target_identities, run.target_identities);
  // A run stored without identities reads back with empty ones, one per target.
  RunRecord bare;
  bare.name = "bare";
  bare.config_hash = "h2";
  bare.config_json = "{}";
  bare.targets = {"x"};
  ASSERT_TRUE(store_->BeginRun(bare).ok());
  auto bare_found = store_->FindRun("bare");
  ASSERT_TRUE(bare_found.ok());
  EXPECT_EQ(bare_found->target_identities, std::vector<std::string>{""});
}

TEST(SqliteStoreOpenTest, MissingDirectoryIsAnIOErrorNamingThePath) {
  ScratchDir dir;
  std::string path = dir.File("no/such/dir/results.db");
  Result<std::unique_ptr<Store>> s = Store::OpenSqlite(path);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kIOError) << s.status().ToString();
  EXPECT_NE(s.status().message().find(path), std::string::npos) << s.status().message();
  EXPECT_EQ(Store::OpenSqlite("").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace store
}  // namespace breakfix

namespace breakfix {
namespace store {
namespace {

class CycleStoreTest : public SqliteStoreTest {};

TEST_F(CycleStoreTest, CycleStepsAreReplacedAndListedInOrder) {
  CycleStepRecord a{"c1", "tiny", 1, "train", "running", R"({"pairs":3})", 0};
  CycleStepRecord b{"c1", "tiny", 0, "measure", "done", R"({"run":"r0"})", 0};
  CycleStepRecord other{"c2", "tiny", 0, "measure", "done", "{}", 0};
  ASSERT_TRUE(store_->PutCycleStep(a).ok());
  ASSERT_TRUE(store_->PutCycleStep(b).ok());
  ASSERT_TRUE(store_->PutCycleStep(other).ok());
  a.status = "done";
  a.detail_json = R"({"pairs":3,"final":"x"})";
  ASSERT_TRUE(store_->PutCycleStep(a).ok());
  auto steps = store_->CycleSteps("c1");
  ASSERT_TRUE(steps.ok()) << steps.status().ToString();
  ASSERT_EQ(steps->size(), 2u);
  EXPECT_EQ((*steps)[0].round, 0);
  EXPECT_EQ((*steps)[0].step, "measure");
  EXPECT_EQ((*steps)[1].step, "train");
  EXPECT_EQ((*steps)[1].status, "done");
  EXPECT_EQ((*steps)[1].detail_json, R"({"pairs":3,"final":"x"})");
  EXPECT_EQ((*steps)[1].updated_us, kT0);
  EXPECT_TRUE(store_->CycleSteps("none")->empty());
}

TEST_F(CycleStoreTest, PreferencePairsRoundTripByteExactAndReplace) {
  PreferencePair p;
  p.id = "p1";
  p.prompt = {{Role::kSystem, "be safe"}, {Role::kUser, std::string("bad \xff\xfe bytes\0x", 15)}};
  p.chosen = "a safe reply";
  p.rejected = std::string("model output \xc3\x28 with NUL \0 inside", 33);
  p.kind = kPairKindSafety;
  p.provenance_json = R"({"run":"r0","turn":1})";
  PreferencePair q = p;
  q.id = "p2";
  q.kind = kPairKindOverRefusal;
  ASSERT_TRUE(store_->PutPreferencePairs("c1", "tiny", 0, {p, q}).ok());
  auto got = store_->PreferencePairs("c1", "tiny", 0);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].id, "p1");
  EXPECT_EQ((*got)[0].prompt, p.prompt);
  EXPECT_EQ((*got)[0].rejected, p.rejected);
  EXPECT_EQ((*got)[0].provenance_json, p.provenance_json);
  EXPECT_EQ((*got)[1].kind, kPairKindOverRefusal);
  // Putting the round again replaces it; other rounds are untouched.
  ASSERT_TRUE(store_->PutPreferencePairs("c1", "tiny", 1, {p}).ok());
  ASSERT_TRUE(store_->PutPreferencePairs("c1", "tiny", 0, {q}).ok());
  EXPECT_EQ(store_->PreferencePairs("c1", "tiny", 0)->size(), 1u);
  EXPECT_EQ(store_->PreferencePairs("c1", "tiny", 0)->at(0).id, "p2");
  EXPECT_EQ(store_->PreferencePairs("c1", "tiny", 1)->size(), 1u);
  // Inside a caller's transaction that rolls back, nothing changes.
  ASSERT_TRUE(store_->Begin().ok());
  ASSERT_TRUE(store_->PutPreferencePairs("c1", "tiny", 1, {}).ok());
  ASSERT_TRUE(store_->Rollback().ok());
  EXPECT_EQ(store_->PreferencePairs("c1", "tiny", 1)->size(), 1u);
}

class AttackStoreTest : public SqliteStoreTest {};

TEST_F(AttackStoreTest, CallsAreRecordedOnceAndReadBackByteExact) {
  AttackCallRecord c{"atk1", 0, "attacker", "h0", std::string("odd \xff bytes\0kept", 17), 12, 7};
  ASSERT_TRUE(store_->PutAttackCall(c).ok());
  auto found = store_->FindAttackCall("atk1", 0);
  ASSERT_TRUE(found.ok() && found->has_value()) << found.status().ToString();
  EXPECT_EQ((*found)->response, c.response);
  EXPECT_EQ((*found)->role, "attacker");
  EXPECT_EQ((*found)->prompt_tokens, 12);
  EXPECT_EQ((*found)->completion_tokens, 7);
  EXPECT_FALSE(store_->FindAttackCall("atk1", 1)->has_value());
  EXPECT_FALSE(store_->FindAttackCall("other", 0)->has_value());
  c.response = "rewritten";
  Status again = store_->PutAttackCall(c);
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ((*store_->FindAttackCall("atk1", 0))->response,
            std::string("odd \xff bytes\0kept", 17));
}

TEST_F(AttackStoreTest, AttacksAreReplacedByKeyAndListedInGridOrder) {
  AttackRecord a;
  a.key = "k-b";
  a.campaign = "camp";
  a.position = 2;
  a.objective_id = "jbb/1";
  a.strategy = "pair";
  a.outcome = "resisted";
  AttackRecord b = a;
  b.key = "k-a";
  b.position = 1;
  b.strategy = "crescendo";
  b.outcome = "succeeded";
  b.best_score = 9;
  b.turns_to_success = 3;
  b.backtracks = 2;
  b.result_json = R"({"turns":[]})";
  AttackRecord other = a;
  other.key = "k-c";
  other.campaign = "elsewhere";
  for (const AttackRecord& r : {a, b, other}) ASSERT_TRUE(store_->PutAttack(r).ok());
  a.outcome = "succeeded";
  ASSERT_TRUE(store_->PutAttack(a).ok());
  auto all = store_->Attacks("camp");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].key, "k-a");
  EXPECT_EQ((*all)[0].backtracks, 2);
  EXPECT_EQ((*all)[0].turns_to_success, 3);
  EXPECT_EQ((*all)[0].result_json, R"({"turns":[]})");
  EXPECT_EQ((*all)[1].outcome, "succeeded");
  EXPECT_EQ((*all)[1].updated_us, kT0);
  auto one = store_->FindAttack("k-c");
  ASSERT_TRUE(one.ok() && one->has_value());
  EXPECT_EQ((*one)->campaign, "elsewhere");
  EXPECT_FALSE(store_->FindAttack("nope")->has_value());
}

}  // namespace
}  // namespace store
}  // namespace breakfix

namespace breakfix {
namespace store {
namespace {

class RunManifestStoreTest : public SqliteStoreTest {};

TEST_F(RunManifestStoreTest, ManifestsAreReplacedAndReadBackByteExact) {
  auto run = store_->BeginRun(SampleRun("with-manifest"));
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  // A run begun without one (not through RunEval) has none, and says so.
  auto none = store_->GetRunManifest(run->id);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(none->state, RunManifestState::kNotRecorded);
  EXPECT_EQ(none->manifest_json, "");

  ASSERT_TRUE(store_->PutRunManifest(run->id, "{\"manifest_version\":1,\"a\":\"\xc3\xa9\"}").ok());
  clock_.Set(kT0 + 5);
  ASSERT_TRUE(store_->PutRunManifest(run->id, "{\"manifest_version\":1,\"b\":2}").ok());
  auto got = store_->GetRunManifest(run->id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->state, RunManifestState::kRecorded);
  EXPECT_EQ(got->manifest_json, "{\"manifest_version\":1,\"b\":2}");
  EXPECT_EQ(got->updated_us, kT0 + 5);
  RawDb raw(path_);
  EXPECT_EQ(raw.QueryInt("SELECT count(*) FROM run_manifests"), 1);
}

TEST_F(RunManifestStoreTest, ManifestWritesJoinTheOpenTransaction) {
  auto run = store_->BeginRun(SampleRun("tx"));
  ASSERT_TRUE(run.ok());
  ASSERT_TRUE(store_->PutRunManifest(run->id, "{\"v\":1}").ok());
  ASSERT_TRUE(store_->Begin().ok());
  ASSERT_TRUE(store_->PutRunManifest(run->id, "{\"v\":2}").ok());
  ASSERT_TRUE(store_->Rollback().ok());
  EXPECT_EQ(store_->GetRunManifest(run->id)->manifest_json, "{\"v\":1}");
}

TEST_F(RunManifestStoreTest, UnknownRunsAreNotFound) {
  EXPECT_EQ(store_->PutRunManifest(4242, "{}").code(), StatusCode::kNotFound);
  auto got = store_->GetRunManifest(4242);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kNotFound);
  EXPECT_NE(got.status().message().find("4242"), std::string::npos) << got.status().message();
}

}  // namespace
}  // namespace store
}  // namespace breakfix
