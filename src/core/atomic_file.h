// AtomicFile: write a file in pieces, then make it appear under its name all at once.
//
// Data goes to "<path>.tmp.<pid>" in the same directory; Commit() flushes, fsyncs and renames it
// over `path`. Destroying an uncommitted AtomicFile removes the temporary file, so a crash or an
// error never leaves a half-written report behind. Not thread-safe.
#ifndef BREAKFIX_CORE_ATOMIC_FILE_H_
#define BREAKFIX_CORE_ATOMIC_FILE_H_

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "breakfix/status.h"

namespace breakfix {

class AtomicFile {
 public:
  static Result<std::unique_ptr<AtomicFile>> Create(const std::string& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Buffered; the first failure is sticky and reported by Commit().
  void Write(std::string_view data);
  Status Commit();

 private:
  AtomicFile(std::string path, std::string tmp, FILE* f) : path_(path), tmp_(tmp), f_(f) {}
  std::string path_;
  std::string tmp_;
  FILE* f_;
  bool failed_ = false;
  bool committed_ = false;
};

// Creates `dir` and its parents if missing.
Status MakeDirs(const std::string& dir);

}  // namespace breakfix

#endif  // BREAKFIX_CORE_ATOMIC_FILE_H_
