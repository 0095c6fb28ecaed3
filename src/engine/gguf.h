// GGUF (v2/v3) reading: metadata, vocabulary arrays and tensors, memory-mapped.
//
// Format facts (from the GGUF specification): little-endian; magic "GGUF", uint32 version,
// uint64 tensor count, uint64 metadata count; metadata = (string key, uint32 type, value)*;
// tensor infos = (string name, uint32 n_dims, uint64 ne[n_dims], uint32 ggml type, uint64
// offset)*; tensor data starts at the next multiple of general.alignment (default 32) after the
// header, and each offset is relative to that start. ne[0] is the innermost (contiguous)
// dimension, so a GGUF tensor with ne = [cols, rows] is a row-major [rows, cols] matrix.
//
// Every malformed or truncated input is an error naming what and where (key or tensor name,
// byte offset, type); nothing here may crash on hostile bytes. Thread-safe after Open.
#ifndef BREAKFIX_ENGINE_GGUF_H_
#define BREAKFIX_ENGINE_GGUF_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "breakfix/status.h"

namespace breakfix::engine {

enum class GgufValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};

// A metadata value. Scalars use the field matching their kind; arrays are stored by element kind
// (integers of any width in `ints`, floats in `floats`, bools as 0/1 in `ints`, strings in
// `strings`; nested arrays are rejected as unsupported).
struct GgufValue {
  GgufValueType type = GgufValueType::kUint32;
  GgufValueType element_type = GgufValueType::kUint32;  // for arrays
  int64_t int_value = 0;      // all integer kinds and bool (uint64 above INT64_MAX is an error)
  double float_value = 0;
  std::string string_value;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;
};

// ggml tensor types breakfix reads (numbering as in ggml).
enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ8_0 = 8, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14,
  kBF16 = 30,
};
// "F32", "Q4_K", ... or "type N" for others.
std::string GgmlTypeName(uint32_t type);

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // row-major order, outermost first (ne reversed)
  uint32_t type = 0;           // ggml type number
  uint64_t offset = 0;         // absolute byte offset of the data in the file
  uint64_t nbytes = 0;         // size of the data in the file
  int64_t elements() const;
};

class GgufFile {
 public:
  static Result<std::unique_ptr<GgufFile>> Open(const std::string& path);
  // Parses an in-memory image (the fuzzer and tests use this); `data` must outlive the object.
  static Result<std::unique_ptr<GgufFile>> Parse(const uint8_t* data, size_t size,
                                                 const std::string& name);
  virtual ~GgufFile() = default;

  virtual const std::string& path() const = 0;
  virtual uint32_t version() const = 0;
  virtual const std::map<std::string, GgufValue>& metadata() const = 0;
  virtual const std::vector<GgufTensorInfo>& tensors() const = 0;
  const GgufValue* Find(const std::string& key) const;
  const GgufTensorInfo* FindTensor(const std::string& name) const;

  // Typed accessors; the error names the key and the expected vs found type.
  Result<std::string> GetString(const std::string& key) const;
  Result<int64_t> GetInt(const std::string& key) const;
  Result<double> GetFloat(const std::string& key) const;    // integer values convert
  Result<bool> GetBool(const std::string& key) const;
  Result<std::vector<std::string>> GetStrings(const std::string& key) const;
  Result<std::vector<double>> GetFloats(const std::string& key) const;
  Result<std::vector<int64_t>> GetInts(const std::string& key) const;

  // The tensor's elements as float32, dequantized when quantized (F32, F16, BF16, Q8_0, Q4_0,
  // Q4_1, Q4_K, Q5_K, Q6_K). Unsupported types are an error naming the tensor and its type.
  virtual Result<std::vector<float>> ReadF32(const GgufTensorInfo& tensor) const = 0;
};

// Dequantizes `n` elements of ggml type `type` from `src` (exactly GgmlRowBytes(type, n) bytes).
Status DequantizeRow(uint32_t type, const uint8_t* src, int64_t n, float* dst);
// Bytes that `n` elements of `type` occupy; error when n is not a multiple of the block size or
// the type is unsupported.
Result<uint64_t> GgmlBytes(uint32_t type, int64_t n);

}  // namespace breakfix::engine

#endif  // BREAKFIX_ENGINE_GGUF_H_
