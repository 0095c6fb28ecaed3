// A fresh directory under the system's temporary directory ($TMPDIR), removed with everything in
// it when the object goes away. For tests; header-only and free of gtest, so any test (and test
// support header) can use it.
#ifndef BREAKFIX_TESTING_SCRATCH_DIR_H_
#define BREAKFIX_TESTING_SCRATCH_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace breakfix::test_support {

class ScratchDir {
 public:
  // `prefix` names the directory (prefix_XXXXXX), so a leftover one says which test made it.
  explicit ScratchDir(const std::string& prefix = "breakfix_test") {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "_XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed for " + pattern);
    }
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/name.
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  // Writes `contents` byte for byte to path()/name (folders in `name` are created) and returns
  // that path.
  std::string Write(const std::string& name, const std::string& contents) const {
    std::error_code ignored;
    std::filesystem::create_directories(std::filesystem::path(File(name)).parent_path(), ignored);
    std::ofstream out(File(name), std::ios::binary | std::ios::trunc);
    out << contents;
    return File(name);
  }

 private:
  std::string path_;
};

}  // namespace breakfix::test_support

#endif  // BREAKFIX_TESTING_SCRATCH_DIR_H_
