#include "dataset/byte_stream.h"

#include <cerrno>
#include <cstring>

namespace breakfix::dataset {

Result<std::unique_ptr<ByteStream>> ByteStream::OpenFile(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) {
    return Status::NotFound(path + ": cannot open: " + std::strerror(errno));
  }
  return std::unique_ptr<ByteStream>(new ByteStream(std::move(file), std::string(), path));
}

std::unique_ptr<ByteStream> ByteStream::FromString(std::string data, std::string name) {
  return std::unique_ptr<ByteStream>(new ByteStream(nullptr, std::move(data), std::move(name)));
}

ByteStream::ByteStream(std::unique_ptr<std::FILE, FileCloser> file, std::string data,
                       std::string name)
    : file_(std::move(file)),
      data_(std::move(data)),
      name_(std::move(name)),
      buf_(new char[kChunkBytes]) {}

ByteStream::~ByteStream() = default;

bool ByteStream::Fill() {
  if (eof_ || !status_.ok()) return false;
  size_t n = 0;
  if (file_ != nullptr) {
    n = std::fread(buf_.get(), 1, kChunkBytes, file_.get());
    if (n < kChunkBytes) {
      if (std::ferror(file_.get())) {
        status_ = Status::IOError(name_ + ": read failed: " + std::strerror(errno));
        return false;
      }
      if (n == 0) eof_ = true;
    }
  } else {
    n = std::min(kChunkBytes, data_.size() - data_pos_);
    std::memcpy(buf_.get(), data_.data() + data_pos_, n);
    data_pos_ += n;
    if (n == 0) eof_ = true;
  }
  if (n == 0) return false;
  sha_.Update(std::string_view(buf_.get(), n));
  pos_ = 0;
  len_ = n;
  return true;
}

bool ByteStream::ReadLine(std::string* line, size_t max_bytes) {
  line->clear();
  bool any = false;
  while (true) {
    if (pos_ == len_ && !Fill()) return any;
    any = true;
    const char* begin = buf_.get() + pos_;
    const void* nl = std::memchr(begin, '\n', len_ - pos_);
    size_t take = nl ? static_cast<const char*>(nl) - begin : len_ - pos_;
    if (line->size() + take > max_bytes) {
      status_ =
          Status::InvalidArgument(name_ + ": a line is longer than " + std::to_string(max_bytes) +
                                  " bytes; expected one record per line");
      return false;
    }
    line->append(begin, take);
    pos_ += take;
    if (nl != nullptr) {
      ++pos_;  // the '\n'
      return true;
    }
  }
}

void ByteStream::Drain() {
  pos_ = len_;
  while (Fill()) pos_ = len_;
}

std::string ByteStream::HexDigest() const {
  Sha256 copy = sha_;
  return copy.HexDigest();
}

}  // namespace breakfix::dataset
