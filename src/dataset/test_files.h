// Test support: a scratch directory that is removed when the test ends. Used only by tests.
#ifndef BREAKFIX_DATASET_TEST_FILES_H_
#define BREAKFIX_DATASET_TEST_FILES_H_

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "breakfix/suite.h"

namespace breakfix::dataset {

// Every item of `suite`, in cursor order; a cursor error fails the calling test.
inline std::vector<SeedItem> ReadAll(const Suite& suite) {
  std::vector<SeedItem> items;
  auto cursor = suite.NewCursor();
  SeedItem item;
  while (true) {
    auto r = cursor->Next(&item);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || !*r) break;
    items.push_back(item);
  }
  return items;
}

class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "breakfix_dataset_XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  // Writes `contents` to path()/name (byte for byte) and returns the full path.
  std::string Write(const std::string& name, const std::string& contents) const {
    std::string full = path_ + "/" + name;
    std::ofstream out(full, std::ios::binary | std::ios::trunc);
    out << contents;
    return full;
  }

 private:
  std::string path_;
};

}  // namespace breakfix::dataset

#endif  // BREAKFIX_DATASET_TEST_FILES_H_
