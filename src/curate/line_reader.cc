// Line-by-line reading of plain or gzipped text through zlib's gz* interface, which passes plain
// files through unchanged.
#include "curate/line_reader.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>

namespace breakfix::curate {
namespace {

constexpr size_t kChunkBytes = 256 * 1024;

gzFile Gz(void* p) { return static_cast<gzFile>(p); }

}  // namespace

Result<std::unique_ptr<LineReader>> LineReader::Open(const std::string& path) {
  errno = 0;
  gzFile gz = gzopen(path.c_str(), "rb");
  if (gz == nullptr) {
    const int err = errno;
    return Status::NotFound("cannot open " + path + ": " +
                            (err != 0 ? std::strerror(err) : "out of memory"));
  }
  gzbuffer(gz, kChunkBytes);
  return std::unique_ptr<LineReader>(new LineReader(path, gz));
}

LineReader::LineReader(std::string path, void* gz)
    : path_(std::move(path)), gz_(gz), buf_(new char[kChunkBytes]) {}

LineReader::~LineReader() {
  if (gz_ != nullptr) gzclose(Gz(gz_));
}

bool LineReader::Fill() {
  if (eof_ || !status_.ok()) return false;
  const int n = gzread(Gz(gz_), buf_.get(), static_cast<unsigned>(kChunkBytes));
  if (n < 0) {
    int code = 0;
    const char* msg = gzerror(Gz(gz_), &code);
    status_ = Status::InvalidArgument(path_ + ":" + std::to_string(line_number_ + 1) +
                                      ": cannot read: " + (msg != nullptr ? msg : "zlib error") +
                                      " (a damaged or truncated gzip file?)");
    return false;
  }
  if (n == 0) {
    // gzread also returns 0 on a stream that ends early; only gzerror tells the two apart.
    int code = 0;
    const char* msg = gzerror(Gz(gz_), &code);
    if (code != Z_OK && code != Z_STREAM_END) {
      status_ = Status::InvalidArgument(path_ + ":" + std::to_string(line_number_ + 1) +
                                        ": cannot read: " + (msg != nullptr ? msg : "zlib error") +
                                        " (a damaged or truncated gzip file?)");
    }
    eof_ = true;
    return false;
  }
  pos_ = 0;
  len_ = static_cast<size_t>(n);
  return true;
}

Result<bool> LineReader::Next(std::string* line) {
  line->clear();
  bool any = false;
  for (;;) {
    if (pos_ == len_ && !Fill()) break;
    any = true;
    const char* start = buf_.get() + pos_;
    const void* nl = std::memchr(start, '\n', len_ - pos_);
    const size_t take = nl != nullptr ? static_cast<const char*>(nl) - start : len_ - pos_;
    if (line->size() + take > kMaxLineBytes) {
      return Status::InvalidArgument(path_ + ":" + std::to_string(line_number_ + 1) +
                                     ": line longer than " + std::to_string(kMaxLineBytes) +
                                     " bytes");
    }
    line->append(start, take);
    pos_ += take;
    if (nl != nullptr) {
      ++pos_;  // the '\n'
      break;
    }
  }
  if (!status_.ok()) return status_;
  if (!any) return false;
  ++line_number_;
  if (!line->empty() && line->back() == '\r') line->pop_back();
  if (line_number_ == 1 && line->rfind("\xEF\xBB\xBF", 0) == 0) line->erase(0, 3);
  return true;
}

}  // namespace breakfix::curate
