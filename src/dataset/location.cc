#include "dataset/location.h"

namespace breakfix::dataset {

std::string Location::ToString() const {
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

Status ErrorAt(const Location& where, const std::string& found, const std::string& expected) {
  return Status::InvalidArgument(where.ToString() + ": " + found + "; expected " + expected);
}

int64_t CountCodePoints(const std::string& bytes, size_t begin, size_t end) {
  if (end > bytes.size()) end = bytes.size();
  int64_t n = 0;
  for (size_t i = begin; i < end; ++i) {
    if ((static_cast<unsigned char>(bytes[i]) & 0xC0) != 0x80) ++n;
  }
  return n;
}

}  // namespace breakfix::dataset
