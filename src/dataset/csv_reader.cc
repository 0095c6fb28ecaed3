#include "dataset/csv_reader.h"

#include "dataset/location.h"

namespace breakfix::dataset {
namespace {

// How a byte is shown in an error message.
std::string Describe(char c) {
  if (c == '\r') return "a carriage return";
  if (c == '\t') return "a tab";
  if (static_cast<unsigned char>(c) < 0x20) return "control byte " + std::to_string(int{c});
  return std::string("'") + c + "'";
}

std::string JoinColumns(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

}  // namespace

CsvReader::CsvReader(ByteStream* in) : in_(in) {}

bool CsvReader::Get(char* c) {
  if (!in_->Get(c)) return false;
  got_line_ = line_;
  got_column_ = column_;
  if (*c == '\n') {
    ++line_;
    column_ = 1;
  } else if ((static_cast<unsigned char>(*c) & 0xC0) != 0x80) {
    // A lead byte starts a new character; continuation bytes belong to the previous one.
    ++column_;
  }
  return true;
}

bool CsvReader::NextIs(char c) {
  char next;
  return in_->Peek(&next) && next == c;
}

Result<bool> CsvReader::ReadRecord(std::vector<CsvField>* fields) {
  while (true) {
    fields->clear();
    record_line_ = line_;
    CsvField field;
    field.line = line_;
    field.column = column_;
    bool at_field_start = true;
    bool quoted = false;       // inside a quoted field
    bool after_quote = false;  // inside a quoted field, just after a '"'
    bool field_was_quoted = false;
    bool consumed_any = false;
    size_t record_bytes = 0;
    auto finish_field = [&]() {
      fields->push_back(std::move(field));
      field = CsvField();
      field.line = line_;
      field.column = column_;
      at_field_start = true;
    };
    bool blank_line = false;
    while (true) {
      char c;
      if (!Get(&c)) {
        BF_RETURN_IF_ERROR(in_->status());
        end_line_ = line_;
        end_column_ = column_;
        if (!consumed_any) return false;
        if (quoted && !after_quote) {
          return ErrorAt({in_->name(), field.line, field.column},
                         "quoted field is never closed (reached the end of the file)",
                         "a closing '\"'");
        }
        finish_field();
        return true;
      }
      consumed_any = true;
      if (++record_bytes > kMaxRecordBytes) {
        return ErrorAt({in_->name(), record_line_, 1},
                       "record is longer than " + std::to_string(kMaxRecordBytes) + " bytes",
                       "a shorter record (is a quote left open?)");
      }
      if (quoted) {
        if (after_quote) {
          if (c == '"') {  // a doubled quote: one literal quote
            field.value += '"';
            after_quote = false;
            continue;
          }
          quoted = false;
          after_quote = false;
          if (c == ',') {
            finish_field();
            field_was_quoted = false;
            continue;
          }
          if (c != '\n' && !(c == '\r' && NextIs('\n'))) {
            return ErrorAt({in_->name(), got_line_, got_column_},
                           Describe(c) + " after the closing quote of the field that starts at " +
                               std::to_string(field.line) + ":" + std::to_string(field.column),
                           "',' or the end of the line (a quote inside a quoted field is "
                           "written twice: \"\")");
          }
        } else if (c == '"') {
          after_quote = true;
          continue;
        } else {
          field.value += c;
          continue;
        }
      } else if (at_field_start && c == '"') {
        quoted = true;
        field_was_quoted = true;
        at_field_start = false;
        continue;
      } else if (c == ',') {
        finish_field();
        field_was_quoted = false;
        continue;
      } else if (c != '\n' && !(c == '\r' && NextIs('\n'))) {
        at_field_start = false;
        field.value += c;
        continue;
      }
      // End of the record.
      end_line_ = got_line_;
      end_column_ = got_column_;
      if (c == '\r') Get(&c);  // the '\n' of CRLF
      blank_line = fields->empty() && field.value.empty() && !field_was_quoted;
      finish_field();
      break;
    }
    if (!blank_line) return true;
  }
}

Status CsvReader::ReadHeader() {
  // Skip a UTF-8 byte order mark; it is not part of the first column's name.
  char c;
  if (in_->Peek(&c) && c == '\xEF') {
    char b1, b2, b3;
    // The BOM is three bytes; anything else starting with 0xEF is a normal character, which we
    // cannot push back, so only consume when the whole mark matches.
    in_->Get(&b1);
    if (in_->Peek(&b2) && b2 == '\xBB') {
      in_->Get(&b2);
      if (in_->Peek(&b3) && b3 == '\xBF') {
        in_->Get(&b3);
      } else {
        return ErrorAt({in_->name(), 1, 1}, "an incomplete UTF-8 byte order mark",
                       "UTF-8 text with a header row");
      }
    } else {
      return ErrorAt({in_->name(), 1, 1}, "invalid UTF-8 at the start of the file",
                     "UTF-8 text with a header row");
    }
  }
  std::vector<CsvField> fields;
  BF_ASSIGN_OR_RETURN(bool got, ReadRecord(&fields));
  if (!got) {
    BF_RETURN_IF_ERROR(in_->status());
    return ErrorAt({in_->name(), 1, 1}, "the file is empty", "a header row naming the columns");
  }
  header_.clear();
  for (auto& f : fields) header_.push_back(std::move(f.value));
  return Status::OK();
}

Result<bool> CsvReader::Next(std::vector<CsvField>* fields) {
  BF_ASSIGN_OR_RETURN(bool got, ReadRecord(fields));
  if (!got) return false;
  if (fields->size() != header_.size()) {
    std::string found = "a row with " + std::to_string(fields->size()) + " field" +
                        (fields->size() == 1 ? "" : "s");
    std::string expected =
        std::to_string(header_.size()) + " fields as in the header (" + JoinColumns(header_) + ")";
    if (fields->size() > header_.size()) {
      const CsvField& extra = (*fields)[header_.size()];
      return ErrorAt({in_->name(), extra.line, extra.column}, found, expected);
    }
    return ErrorAt({in_->name(), end_line_, end_column_}, found, expected);
  }
  return true;
}

}  // namespace breakfix::dataset
