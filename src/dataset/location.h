// Where a piece of suite input came from, for error messages: "file:line:column".
#ifndef BREAKFIX_DATASET_LOCATION_H_
#define BREAKFIX_DATASET_LOCATION_H_

#include <cstdint>
#include <string>

#include "breakfix/status.h"

namespace breakfix::dataset {

// A position in a text file. line and column are 1-based; column counts characters (UTF-8
// code points), not bytes. A line of 0 means "the file as a whole" and prints as just the file.
struct Location {
  std::string file;
  int64_t line = 0;
  int64_t column = 0;

  // "file:line:column", or "file" when line is 0.
  std::string ToString() const;
};

// InvalidArgument("file:line:column: <found>; expected <expected>").
Status ErrorAt(const Location& where, const std::string& found, const std::string& expected);

// Number of UTF-8 code points in `bytes` (continuation bytes 10xxxxxx are not counted).
int64_t CountCodePoints(const std::string& bytes, size_t begin, size_t end);

}  // namespace breakfix::dataset

#endif  // BREAKFIX_DATASET_LOCATION_H_
