#include "core/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

namespace breakfix {

Result<std::unique_ptr<AtomicFile>> AtomicFile::Create(const std::string& path) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return Status::IOError(tmp + ": cannot create: " + std::strerror(errno));
  return std::unique_ptr<AtomicFile>(new AtomicFile(path, tmp, f));
}

AtomicFile::~AtomicFile() {
  if (f_ != nullptr) std::fclose(f_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFile::Write(std::string_view data) {
  if (failed_ || data.empty()) return;
  if (std::fwrite(data.data(), 1, data.size(), f_) != data.size()) failed_ = true;
}

Status AtomicFile::Commit() {
  if (committed_) return Status::FailedPrecondition(path_ + ": already committed");
  if (failed_) return Status::IOError(tmp_ + ": write failed");
  if (std::fflush(f_) != 0 || ::fsync(::fileno(f_)) != 0) {
    return Status::IOError(tmp_ + ": flush failed: " + std::strerror(errno));
  }
  int rc = std::fclose(f_);
  f_ = nullptr;
  if (rc != 0) return Status::IOError(tmp_ + ": close failed: " + std::strerror(errno));
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    return Status::IOError(path_ + ": rename failed: " + std::strerror(errno));
  }
  committed_ = true;
  return Status::OK();
}

Status MakeDirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError(dir + ": cannot create directory: " + ec.message());
  return Status::OK();
}

}  // namespace breakfix
