// Helpers shared by the store's unit tests: a scratch directory, a settable clock, and direct
// sqlite access for inspecting or hand-building database files.
#ifndef BREAKFIX_STORE_STORE_TEST_SUPPORT_H_
#define BREAKFIX_STORE_STORE_TEST_SUPPORT_H_

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "breakfix/env.h"
#include "breakfix/store.h"
#include "store/sqlite_statement.h"
#include "testing/scratch_dir.h"

namespace breakfix {
namespace store {

using test_support::ScratchDir;

// Wall clock under test control; everything else comes from the real environment.
class ManualClockEnv final : public Env {
 public:
  explicit ManualClockEnv(int64_t wall_us) : wall_us_(wall_us) {}
  void Set(int64_t wall_us) { wall_us_ = wall_us; }

  int64_t NowMicros() override { return wall_us_; }
  int64_t WallMicros() override { return wall_us_; }
  void SleepMicros(int64_t micros) override { wall_us_ += micros; }
  std::optional<std::string> GetVar(const std::string& name) override {
    return Env::Default()->GetVar(name);
  }
  Result<std::string> ReadFile(const std::string& path) override {
    return Env::Default()->ReadFile(path);
  }
  Status WriteFileAtomic(const std::string& path, const std::string& contents) override {
    return Env::Default()->WriteFileAtomic(path, contents);
  }

 private:
  int64_t wall_us_;
};

// A raw connection for looking behind the Store's back.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    sqlite3* raw = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    db_.reset(raw);
    if (rc != SQLITE_OK) ADD_FAILURE() << "cannot open " << path << ": " << sqlite3_errstr(rc);
  }
  sqlite3* get() const { return db_.get(); }

  // Runs statements without parameters; the Status carries sqlite's message.
  Status Exec(const std::string& sql) {
    return ExecSql(db_.get(), sql.c_str(), "test exec", "raw");
  }

  // The first column of the first row as an integer (-1 when there is no row or on error).
  int64_t QueryInt(const std::string& sql) {
    Result<Statement> s = Statement::Prepare(db_.get(), sql, "test query", "raw", false);
    if (!s.ok()) {
      ADD_FAILURE() << s.status().ToString();
      return -1;
    }
    Result<bool> row = s->Step();
    if (!row.ok() || !*row) return -1;
    return s->Int(0);
  }

  // The rows of `sql` joined: columns separated by '|', rows by '\n'.
  std::string QueryText(const std::string& sql) {
    Result<Statement> s = Statement::Prepare(db_.get(), sql, "test query", "raw", false);
    if (!s.ok()) return "error: " + s.status().ToString();
    std::string out;
    while (true) {
      Result<bool> row = s->Step();
      if (!row.ok()) return "error: " + row.status().ToString();
      if (!*row) break;
      int n = sqlite3_column_count(s->get());
      for (int i = 0; i < n; ++i) {
        if (i > 0) out += "|";
        out += s->Text(i);
      }
      out += "\n";
    }
    return out;
  }

 private:
  ConnectionHandle db_;
};

}  // namespace store
}  // namespace breakfix

#endif  // BREAKFIX_STORE_STORE_TEST_SUPPORT_H_
