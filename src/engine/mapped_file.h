// MappedFile: a whole file mapped read-only into memory, unmapped when the object dies.
//
// The GGUF and safetensors readers keep tensor data in the mapping instead of copying it, so a
// multi-gigabyte model costs address space, not heap. Immutable after Open; safe to read from
// any number of threads. An empty file maps to data() == nullptr, size() == 0.
#ifndef BREAKFIX_ENGINE_MAPPED_FILE_H_
#define BREAKFIX_ENGINE_MAPPED_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "breakfix/status.h"

namespace breakfix::engine {

class MappedFile {
 public:
  // Errors: NotFound when the path does not exist, InvalidArgument when it is not a regular
  // file, IOError when the OS refuses to open or map it. Each names the path and the reason.
  static Result<std::unique_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const uint8_t* data_;
  size_t size_;
};

}  // namespace breakfix::engine

#endif  // BREAKFIX_ENGINE_MAPPED_FILE_H_
