// ByteStream: a file (or, in tests, a string) read front to back in fixed-size chunks, so
// imported CSV/JSONL files of any size cost one chunk of memory. Every byte read is also fed to
// a SHA-256, so the loader can hash an import in the same pass that counts its rows.
//
// Not thread-safe; one reader at a time.
#ifndef BREAKFIX_DATASET_BYTE_STREAM_H_
#define BREAKFIX_DATASET_BYTE_STREAM_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "breakfix/hash.h"
#include "breakfix/status.h"

namespace breakfix::dataset {

class ByteStream {
 public:
  // Opens `path` for reading; NotFound (with the OS reason) when it cannot be opened.
  static Result<std::unique_ptr<ByteStream>> OpenFile(const std::string& path);
  // A stream over an in-memory copy of `data`, named `name` in errors.
  static std::unique_ptr<ByteStream> FromString(std::string data, std::string name);

  ByteStream(const ByteStream&) = delete;
  ByteStream& operator=(const ByteStream&) = delete;
  ~ByteStream();

  // The next byte without consuming it; false at end of input or after a read error.
  bool Peek(char* c) {
    if (pos_ == len_ && !Fill()) return false;
    *c = buf_[pos_];
    return true;
  }
  // Consumes and returns the next byte; false at end of input or after a read error.
  bool Get(char* c) {
    if (pos_ == len_ && !Fill()) return false;
    *c = buf_[pos_++];
    return true;
  }
  // Reads up to and excluding the next '\n' (the '\n' is consumed). False when the input is
  // exhausted before any byte could be read. Lines longer than `max_bytes` set an error.
  bool ReadLine(std::string* line, size_t max_bytes);

  // Reads and discards the rest of the input (still hashing it).
  void Drain();
  // OK, or the sticky read error (IOError naming the file, or a line-length overflow).
  const Status& status() const { return status_; }
  // SHA-256 hex of every byte read so far; the whole file's hash once Drain() or EOF is reached.
  std::string HexDigest() const;
  const std::string& name() const { return name_; }

 private:
  struct FileCloser {
    void operator()(std::FILE* f) const {
      if (f != nullptr) std::fclose(f);
    }
  };
  ByteStream(std::unique_ptr<std::FILE, FileCloser> file, std::string data, std::string name);
  // Loads the next chunk into buf_; false at end of input or on error.
  bool Fill();

  static constexpr size_t kChunkBytes = 64 * 1024;

  std::unique_ptr<std::FILE, FileCloser> file_;  // null for string streams
  std::string data_;                             // the whole input for string streams
  size_t data_pos_ = 0;
  std::string name_;
  std::unique_ptr<char[]> buf_;
  size_t pos_ = 0;
  size_t len_ = 0;
  bool eof_ = false;
  Sha256 sha_;
  Status status_;
};

}  // namespace breakfix::dataset

#endif  // BREAKFIX_DATASET_BYTE_STREAM_H_
