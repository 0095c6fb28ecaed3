// A small GGUF writer: version 3 files with metadata of every kind and tensors in F32, F16 or
// Q8_0 (quantized here), or raw pre-encoded bytes of any ggml type. Tests build models with it,
// the fuzzers build seed images with it, and whatever it writes GgufFile reads back exactly
// (F32 bit for bit; F16 and Q8_0 as their dequantized values).
//
// Pure functions; thread-safe.
#ifndef BREAKFIX_ENGINE_GGUF_WRITER_H_
#define BREAKFIX_ENGINE_GGUF_WRITER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "breakfix/status.h"
#include "engine/gguf.h"

namespace breakfix::engine {

struct GgufWriterTensor {
  std::string name;
  std::vector<int64_t> shape;  // row-major, outermost first (as GgufTensorInfo::shape)
  uint32_t type = static_cast<uint32_t>(GgmlType::kF32);  // F32, F16 or Q8_0 when `data` is used
  std::vector<float> data;  // the elements, converted to `type` on writing
  std::string raw;          // when non-empty: the already-encoded bytes, written as they are
};

// The whole file as bytes. Metadata values are written with their `type` (and `element_type`
// for arrays), taking integers from int_value/ints, floats from float_value/floats and strings
// from string_value/strings. Tensor data is aligned to `general.alignment` when the metadata
// sets it (a power of two), otherwise 32. Errors name the key or tensor: a value out of range
// for its type, an element count that disagrees with the shape, an unsupported type, a
// duplicate tensor name.
Result<std::string> SerializeGguf(const std::map<std::string, GgufValue>& metadata,
                                  const std::vector<GgufWriterTensor>& tensors);

// SerializeGguf, then an atomic write to `path` (temporary file + rename).
Status WriteGguf(const std::string& path, const std::map<std::string, GgufValue>& metadata,
                 const std::vector<GgufWriterTensor>& tensors);

// Convenience constructors for metadata values.
GgufValue GgufString(std::string s);
GgufValue GgufUint32(uint32_t v);
GgufValue GgufInt(GgufValueType type, int64_t v);  // any integer kind or kBool
GgufValue GgufFloat32(float v);
GgufValue GgufBool(bool v);
GgufValue GgufStringArray(std::vector<std::string> v);
GgufValue GgufFloatArray(std::vector<double> v, GgufValueType element = GgufValueType::kFloat32);
GgufValue GgufIntArray(std::vector<int64_t> v, GgufValueType element = GgufValueType::kInt32);

}  // namespace breakfix::engine

#endif  // BREAKFIX_ENGINE_GGUF_WRITER_H_
