#include "store/sqlite_statement.h"

#include <utility>

namespace breakfix {
namespace store {

Status SqliteStatus(sqlite3* db, int rc, std::string_view operation, std::string_view path) {
  std::string message(operation);
  message += " on ";
  message += path;
  message += ": ";
  const char* detail = db != nullptr ? sqlite3_errmsg(db) : nullptr;
  const char* generic = sqlite3_errstr(rc);
  if (detail != nullptr && *detail != '\0') {
    message += detail;
    if (std::string_view(detail) != generic) {
      message += " (";
      message += generic;
      message += ")";
    }
  } else {
    message += generic;
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Unavailable(message +
                                 "; another process holds the database lock (waited busy_timeout)");
    case SQLITE_CORRUPT:
      return Status::Corruption(message);
    case SQLITE_NOTADB:
      return Status::InvalidArgument(message);
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return Status::IOError(message);
    case SQLITE_CONSTRAINT:
      return Status::FailedPrecondition(message);
    default:
      return Status::Internal(message);
  }
}

Status ExecSql(sqlite3* db, const char* sql, std::string_view operation, std::string_view path) {
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(db, rc, operation, path);
  return Status::OK();
}

Statement::Statement(sqlite3* db, sqlite3_stmt* stmt, std::string operation, std::string path)
    : db_(db), stmt_(stmt), operation_(std::move(operation)), path_(std::move(path)) {}

Result<Statement> Statement::Prepare(sqlite3* db, std::string_view sql, std::string operation,
                                     std::string path, bool persistent) {
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                              persistent ? SQLITE_PREPARE_PERSISTENT : 0, &raw, &tail);
  StatementHandle owned(raw);
  if (rc != SQLITE_OK) {
    return SqliteStatus(db, rc, "prepare " + operation, path);
  }
  if (owned == nullptr) {
    return Status::Internal("prepare " + operation + " on " + path + ": SQL text is empty");
  }
  if (tail != nullptr &&
      std::string_view(tail).find_first_not_of(" \t\r\n;") != std::string_view::npos) {
    return Status::Internal("prepare " + operation + " on " + path +
                            ": expected one SQL statement, found trailing text \"" +
                            std::string(tail) + "\"");
  }
  return Statement(db, owned.release(), std::move(operation), std::move(path));
}

void Statement::NoteBind(int rc, int index) {
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) {
    bind_rc_ = rc;
    bind_index_ = index;
  }
}

void Statement::BindText(int index, std::string_view text) {
  // An empty view may carry a null pointer, which sqlite would bind as NULL, not as "".
  const char* data = text.data() != nullptr ? text.data() : "";
  NoteBind(sqlite3_bind_text64(stmt_.get(), index, data, text.size(), SQLITE_STATIC, SQLITE_UTF8),
           index);
}

void Statement::BindInt(int index, int64_t value) {
  NoteBind(sqlite3_bind_int64(stmt_.get(), index, value), index);
}

void Statement::BindDouble(int index, double value) {
  NoteBind(sqlite3_bind_double(stmt_.get(), index, value), index);
}

void Statement::BindNull(int index) { NoteBind(sqlite3_bind_null(stmt_.get(), index), index); }

Result<bool> Statement::Step() {
  if (bind_rc_ != SQLITE_OK) {
    last_rc_ = bind_rc_;
    Status s = SqliteStatus(nullptr, bind_rc_,
                            operation_ + " (binding parameter " + std::to_string(bind_index_) + ")",
                            path_);
    Reset();
    return s;
  }
  int rc = sqlite3_step(stmt_.get());
  last_rc_ = rc;
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status s = SqliteStatus(db_, rc, operation_, path_);
  Reset();
  return s;
}

Status Statement::Run() {
  ScopedReset reset(*this);
  Result<bool> row = Step();
  if (!row.ok()) return row.status();
  if (*row) {
    return Status::Internal(operation_ + " on " + path_ +
                            ": returned a row where none was expected");
  }
  return Status::OK();
}

void Statement::Reset() {
  if (stmt_ == nullptr) return;
  // The return value repeats the last step's error, which Step() already reported.
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
  bind_rc_ = SQLITE_OK;
  bind_index_ = 0;
}

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_.get(), column) == SQLITE_NULL;
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_.get(), column); }

double Statement::Double(int column) const { return sqlite3_column_double(stmt_.get(), column); }

std::string Statement::Text(int column) const {
  // sqlite3_column_text first, then sqlite3_column_bytes: the documented order that yields the
  // length of the UTF-8 form.
  const unsigned char* data = sqlite3_column_text(stmt_.get(), column);
  int size = sqlite3_column_bytes(stmt_.get(), column);
  if (data == nullptr || size <= 0) return std::string();
  return std::string(reinterpret_cast<const char*>(data), static_cast<size_t>(size));
}

}  // namespace store
}  // namespace breakfix
