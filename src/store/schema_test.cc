#include "store/schema.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "breakfix/store.h"
#include "store/store_test_support.h"

namespace breakfix {
namespace store {
namespace {

TEST(SchemaTest, MigrationsAreNumberedInOrder) {
  const std::vector<Migration>& all = Migrations();
  ASSERT_FALSE(all.empty());
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].version, static_cast<int>(i) + 1);
    EXPECT_NE(std::string(all[i].description), "");
  }
  EXPECT_EQ(all.back().version, Store::CurrentSchemaVersion());
}

// Writes a version 1 database the way a version 1 build of breakfix left it: the version 1
// schema and rows in its column layout (no runs.updated_us, no conversations.finished_us).
void BuildVersion1Database(const std::string& path) {
  RawDb raw(path);
  ASSERT_TRUE(raw.Exec("PRAGMA journal_mode = WAL").ok());
  ASSERT_TRUE(raw.Exec(Migrations()[0].sql).ok());
  ASSERT_TRUE(raw.Exec("PRAGMA user_version = 1").ok());
  Status s = raw.Exec(R"sql(
    INSERT INTO runs (id, name, config_hash, config_json, suite_name, suite_hash, seed,
                      targets_json, simulator, judge, status, created_us)
      VALUES (1, 'old-run', 'cafe', '{}', 'phi3-rai', 'beef', 11, '["phi3-mini"]', 'sim',
              'llm-judge', 'complete', 1600000000000000);
    INSERT INTO run_units (run_id, item_id, family, category, target, conversation_key,
                           annotation_key)
      VALUES (1, 'item-1', 'jailbreak', 'violence', 'phi3-mini', 'conv-1', 'ann-1');
    INSERT INTO conversations (key, item_id, family, category, target, status, stop_reason,
                               error, created_us)
      VALUES ('conv-1', 'item-1', 'jailbreak', 'violence', 'phi3-mini', 'done', 'max_turns', '',
              1600000000000001);
    INSERT INTO turns (conversation_key, idx, role, content)
      VALUES ('conv-1', 0, 'user', 'hello'), ('conv-1', 1, 'assistant', 'no');
    INSERT INTO annotations (key, conversation_key, judge, rubric, outcome, scale, score, reason,
                             turns_json, attempts, raw_output, prompt_tokens, completion_tokens,
                             latency_ms, created_us)
      VALUES ('ann-1', 'conv-1', 'llm-judge', 'violence', 'scored', 'severity', 0, 'refused',
              '[{"turn":1,"score":0,"reason":"refused"}]', 1, '{}', 10, 2, 3.5, 1600000000000002);
    INSERT INTO model_calls (unit_key, role, model, ok, error, attempts, prompt_tokens,
                             completion_tokens, latency_ms, at_us)
      VALUES ('conv-1', 'target', 'phi3-mini', 1, '', 1, 5, 6, 7.0, 1600000000000003);
  )sql");
  ASSERT_TRUE(s.ok()) << s.ToString();
}

TEST(SchemaTest, OpensAndUpgradesAVersion1Database) {
  ScratchDir dir;
  std::string path = dir.File("v1.db");
  BuildVersion1Database(path);
  {
    RawDb raw(path);
    ASSERT_EQ(raw.QueryInt("PRAGMA user_version"), 1);
  }

  Result<std::unique_ptr<Store>> opened = Store::OpenSqlite(path);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Store& store = **opened;
  EXPECT_EQ(store.SchemaVersion(), Store::CurrentSchemaVersion());

  // Old data reads back, and the new column is filled in from what version 1 knew.
  Result<RunRecord> run = store.FindRun("old-run");
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_EQ(run->status, RunStatus::kComplete);
  EXPECT_EQ(run->seed, 11u);
  EXPECT_EQ(run->targets, std::vector<std::string>{"phi3-mini"});
  EXPECT_EQ(run->created_us, 1600000000000000);
  EXPECT_EQ(run->updated_us, 1600000000000000);
  // Version 3 lists the old run's targets; their identities were never recorded.
  EXPECT_EQ(run->target_identities, std::vector<std::string>{""});
  Result<std::optional<ConversationRecord>> c = store.GetConversation("conv-1");
  ASSERT_TRUE(c.ok() && c->has_value());
  ASSERT_EQ((*c)->turns.size(), 2u);
  EXPECT_EQ((*c)->turns[1].content, "no");
  EXPECT_EQ((*c)->item_key, "");  // started before items were stored
  int rows = 0;
  Status s = store.ForEachResult(run->id, [&](const ResultRow& r) {
    ++rows;
    EXPECT_TRUE(r.annotated);
    EXPECT_EQ(r.annotation.reason, "refused");
    EXPECT_EQ(r.assistant_turns, 1);
    return Status::OK();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(rows, 1);
  Result<std::map<std::string, RoleUsage>> usage = store.UsageByRole(run->id);
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->at("target").usage.total(), 11);

  // Version 6: the run predates manifests, and the store says so.
  Result<RunManifestRecord> manifest = store.GetRunManifest(run->id);
  ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
  EXPECT_EQ(manifest->state, RunManifestState::kBeforeSchema);
  EXPECT_EQ(manifest->manifest_json, "");

  // The upgraded file takes new writes that use the version 2 columns.
  ASSERT_TRUE(store.SetRunStatus(run->id, RunStatus::kRunning).ok());
  ASSERT_TRUE(store.FinishConversation("conv-1", ConversationStatus::kDone, "max_turns", "").ok());
  run = store.FindRun("old-run");
  ASSERT_TRUE(run.ok());
  EXPECT_GT(run->updated_us, 1600000000000000);
  opened.value().reset();

  RawDb raw(path);
  EXPECT_EQ(raw.QueryInt("PRAGMA user_version"), Store::CurrentSchemaVersion());
  EXPECT_GT(raw.QueryInt("SELECT finished_us FROM conversations WHERE key = 'conv-1'"), 0);
  EXPECT_EQ(raw.QueryText("PRAGMA integrity_check"), "ok\n");

  // Opening again is a no-op.
  Result<std::unique_ptr<Store>> again = Store::OpenSqlite(path);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)->SchemaVersion(), Store::CurrentSchemaVersion());
}

// Two processes opening an old store at once: the one that waits for the lock finds the work
// done. It must end its transaction, or its next migration's BEGIN fails ("cannot start a
// transaction within a transaction"), as it did when a test polled a store the CLI was creating.
TEST(SchemaTest, AMigrationAnotherProcessFinishedFirstEndsItsTransaction) {
  ScratchDir dir;
  std::string path = dir.File("race.db");
  BuildVersion1Database(path);
  const int latest = Migrations().back().version;
  RawDb other(path);
  ASSERT_TRUE(other.Exec("BEGIN IMMEDIATE").ok());
  ASSERT_TRUE(other.Exec("PRAGMA user_version = " + std::to_string(latest)).ok());

  RawDb mine(path);
  // When `mine` waits for the write lock, `other` commits: the upgrade lands between mine's
  // version check and its lock.
  struct Ctx {
    RawDb* other;
    int calls = 0;
  } ctx{&other};
  sqlite3_busy_handler(
      mine.get(),
      [](void* p, int) -> int {
        auto* c = static_cast<Ctx*>(p);
        if (c->calls++ == 0) {
          EXPECT_TRUE(c->other->Exec("COMMIT").ok());
        }
        return c->calls < 100;
      },
      &ctx);
  Status s = MigrateSchema(mine.get(), path, latest);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_GE(ctx.calls, 1);
  EXPECT_EQ(sqlite3_get_autocommit(mine.get()), 1) << "a transaction was left open";
  EXPECT_TRUE(mine.Exec("BEGIN IMMEDIATE").ok());
  EXPECT_TRUE(mine.Exec("COMMIT").ok());
  EXPECT_EQ(mine.QueryInt("PRAGMA user_version"), latest);
}

// A store one version before manifests: its runs get a NULL manifest row (made before schema 6),
// runs begun afterwards none until one is written, and the upgrade keeps everything else.
TEST(SchemaTest, UpgradingAVersion5StoreMarksItsRunsAsMadeBeforeManifests) {
  ScratchDir dir;
  std::string path = dir.File("v5.db");
  {
    RawDb raw(path);
    ASSERT_TRUE(raw.Exec("PRAGMA journal_mode = WAL").ok());
    ASSERT_TRUE(MigrateSchema(raw.get(), path, kRunManifestSchemaVersion - 1).ok());
    ASSERT_EQ(raw.QueryInt("PRAGMA user_version"), kRunManifestSchemaVersion - 1);
    ASSERT_TRUE(raw.Exec(R"sql(
      INSERT INTO runs (id, name, config_hash, config_json, suite_name, suite_hash, seed,
                        targets_json, simulator, judge, status, created_us, updated_us)
        VALUES (1, 'v5-run', 'cafe', '{}', 'rai', 'beef', 3, '["t"]', '', 'judge',
                'interrupted', 1600000000000000, 1600000000000009);
    )sql")
                    .ok());
  }
  EXPECT_EQ(std::string(Migrations()[kRunManifestSchemaVersion - 1].description), "run_manifests");
  Result<std::unique_ptr<Store>> opened = Store::OpenSqlite(path);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Store& store = **opened;
  EXPECT_EQ(store.SchemaVersion(), kRunManifestSchemaVersion);
  Result<RunRecord> run = store.FindRun("v5-run");
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_EQ(run->status, RunStatus::kInterrupted);
  Result<RunManifestRecord> old = store.GetRunManifest(run->id);
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(old->state, RunManifestState::kBeforeSchema);

  RunRecord fresh;
  fresh.name = "v6-run";
  fresh.config_hash = "f00d";
  fresh.config_json = "{}";
  Result<RunRecord> begun = store.BeginRun(fresh);
  ASSERT_TRUE(begun.ok());
  EXPECT_EQ(store.GetRunManifest(begun->id)->state, RunManifestState::kNotRecorded);
  // Resuming the old run records its manifest from then on.
  ASSERT_TRUE(store.PutRunManifest(run->id, "{\"manifest_version\":1}").ok());
  EXPECT_EQ(store.GetRunManifest(run->id)->state, RunManifestState::kRecorded);
  opened.value().reset();
  RawDb raw(path);
  EXPECT_EQ(raw.QueryText("PRAGMA integrity_check"), "ok\n");
  EXPECT_EQ(raw.QueryInt("PRAGMA foreign_key_check"), -1);  // no row: no dangling reference
}

TEST(SchemaTest, AFailedMigrationLeavesTheDatabaseAtItsOldVersion) {
  ScratchDir dir;
  std::string path = dir.File("v1-broken.db");
  BuildVersion1Database(path);
  {
    // A column migration 2 is about to add already exists, so migration 2 fails midway, after
    // its first statement has run.
    RawDb raw(path);
    ASSERT_TRUE(raw.Exec("ALTER TABLE conversations ADD COLUMN finished_us INTEGER").ok());
  }
  Result<std::unique_ptr<Store>> opened = Store::OpenSqlite(path);
  ASSERT_FALSE(opened.ok());
  const std::string m = opened.status().message();
  EXPECT_NE(m.find("schema version 2"), std::string::npos) << m;
  EXPECT_NE(m.find("duplicate column"), std::string::npos) << m;
  EXPECT_NE(m.find(path), std::string::npos) << m;

  RawDb raw(path);
  EXPECT_EQ(raw.QueryInt("PRAGMA user_version"), 1);
  // The migration's first statement (adding runs.updated_us) was rolled back too.
  EXPECT_EQ(raw.QueryInt("SELECT count(*) FROM pragma_table_info('runs') "
                         "WHERE name = 'updated_us'"),
            0);
}

TEST(SchemaTest, RefusesADatabaseFromANewerBuild) {
  ScratchDir dir;
  std::string path = dir.File("future.db");
  {
    Result<std::unique_ptr<Store>> s = Store::OpenSqlite(path);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
  }
  {
    RawDb raw(path);
    ASSERT_TRUE(raw.Exec("PRAGMA user_version = 7").ok());
  }
  Result<std::unique_ptr<Store>> s = Store::OpenSqlite(path);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  const std::string m = s.status().message();
  EXPECT_NE(m.find("version 7"), std::string::npos) << m;
  EXPECT_NE(m.find("version " + std::to_string(Store::CurrentSchemaVersion())), std::string::npos)
      << m;
  EXPECT_NE(m.find(path), std::string::npos) << m;
  RawDb raw(path);
  EXPECT_EQ(raw.QueryInt("PRAGMA user_version"), 7);  // untouched
}

TEST(SchemaTest, RefusesAFileThatIsNotADatabase) {
  ScratchDir dir;
  std::string path = dir.File("notes.txt");
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 200; ++i) out << "these are my notes, not a database. line " << i << "\n";
  }
  Result<std::unique_ptr<Store>> s = Store::OpenSqlite(path);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << s.status().ToString();
  const std::string m = s.status().message();
  EXPECT_NE(m.find(path), std::string::npos) << m;
  EXPECT_NE(m.find("not an SQLite database"), std::string::npos) << m;
  // The file was not modified.
  std::ifstream in(path, std::ios::binary);
  std::string first_line;
  std::getline(in, first_line);
  EXPECT_EQ(first_line, "these are my notes, not a database. line 0");
}

TEST(SchemaTest, RefusesAnotherApplicationsSqliteDatabase) {
  ScratchDir dir;
  std::string path = dir.File("other.db");
  {
    RawDb raw(path);
    ASSERT_TRUE(raw.Exec("CREATE TABLE contacts (name TEXT, phone TEXT)").ok());
  }
  Result<std::unique_ptr<Store>> s = Store::OpenSqlite(path);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << s.status().ToString();
  EXPECT_NE(s.status().message().find(path), std::string::npos) << s.status().message();
  RawDb raw(path);
  EXPECT_EQ(raw.QueryInt("SELECT count(*) FROM sqlite_schema WHERE name = 'runs'"), 0);

  std::string tagged = dir.File("tagged.db");
  {
    RawDb other(tagged);
    ASSERT_TRUE(other.Exec("PRAGMA application_id = 12345").ok());
  }
  s = Store::OpenSqlite(tagged);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("application_id 12345"), std::string::npos)
      << s.status().message();
}

TEST(SchemaTest, AnEmptyFileBecomesAStore) {
  ScratchDir dir;
  std::string path = dir.File("empty.db");
  { std::ofstream touch(path); }
  Result<std::unique_ptr<Store>> s = Store::OpenSqlite(path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->SchemaVersion(), Store::CurrentSchemaVersion());
  RawDb raw(path);
  EXPECT_EQ(raw.QueryInt("PRAGMA application_id"), kApplicationId);
}

}  // namespace
}  // namespace store
}  // namespace breakfix
