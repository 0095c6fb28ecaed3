// libFuzzer harness: arbitrary bytes through SafetensorsFile::Parse, Find and ReadF32 of every
// tensor. Any crash or sanitizer report is a bug; errors are expected.
#include <cstddef>
#include <cstdint>

#include "engine/model_weights.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using breakfix::engine::SafetensorsFile;
  auto file = SafetensorsFile::Parse(data, size, "fuzz.safetensors");
  if (!file.ok()) return 0;
  (void)(*file)->metadata();
  for (const auto& tensor : (*file)->tensors()) {
    (void)(*file)->Find(tensor.name);
    (void)(*file)->ReadF32(tensor);
  }
  return 0;
}
