// Thin RAII layer over the sqlite3 C API, used only inside src/store/.
//
// Every sqlite3* and sqlite3_stmt* is owned by a unique_ptr with a deleter, so no early return
// leaks a handle. Every error becomes a Status that names the operation, the database path and
// sqlite3_errmsg, so a failure can be traced without a debugger.
//
// Not thread-safe: a connection and its statements are used by one thread at a time.
#ifndef BREAKFIX_STORE_SQLITE_STATEMENT_H_
#define BREAKFIX_STORE_SQLITE_STATEMENT_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "breakfix/status.h"

namespace breakfix {
namespace store {

struct ConnectionCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using ConnectionHandle = std::unique_ptr<sqlite3, ConnectionCloser>;

struct StatementFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using StatementHandle = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

// Maps a sqlite result code to a Status:
//   SQLITE_BUSY / SQLITE_LOCKED (after busy_timeout ran out) -> kUnavailable
//   SQLITE_CORRUPT                                          -> kCorruption
//   SQLITE_NOTADB                                           -> kInvalidArgument
//   SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_READONLY, SQLITE_PERM -> kIOError
//   SQLITE_CONSTRAINT                                       -> kFailedPrecondition
//   anything else                                           -> kInternal
// The message reads "<operation> on <path>: <sqlite3_errmsg> (<sqlite3_errstr(rc)>)". `db` may be
// null (then only the code's description is used).
Status SqliteStatus(sqlite3* db, int rc, std::string_view operation, std::string_view path);

// Runs one or more SQL statements that take no parameters (schema, pragmas, BEGIN/COMMIT).
// Never pass text that contains data: bind data through a Statement instead.
Status ExecSql(sqlite3* db, const char* sql, std::string_view operation, std::string_view path);

// A prepared statement, prepared once and reused. Binding takes 1-based parameter indexes, as
// in SQL text (?1, ?2, ...). Text is bound with an explicit length, so NUL bytes and invalid
// UTF-8 are stored byte for byte. Bound text is not copied (SQLITE_STATIC): the bound buffer
// must outlive the step that uses it. A bind failure is remembered and reported by the next
// Step()/Run().
class Statement {
 public:
  Statement() = default;
  Statement(Statement&&) = default;
  Statement& operator=(Statement&&) = default;

  // Prepares `sql` (a single statement). `operation` names it in error messages, e.g.
  // "insert turn". `persistent` hints sqlite that the statement is reused many times.
  static Result<Statement> Prepare(sqlite3* db, std::string_view sql, std::string operation,
                                   std::string path, bool persistent = true);

  void BindText(int index, std::string_view text);
  void BindInt(int index, int64_t value);
  void BindDouble(int index, double value);
  void BindNull(int index);

  // Advances: true when a row is available, false when the statement is done. On error the
  // statement is reset and the Status says what failed (sqlite's extended result code is kept
  // in last_result_code()).
  Result<bool> Step();
  // Steps to completion, expecting no result row, then resets. For INSERT/UPDATE/DELETE.
  Status Run();
  // Makes the statement ready for reuse and drops bindings. Releases any read snapshot the
  // statement held (an un-reset SELECT would keep the WAL from being checkpointed).
  void Reset();

  // Column accessors for the current row; 0-based as in sqlite3_column_*.
  bool IsNull(int column) const;
  int64_t Int(int column) const;
  double Double(int column) const;
  std::string Text(int column) const;  // byte-exact, may contain NUL

  int last_result_code() const { return last_rc_; }
  const std::string& operation() const { return operation_; }
  sqlite3_stmt* get() const { return stmt_.get(); }

 private:
  Statement(sqlite3* db, sqlite3_stmt* stmt, std::string operation, std::string path);
  void NoteBind(int rc, int index);

  sqlite3* db_ = nullptr;  // not owned
  StatementHandle stmt_;
  std::string operation_;
  std::string path_;
  int bind_rc_ = SQLITE_OK;  // first bind failure since the last reset
  int bind_index_ = 0;
  int last_rc_ = SQLITE_OK;
};

// Resets a statement when it goes out of scope, so an early return never leaves it mid-step.
class ScopedReset {
 public:
  explicit ScopedReset(Statement& statement) : statement_(statement) {}
  ~ScopedReset() { statement_.Reset(); }
  ScopedReset(const ScopedReset&) = delete;
  ScopedReset& operator=(const ScopedReset&) = delete;

 private:
  Statement& statement_;
};

}  // namespace store
}  // namespace breakfix

#endif  // BREAKFIX_STORE_SQLITE_STATEMENT_H_
