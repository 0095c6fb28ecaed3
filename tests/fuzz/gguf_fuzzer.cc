// libFuzzer harness: arbitrary bytes through GgufFile::Parse, every metadata accessor and
// ReadF32 of every tensor. Any crash or sanitizer report is a bug; errors are expected.
#include <cstddef>
#include <cstdint>

#include "engine/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using breakfix::engine::GgufFile;
  auto file = GgufFile::Parse(data, size, "fuzz.gguf");
  if (!file.ok()) return 0;
  const GgufFile& f = **file;
  for (const auto& [key, value] : f.metadata()) {
    (void)f.GetString(key);
    (void)f.GetInt(key);
    (void)f.GetFloat(key);
    (void)f.GetBool(key);
    (void)f.GetStrings(key);
    (void)f.GetFloats(key);
    (void)f.GetInts(key);
  }
  for (const auto& tensor : f.tensors()) {
    (void)f.FindTensor(tensor.name);
    (void)f.ReadF32(tensor);
  }
  return 0;
}
