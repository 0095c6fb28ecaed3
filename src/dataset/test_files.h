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
#include "testing/scratch_dir.h"

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

using test_support::ScratchDir;

}  // namespace breakfix::dataset

#endif  // BREAKFIX_DATASET_TEST_FILES_H_
