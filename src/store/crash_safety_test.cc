// A process killed with SIGKILL in the middle of a transaction must leave no trace of that
// transaction, keep everything committed before it, and leave a file that opens cleanly.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "breakfix/store.h"
#include "store/store_test_support.h"

namespace breakfix {
namespace store {
namespace {

RunRecord CrashRun() {
  RunRecord run;
  run.name = "crash";
  run.config_hash = "h";
  run.targets = {"t"};
  return run;
}

ConversationRecord Conversation(const std::string& key) {
  ConversationRecord c;
  c.key = key;
  c.item_id = key;
  c.family = "jailbreak";
  c.category = "violence";
  c.target = "t";
  return c;
}

RunUnit Unit(int64_t run_id, const std::string& key) {
  RunUnit u;
  u.run_id = run_id;
  u.item_id = key;
  u.conversation_key = key;
  u.annotation_key = "ann-" + key;
  return u;
}

// Writes one unit's worth of records: link, conversation with `turns` turns, annotation, calls.
Status WriteUnit(Store& store, int64_t run_id, const std::string& key, int turns,
                 size_t turn_bytes) {
  BF_RETURN_IF_ERROR(store.LinkUnit(Unit(run_id, key)));
  BF_RETURN_IF_ERROR(store.StartConversation(Conversation(key)));
  for (int i = 0; i < turns; ++i) {
    Message m{i % 2 == 0 ? Role::kUser : Role::kAssistant,
              std::string(turn_bytes, static_cast<char>('a' + i % 26))};
    BF_RETURN_IF_ERROR(store.AppendTurn(key, i, m));
    ModelCallRecord call;
    call.unit_key = key;
    call.role = i % 2 == 0 ? "simulator" : "target";
    call.model = "m";
    call.usage.prompt_tokens = 10;
    BF_RETURN_IF_ERROR(store.RecordModelCall(call));
  }
  BF_RETURN_IF_ERROR(store.FinishConversation(key, ConversationStatus::kDone, "max_turns", ""));
  AnnotationRecord a;
  a.key = "ann-" + key;
  a.conversation_key = key;
  a.judge = "j";
  a.rubric = "violence";
  a.annotation.turns = {{1, 2, "r"}};
  return store.PutAnnotation(a);
}

// Reports from the child to the parent, then waits to be killed. Never returns, so whatever the
// child holds (an open Store, an open transaction) is still held when SIGKILL arrives.
[[noreturn]] void ReportAndWait(int fd, bool ok) {
  char verdict = ok ? 'y' : 'n';
  if (write(fd, &verdict, 1) != 1) _exit(3);
  while (true) pause();
}

// Runs `child(fd)` in a forked process; the child must end by calling ReportAndWait(fd, ...).
// Returns once the child is dead by SIGKILL.
template <typename ChildFn>
void RunAndKill(ChildFn child) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0) << "fork failed";
  if (pid == 0) {
    close(ready[0]);
    child(ready[1]);
    ReportAndWait(ready[1], false);  // not reached when the child reports itself
  }
  close(ready[1]);
  char verdict = 0;
  ssize_t n = read(ready[0], &verdict, 1);
  close(ready[0]);
  kill(pid, SIGKILL);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_EQ(n, 1) << "the child died before reporting";
  ASSERT_EQ(verdict, 'y') << "the child's writes failed";
  ASSERT_TRUE(WIFSIGNALED(wstatus));
  EXPECT_EQ(WTERMSIG(wstatus), SIGKILL);
}

TEST(CrashSafetyTest, KilledMidTransactionLosesOnlyThatTransaction) {
  ScratchDir dir;
  const std::string path = dir.File("crash.db");
  int64_t run_id = 0;
  {
    // Committed by a process that exits normally.
    Result<std::unique_ptr<Store>> store = Store::OpenSqlite(path);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    Result<RunRecord> run = (*store)->BeginRun(CrashRun());
    ASSERT_TRUE(run.ok());
    run_id = run->id;
    ASSERT_TRUE((*store)->Begin().ok());
    ASSERT_TRUE(WriteUnit(**store, run_id, "before", 4, 100).ok());
    ASSERT_TRUE((*store)->Commit().ok());
  }

  RunAndKill([&](int fd) {
    // A fresh connection in the child: sqlite connections must not cross fork().
    StoreOptions options;
    options.cache_size_kib = 64;  // small, so uncommitted pages spill into the WAL
    Result<std::unique_ptr<Store>> opened = Store::OpenSqlite(path, options);
    if (!opened.ok()) ReportAndWait(fd, false);
    Store& store = **opened;
    // Committed by the process that is about to be killed, without closing the store.
    if (!store.Begin().ok()) ReportAndWait(fd, false);
    if (!WriteUnit(store, run_id, "committed-then-killed", 2, 100).ok()) ReportAndWait(fd, false);
    if (!store.Commit().ok()) ReportAndWait(fd, false);
    // Never committed: about 2 MB of turns, far more than the page cache holds.
    if (!store.Begin().ok()) ReportAndWait(fd, false);
    if (!store.SetRunStatus(run_id, RunStatus::kComplete).ok()) ReportAndWait(fd, false);
    for (int u = 0; u < 20; ++u) {
      if (!WriteUnit(store, run_id, "lost-" + std::to_string(u), 10, 10000).ok())
        ReportAndWait(fd, false);
    }
    // Killed here: the store is open, the second transaction is not committed, and its pages
    // (far more than the 64 KiB cache) are already in the WAL.
    ReportAndWait(fd, true);
  });

  // The killed process left its WAL behind, holding committed and uncommitted frames.
  struct stat wal;
  ASSERT_EQ(stat((path + "-wal").c_str(), &wal), 0) << "no WAL left by the killed process";
  EXPECT_GT(wal.st_size, 1 << 20);
  // Look at the file before any Store touches it: the hot WAL is recovered by a plain open.
  {
    RawDb raw(path);
    EXPECT_EQ(raw.QueryText("PRAGMA integrity_check"), "ok\n");
    EXPECT_EQ(raw.QueryInt("SELECT count(*) FROM conversations WHERE key LIKE 'lost-%'"), 0);
  }

  Result<std::unique_ptr<Store>> reopened = Store::OpenSqlite(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  Store& store = **reopened;
  EXPECT_EQ(store.SchemaVersion(), Store::CurrentSchemaVersion());

  Result<RunRecord> run = store.FindRun("crash");
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->status, RunStatus::kRunning);  // the status change was never committed

  std::vector<std::string> keys;
  Status s = store.ForEachResult(run_id, [&](const ResultRow& r) {
    keys.push_back(r.unit.conversation_key);
    EXPECT_TRUE(r.annotated) << r.unit.conversation_key;
    EXPECT_EQ(r.conversation_status, ConversationStatus::kDone);
    return Status::OK();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(keys, (std::vector<std::string>{"before", "committed-then-killed"}));

  Result<std::optional<ConversationRecord>> before = store.GetConversation("before");
  ASSERT_TRUE(before.ok() && before->has_value());
  ASSERT_EQ((*before)->turns.size(), 4u);
  EXPECT_EQ((*before)->turns[3].content, std::string(100, 'd'));
  Result<std::optional<ConversationRecord>> killed = store.GetConversation("committed-then-killed");
  ASSERT_TRUE(killed.ok() && killed->has_value());
  EXPECT_EQ((*killed)->turns.size(), 2u);
  Result<std::optional<ConversationRecord>> lost = store.GetConversation("lost-0");
  ASSERT_TRUE(lost.ok());
  EXPECT_FALSE(lost->has_value());
  Result<bool> lost_annotation = store.HasAnnotation("ann-lost-19");
  ASSERT_TRUE(lost_annotation.ok());
  EXPECT_FALSE(*lost_annotation);

  Result<std::map<std::string, RoleUsage>> usage = store.UsageByRole(run_id);
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->at("simulator").calls + usage->at("target").calls, 6);  // 4 + 2 turns

  // The lost unit can be redone from scratch: nothing of it counts as a duplicate.
  ASSERT_TRUE(store.Begin().ok());
  Status redo = WriteUnit(store, run_id, "lost-0", 2, 10);
  EXPECT_TRUE(redo.ok()) << redo.ToString();
  ASSERT_TRUE(store.Commit().ok());
}

}  // namespace
}  // namespace store
}  // namespace breakfix
