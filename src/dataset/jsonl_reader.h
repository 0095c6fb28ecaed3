// JsonlReader: streams a JSON Lines file (one JSON object per line) and pulls named values out
// of each object, so JSON never leaves this file's implementation.
//
// Blank lines (only spaces, tabs, CR) are skipped; a trailing CR (CRLF files) is ignored; a UTF-8
// byte order mark at the start is skipped. A key is looked up first as a literal top-level key,
// then as a dotted path ("meta.source.title"; a numeric segment indexes an array). Strings come
// back as they are; numbers, booleans, arrays and objects come back as compact JSON text; null
// comes back as an empty string.
//
// Positions are 1-based; columns count characters (UTF-8 code points). Not thread-safe.
#ifndef BREAKFIX_DATASET_JSONL_READER_H_
#define BREAKFIX_DATASET_JSONL_READER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "breakfix/status.h"
#include "dataset/byte_stream.h"

namespace breakfix::dataset {

class JsonlReader {
 public:
  // Longest line accepted, in bytes.
  static constexpr size_t kMaxLineBytes = 64 * 1024 * 1024;

  // `in` is not owned and must outlive the reader.
  explicit JsonlReader(ByteStream* in);

  // Reads the next non-blank line and fills (*values)[i] with the value at keys[i], or nullopt
  // when the object has no such key. False at the end of input. A line that is not valid JSON,
  // or not an object, is an InvalidArgument naming "file:line:column".
  Result<bool> Next(const std::vector<std::string>& keys,
                    std::vector<std::optional<std::string>>* values);

  // Line number of the object last returned by Next().
  int64_t line() const { return line_; }

 private:
  ByteStream* in_;
  int64_t line_ = 0;
  std::string text_;
};

}  // namespace breakfix::dataset

#endif  // BREAKFIX_DATASET_JSONL_READER_H_
