// ImportRows: streams the rows of one `import:` file (CSV or JSONL) as item bindings, applying
// the column mapping and checking every value the way explicit items are checked. The loader
// uses it once to count and validate the file (and hash it); each cursor uses it again to
// produce the items, so memory stays at one row whatever the file's size. Not thread-safe.
#ifndef BREAKFIX_DATASET_IMPORT_ROWS_H_
#define BREAKFIX_DATASET_IMPORT_ROWS_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "breakfix/status.h"
#include "dataset/byte_stream.h"
#include "dataset/csv_reader.h"
#include "dataset/jsonl_reader.h"
#include "dataset/suite_spec.h"

namespace breakfix::dataset {

class ImportRows {
 public:
  // Opens the file and, for CSV, resolves every mapped column against the header. `documents`
  // and `family` must outlive the reader.
  static Result<std::unique_ptr<ImportRows>> Open(const std::vector<DocumentSpec>& documents,
                                                  const FamilySpec& family,
                                                  const ImportSpec& import);

  // The next row's binding and where the row starts; false at the end of the file.
  Result<bool> Next(ItemBinding* binding, Location* where);

  // Reads whatever is left of the file and returns the SHA-256 hex of all of it.
  Result<std::string> FinishAndHash();

 private:
  ImportRows(const std::vector<DocumentSpec>& documents, const FamilySpec& family,
             const ImportSpec& import, std::unique_ptr<ByteStream> in);
  // Applies one mapped value to the binding.
  Status Apply(const ColumnSpec& column, const std::optional<std::string>& value,
               const Location& where, ItemBinding* binding);

  const std::vector<DocumentSpec>& documents_;
  const FamilySpec& family_;
  const ImportSpec& import_;
  std::unique_ptr<ByteStream> in_;
  std::unique_ptr<CsvReader> csv_;
  std::unique_ptr<JsonlReader> jsonl_;
  std::vector<size_t> csv_index_;  // per ImportSpec::columns entry: its CSV column
  std::vector<std::string> keys_;  // per ImportSpec::columns entry: its JSONL key
  std::vector<CsvField> fields_;
  std::vector<std::optional<std::string>> values_;
};

}  // namespace breakfix::dataset

#endif  // BREAKFIX_DATASET_IMPORT_ROWS_H_
