// CsvReader: a streaming RFC 4180 reader that remembers where every field came from.
//
// Accepted input: comma-separated fields; fields may be quoted with '"', a doubled quote inside a
// quoted field is a literal quote, and quoted fields may hold commas and line breaks (kept as
// written, CRLF included). Records end with LF or CRLF; a lone CR outside quotes is ordinary data.
// A UTF-8 byte order mark at the start is skipped. Entirely empty lines between records are
// skipped. The first record is the header, and every later record must have as many fields.
// A quote inside an unquoted field is kept as a literal character (as most spreadsheet exports
// expect).
//
// Positions are 1-based; the column counts characters (UTF-8 code points) on the physical line.
// Not thread-safe.
#ifndef BREAKFIX_DATASET_CSV_READER_H_
#define BREAKFIX_DATASET_CSV_READER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "breakfix/status.h"
#include "dataset/byte_stream.h"

namespace breakfix::dataset {

struct CsvField {
  std::string value;
  int64_t line = 0;  // where the field starts (its opening quote, if quoted)
  int64_t column = 0;
};

class CsvReader {
 public:
  // Largest record accepted, in bytes; a longer one is an error rather than unbounded memory.
  static constexpr size_t kMaxRecordBytes = 64 * 1024 * 1024;

  // `in` is not owned and must outlive the reader.
  explicit CsvReader(ByteStream* in);

  // Reads the header record. Must be called once, before Next().
  Status ReadHeader();
  const std::vector<std::string>& header() const { return header_; }

  // Reads the next record into *fields: true, or false at the end of input. A record whose field
  // count differs from the header's, an unterminated quote or a stray character after a closing
  // quote is an InvalidArgument naming "file:line:column".
  Result<bool> Next(std::vector<CsvField>* fields);

  // Line on which the record last returned by Next() (or the header) starts.
  int64_t record_line() const { return record_line_; }

 private:
  // Reads one raw record; false at end of input.
  Result<bool> ReadRecord(std::vector<CsvField>* fields);
  // Consumes one byte, tracking the position; records the consumed byte's position.
  bool Get(char* c);
  bool NextIs(char c);

  ByteStream* in_;
  std::vector<std::string> header_;
  int64_t line_ = 1;  // position of the next byte
  int64_t column_ = 1;
  int64_t got_line_ = 1;  // position of the byte last consumed by Get()
  int64_t got_column_ = 1;
  int64_t record_line_ = 0;
  int64_t end_line_ = 0;  // where the last record's terminator (or end of input) was found
  int64_t end_column_ = 0;
};

}  // namespace breakfix::dataset

#endif  // BREAKFIX_DATASET_CSV_READER_H_
