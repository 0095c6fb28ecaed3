// The result store's schema and its migrations (the schema itself is documented in schema.cc).
//
// A database records its version in PRAGMA user_version. Opening applies every migration whose
// version is above the stored one, in order, each in its own transaction, so a crash or an error
// mid-upgrade leaves the database at the last version that was fully applied. Migrations are
// append-only: once released, a migration's SQL never changes; a change is a new migration.
#ifndef BREAKFIX_STORE_SCHEMA_H_
#define BREAKFIX_STORE_SCHEMA_H_

#include <sqlite3.h>

#include <string>
#include <vector>

#include "breakfix/status.h"

namespace breakfix {
namespace store {

// Marks a database as a breakfix result store (PRAGMA application_id): "BFIX" in ASCII.
inline constexpr int kApplicationId = 0x42464958;

struct Migration {
  int version;              // the user_version after this migration; 1, 2, ... in order
  const char* description;  // one line, for error messages
  const char* sql;          // statements without parameters
};

// Every migration, ordered by version; the last one's version is the current schema version.
const std::vector<Migration>& Migrations();

// Checks that the database at `path` is empty or a breakfix store no newer than this build,
// then applies the missing migrations up to `target_version` (normally the last). Errors:
// kInvalidArgument for an SQLite file that belongs to something else, kFailedPrecondition for a
// newer schema (naming both versions), or the failing migration's sqlite error.
Status MigrateSchema(sqlite3* db, const std::string& path, int target_version);

// PRAGMA user_version of `db`.
Result<int> ReadSchemaVersion(sqlite3* db, const std::string& path);

}  // namespace store
}  // namespace breakfix

#endif  // BREAKFIX_STORE_SCHEMA_H_
