// LineReader: reads a text file line by line, whether it is plain or gzip-compressed (zlib
// detects the format from the first bytes), so every curation input may be given either way.
//
// A UTF-8 byte order mark at the start and a CR before each LF are dropped. Memory is one chunk
// plus the current line. Not thread-safe.
#ifndef BREAKFIX_CURATE_LINE_READER_H_
#define BREAKFIX_CURATE_LINE_READER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "breakfix/status.h"

namespace breakfix::curate {

class LineReader {
 public:
  // Longest line accepted, in bytes.
  static constexpr size_t kMaxLineBytes = 256 * 1024 * 1024;

  // NotFound naming the path when it cannot be opened.
  static Result<std::unique_ptr<LineReader>> Open(const std::string& path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Fills *line with the next line (without its end of line) and returns true, or returns false
  // at the end of the file. A damaged gzip stream, a read error or an over-long line is an error
  // naming path:line.
  Result<bool> Next(std::string* line);

  // 1-based number of the line last returned.
  int64_t line_number() const { return line_number_; }
  const std::string& path() const { return path_; }

 private:
  LineReader(std::string path, void* gz);
  // Loads the next chunk; false at the end of input. Errors are kept in status_.
  bool Fill();

  std::string path_;
  void* gz_;  // gzFile; void* keeps zlib.h out of this header
  std::unique_ptr<char[]> buf_;
  size_t pos_ = 0;
  size_t len_ = 0;
  bool eof_ = false;
  int64_t line_number_ = 0;
  Status status_;
};

}  // namespace breakfix::curate

#endif  // BREAKFIX_CURATE_LINE_READER_H_
