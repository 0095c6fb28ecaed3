#include "engine/gguf.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <numeric>
#include <unordered_set>
#include <utility>

#include "engine/dequantize.h"
#include "engine/mapped_file.h"

namespace breakfix::engine {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;  // ggml tensors have at most four dimensions

const char* ValueTypeName(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
      return "uint8";
    case GgufValueType::kInt8:
      return "int8";
    case GgufValueType::kUint16:
      return "uint16";
    case GgufValueType::kInt16:
      return "int16";
    case GgufValueType::kUint32:
      return "uint32";
    case GgufValueType::kInt32:
      return "int32";
    case GgufValueType::kFloat32:
      return "float32";
    case GgufValueType::kBool:
      return "bool";
    case GgufValueType::kString:
      return "string";
    case GgufValueType::kArray:
      return "array";
    case GgufValueType::kUint64:
      return "uint64";
    case GgufValueType::kInt64:
      return "int64";
    case GgufValueType::kFloat64:
      return "float64";
  }
  return "unknown";
}

std::string DescribeType(const GgufValue& v) {
  if (v.type != GgufValueType::kArray) return ValueTypeName(v.type);
  return std::string("array of ") + ValueTypeName(v.element_type);
}

bool IsInteger(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
      return true;
    default:
      return false;
  }
}

bool IsFloat(GgufValueType t) {
  return t == GgufValueType::kFloat32 || t == GgufValueType::kFloat64;
}

// Bytes one scalar of `t` occupies; strings count their 8-byte length prefix (their minimum).
// 0 for types that are not scalars.
uint64_t MinScalarBytes(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
    case GgufValueType::kString:
      return 8;
    case GgufValueType::kArray:
      return 0;
  }
  return 0;
}

// A cursor over the header bytes. Every read checks the remaining length first, and every error
// names the source and the byte offset where the bad field starts.
class HeaderReader {
 public:
  HeaderReader(const uint8_t* data, size_t size, const std::string& name)
      : data_(data), size_(size), name_(name) {}

  size_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  Status Error(const std::string& what) const { return ErrorAt(pos_, what); }
  Status ErrorAt(size_t offset, const std::string& what) const {
    return Status::InvalidArgument(name_ + ": offset " + std::to_string(offset) + ": " + what);
  }

  // `what` names the field; `index` >= 0 adds "element N" (built only when reporting an error,
  // so reading a 100k-entry vocabulary costs no string building).
  static std::string Field(const std::string& what, int64_t index) {
    return index < 0 ? what : what + " element " + std::to_string(index);
  }

  Status Need(uint64_t n, const std::string& what, int64_t index = -1) const {
    if (n > remaining()) {
      return Error(Field(what, index) + " needs " + std::to_string(n) + " bytes but only " +
                   std::to_string(remaining()) + " remain (truncated file?)");
    }
    return Status::OK();
  }

  template <typename T>
  Status Read(T* out, const std::string& what, int64_t index = -1) {
    BF_RETURN_IF_ERROR(Need(sizeof(T), what, index));
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<uint64_t>(data_[pos_ + i]) << (8 * i);
    if constexpr (std::is_same_v<T, float>) {
      *out = std::bit_cast<float>(static_cast<uint32_t>(v));
    } else if constexpr (std::is_same_v<T, double>) {
      *out = std::bit_cast<double>(v);
    } else {
      *out = static_cast<T>(v);
    }
    pos_ += sizeof(T);
    return Status::OK();
  }

  Status ReadString(std::string* out, const std::string& what, int64_t index = -1) {
    const size_t start = pos_;
    if (remaining() < 8) return Need(8, Field(what, index) + " length");
    uint64_t len = 0;
    BF_RETURN_IF_ERROR(Read(&len, what, index));
    if (len > remaining()) {
      pos_ = start;
      return Error(Field(what, index) + " claims " + std::to_string(len) + " bytes but only " +
                   std::to_string(remaining() - 8) + " remain");
    }
    out->assign(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return Status::OK();
  }

 private:
  const uint8_t* data_;
  size_t size_;
  const std::string& name_;
  size_t pos_ = 0;
};

// Reads one scalar of kind `t` into `v` (v->type is set by the caller).
Status ReadScalar(HeaderReader& r, GgufValueType t, const std::string& what, int64_t index,
                  int64_t* int_out, double* float_out, std::string* string_out) {
  switch (t) {
    case GgufValueType::kUint8: {
      uint8_t x{};
      BF_RETURN_IF_ERROR(r.Read(&x, what, index));
      *int_out = x;
      return Status::OK();
    }
    case GgufValueType::kInt8: {
      int8_t x{};
      BF_RETURN_IF_ERROR(r.Read(&x, what, index));
      *int_out = x;
      return Status::OK();
    }
    case GgufValueType::kBool: {
      uint8_t x{};
      BF_RETURN_IF_ERROR(r.Read(&x, what, index));
      *int_out = x != 0 ? 1 : 0;
      return Status::OK();
    }
    case GgufValueType::kUint16: {
      uint16_t x{};
      BF_RETURN_IF_ERROR(r.Read(&x, what, index));
      *int_out = x;
      return Status::OK();
    }
    case GgufValueType::kInt16: {
      int16_t x{};
      BF_RETURN_IF_ERROR(r.Read(&x, what, index));
      *int_out = x;
      return Status::OK();
    }
    case GgufValueType::kUint32: {
      uint32_t x{};
      BF_RETURN_IF_ERROR(r.Read(&x, what, index));
      *int_out = x;
      return Status::OK();
    }
    case GgufValueType::kInt32: {
      int32_t x{};
      BF_RETURN_IF_ERROR(r.Read(&x, what, index));
      *int_out = x;
      return Status::OK();
    }
    case GgufValueType::kUint64: {
      const size_t at = r.pos();
      uint64_t x{};
      BF_RETURN_IF_ERROR(r.Read(&x, what, index));
      if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return r.ErrorAt(at, HeaderReader::Field(what, index) + ": uint64 value " +
                                 std::to_string(x) + " is above the supported maximum " +
                                 std::to_string(std::numeric_limits<int64_t>::max()));
      }
      *int_out = static_cast<int64_t>(x);
      return Status::OK();
    }
    case GgufValueType::kInt64: {
      int64_t x{};
      BF_RETURN_IF_ERROR(r.Read(&x, what, index));
      *int_out = x;
      return Status::OK();
    }
    case GgufValueType::kFloat32: {
      float x{};
      BF_RETURN_IF_ERROR(r.Read(&x, what, index));
      *float_out = x;
      return Status::OK();
    }
    case GgufValueType::kFloat64: {
      double x{};
      BF_RETURN_IF_ERROR(r.Read(&x, what, index));
      *float_out = x;
      return Status::OK();
    }
    case GgufValueType::kString:
      return r.ReadString(string_out, what, index);
    case GgufValueType::kArray:
      break;
  }
  return r.Error(what + ": unexpected value type");
}

bool KnownValueType(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::kFloat64); }

Status ReadValue(HeaderReader& r, const std::string& key, GgufValue* v) {
  const std::string what = "metadata key '" + key + "'";
  const size_t type_at = r.pos();
  uint32_t type = 0;
  BF_RETURN_IF_ERROR(r.Read(&type, what + " type"));
  if (!KnownValueType(type)) {
    return r.ErrorAt(type_at,
                     what + ": unknown value type " + std::to_string(type) + " (expected 0..12)");
  }
  v->type = static_cast<GgufValueType>(type);
  if (v->type != GgufValueType::kArray) {
    return ReadScalar(r, v->type, what, -1, &v->int_value, &v->float_value, &v->string_value);
  }
  const size_t element_at = r.pos();
  uint32_t element = 0;
  BF_RETURN_IF_ERROR(r.Read(&element, what + " array element type"));
  if (!KnownValueType(element)) {
    return r.ErrorAt(element_at, what + ": unknown array element type " + std::to_string(element) +
                                     " (expected 0..12)");
  }
  v->element_type = static_cast<GgufValueType>(element);
  if (v->element_type == GgufValueType::kArray) {
    return r.ErrorAt(element_at, what + ": nested arrays are not supported");
  }
  const size_t count_at = r.pos();
  uint64_t count = 0;
  BF_RETURN_IF_ERROR(r.Read(&count, what + " array length"));
  // Check the count against the bytes left before reserving anything: a hostile count must be
  // an error, not an allocation.
  const uint64_t min_bytes = MinScalarBytes(v->element_type);
  if (count > r.remaining() / min_bytes) {
    return r.ErrorAt(count_at, what + ": array of " + std::to_string(count) + " " +
                                   ValueTypeName(v->element_type) + " elements needs at least " +
                                   (count > std::numeric_limits<uint64_t>::max() / min_bytes
                                        ? std::string("more than 2^64")
                                        : std::to_string(count * min_bytes)) +
                                   " bytes but only " + std::to_string(r.remaining()) + " remain");
  }
  const size_t n = static_cast<size_t>(count);
  if (v->element_type == GgufValueType::kString) {
    v->strings.resize(n);
    for (size_t i = 0; i < n; ++i) {
      BF_RETURN_IF_ERROR(r.ReadString(&v->strings[i], what, static_cast<int64_t>(i)));
    }
  } else if (IsFloat(v->element_type)) {
    v->floats.resize(n);
    int64_t unused_int;
    std::string unused_string;
    for (size_t i = 0; i < n; ++i) {
      BF_RETURN_IF_ERROR(ReadScalar(r, v->element_type, what, static_cast<int64_t>(i), &unused_int,
                                    &v->floats[i], &unused_string));
    }
  } else {
    v->ints.resize(n);
    double unused_float;
    std::string unused_string;
    for (size_t i = 0; i < n; ++i) {
      BF_RETURN_IF_ERROR(ReadScalar(r, v->element_type, what, static_cast<int64_t>(i), &v->ints[i],
                                    &unused_float, &unused_string));
    }
  }
  return Status::OK();
}

std::string DescribeTensor(const GgufTensorInfo& t) {
  return "tensor '" + t.name + "' (" + GgmlTypeName(t.type) + ", offset " +
         std::to_string(t.offset) + ", " + std::to_string(t.nbytes) + " bytes)";
}

class GgufFileImpl : public GgufFile {
 public:
  GgufFileImpl(std::string path, std::unique_ptr<MappedFile> mapping, const uint8_t* data,
               size_t size)
      : path_(std::move(path)), mapping_(std::move(mapping)), data_(data), size_(size) {}

  Status ParseHeader();

  const std::string& path() const override { return path_; }
  uint32_t version() const override { return version_; }
  const std::map<std::string, GgufValue>& metadata() const override { return metadata_; }
  const std::vector<GgufTensorInfo>& tensors() const override { return tensors_; }
  Result<std::vector<float>> ReadF32(const GgufTensorInfo& tensor) const override;

 private:
  std::string path_;
  std::unique_ptr<MappedFile> mapping_;  // null when parsing a caller-owned image
  const uint8_t* data_;
  size_t size_;
  uint32_t version_ = 0;
  std::map<std::string, GgufValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
};

Status GgufFileImpl::ParseHeader() {
  HeaderReader r(data_, size_, path_);
  uint32_t magic = 0;
  BF_RETURN_IF_ERROR(r.Read(&magic, "GGUF magic"));
  if (magic != kMagic) {
    return r.ErrorAt(0, "not a GGUF file: the first four bytes are not \"GGUF\"");
  }
  const size_t version_at = r.pos();
  BF_RETURN_IF_ERROR(r.Read(&version_, "GGUF version"));
  if (version_ == 1) {
    return r.ErrorAt(version_at, "GGUF version 1 is not supported (expected version 2 or 3)");
  }
  if (version_ != 2 && version_ != 3) {
    std::string hint;
    if ((version_ & 0xFFFF) == 0 && (version_ >> 24) <= 3) hint = " (a big-endian file?)";
    return r.ErrorAt(version_at, "unsupported GGUF version " + std::to_string(version_) + hint +
                                     " (expected 2 or 3)");
  }
  uint64_t tensor_count = 0, kv_count = 0;
  const size_t tensor_count_at = r.pos();
  BF_RETURN_IF_ERROR(r.Read(&tensor_count, "tensor count"));
  const size_t kv_count_at = r.pos();
  BF_RETURN_IF_ERROR(r.Read(&kv_count, "metadata count"));

  // Smallest possible entries: a key/value is an empty key (8) + type (4) + one byte; a tensor
  // info is an empty name (8) + n_dims (4) + one dimension (8) + type (4) + offset (8).
  if (kv_count > r.remaining() / 13) {
    return r.ErrorAt(kv_count_at, "metadata count " + std::to_string(kv_count) +
                                      " cannot fit in the " + std::to_string(r.remaining()) +
                                      " bytes that remain");
  }
  for (uint64_t i = 0; i < kv_count; ++i) {
    const size_t key_at = r.pos();
    std::string key;
    BF_RETURN_IF_ERROR(r.ReadString(&key, "metadata key " + std::to_string(i)));
    GgufValue value;
    BF_RETURN_IF_ERROR(ReadValue(r, key, &value));
    if (metadata_.count(key) != 0) {
      return r.ErrorAt(key_at, "duplicate metadata key '" + key + "'");
    }
    metadata_.emplace(std::move(key), std::move(value));
  }

  uint64_t alignment = kDefaultAlignment;
  if (auto it = metadata_.find("general.alignment"); it != metadata_.end()) {
    const GgufValue& v = it->second;
    if (!IsInteger(v.type) || v.int_value <= 0 || (v.int_value & (v.int_value - 1)) != 0) {
      return Status::InvalidArgument(
          path_ +
          ": metadata key 'general.alignment' must be a positive power-of-two integer, "
          "found " +
          DescribeType(v) + (IsInteger(v.type) ? " " + std::to_string(v.int_value) : ""));
    }
    alignment = static_cast<uint64_t>(v.int_value);
  }

  if (tensor_count > r.remaining() / 32) {
    return r.ErrorAt(tensor_count_at, "tensor count " + std::to_string(tensor_count) +
                                          " cannot fit in the " + std::to_string(r.remaining()) +
                                          " bytes that remain");
  }
  tensors_.reserve(static_cast<size_t>(tensor_count));
  std::unordered_set<std::string> names;
  for (uint64_t i = 0; i < tensor_count; ++i) {
    const size_t info_at = r.pos();
    GgufTensorInfo t;
    BF_RETURN_IF_ERROR(r.ReadString(&t.name, "tensor " + std::to_string(i) + " name"));
    const std::string what = "tensor '" + t.name + "'";
    const size_t dims_at = r.pos();
    uint32_t n_dims = 0;
    BF_RETURN_IF_ERROR(r.Read(&n_dims, what + " dimension count"));
    if (n_dims == 0 || n_dims > kMaxDims) {
      return r.ErrorAt(dims_at,
                       what + ": " + std::to_string(n_dims) + " dimensions (expected 1 to 4)");
    }
    std::vector<int64_t> ne(n_dims);
    int64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const size_t dim_at = r.pos();
      uint64_t n = 0;
      BF_RETURN_IF_ERROR(r.Read(&n, what + " dimension " + std::to_string(d)));
      if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (n != 0 && elements > std::numeric_limits<int64_t>::max() / static_cast<int64_t>(n))) {
        return r.ErrorAt(dim_at, what + ": dimension " + std::to_string(d) + " = " +
                                     std::to_string(n) + " overflows the element count");
      }
      ne[d] = static_cast<int64_t>(n);
      elements *= ne[d];
    }
    t.shape.assign(ne.rbegin(), ne.rend());
    const size_t type_at = r.pos();
    BF_RETURN_IF_ERROR(r.Read(&t.type, what + " type"));
    const GgmlTypeInfo* info = FindGgmlType(t.type);
    if (info == nullptr) {
      return r.ErrorAt(type_at, what + ": unknown ggml type " + std::to_string(t.type));
    }
    if (ne[0] % info->block_size != 0) {
      return r.ErrorAt(type_at, what + ": row length " + std::to_string(ne[0]) +
                                    " is not a "
                                    "multiple of the " +
                                    info->name + " block size " + std::to_string(info->block_size));
    }
    const size_t offset_at = r.pos();
    BF_RETURN_IF_ERROR(r.Read(&t.offset, what + " offset"));
    if (t.offset % alignment != 0) {
      return r.ErrorAt(offset_at, what + " (" + info->name + "): data offset " +
                                      std::to_string(t.offset) + " is not a multiple of the " +
                                      "alignment " + std::to_string(alignment));
    }
    auto nbytes = GgmlBytes(t.type, elements);
    if (!nbytes.ok()) return r.ErrorAt(type_at, what + ": " + nbytes.status().message());
    t.nbytes = *nbytes;
    if (!names.insert(t.name).second) {
      return r.ErrorAt(info_at, "duplicate tensor name '" + t.name + "'");
    }
    tensors_.push_back(std::move(t));
  }

  // Tensor data starts at the first multiple of the alignment after the header.
  const uint64_t header_end = r.pos();
  const uint64_t data_start = (header_end + alignment - 1) / alignment * alignment;
  for (GgufTensorInfo& t : tensors_) {
    const uint64_t relative = t.offset;
    if (relative > size_ || data_start > size_ - relative ||
        t.nbytes > size_ - relative - data_start) {
      return Status::InvalidArgument(
          path_ + ": tensor '" + t.name + "' (" + GgmlTypeName(t.type) + ", data offset " +
          std::to_string(relative) + " + " + std::to_string(t.nbytes) +
          " bytes after the data section at " + std::to_string(data_start) +
          ") lies outside the file of " + std::to_string(size_) + " bytes");
    }
    t.offset = data_start + relative;
  }
  std::vector<const GgufTensorInfo*> by_offset;
  by_offset.reserve(tensors_.size());
  for (const GgufTensorInfo& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensorInfo& a = *by_offset[i - 1];
    const GgufTensorInfo& b = *by_offset[i];
    if (a.offset + a.nbytes > b.offset && b.nbytes > 0 && a.nbytes > 0) {
      return Status::InvalidArgument(path_ + ": " + DescribeTensor(b) + " overlaps " +
                                     DescribeTensor(a));
    }
  }
  return Status::OK();
}

Result<std::vector<float>> GgufFileImpl::ReadF32(const GgufTensorInfo& tensor) const {
  const std::string what = path_ + ": " + DescribeTensor(tensor);
  const GgmlTypeInfo* info = FindGgmlType(tensor.type);
  if (info == nullptr || !info->dequantizable) {
    return Status::InvalidArgument(what + ": type " + GgmlTypeName(tensor.type) +
                                   " cannot be read as float32 (supported: F32, F16, BF16, Q8_0, "
                                   "Q4_0, Q4_1, Q4_K, Q5_K, Q6_K)");
  }
  const int64_t elements = tensor.elements();
  if (elements < 0) return Status::InvalidArgument(what + ": invalid shape");
  if (!tensor.shape.empty() && tensor.shape.back() % info->block_size != 0) {
    return Status::InvalidArgument(what + ": row length " + std::to_string(tensor.shape.back()) +
                                   " is not a multiple of the block size " +
                                   std::to_string(info->block_size));
  }
  auto needed = GgmlBytes(tensor.type, elements);
  if (!needed.ok()) return needed.status().WithContext(what);
  if (*needed != tensor.nbytes || tensor.offset > size_ || *needed > size_ - tensor.offset) {
    return Status::InvalidArgument(what + ": needs " + std::to_string(*needed) +
                                   " bytes, which do not lie inside the " + std::to_string(size_) +
                                   "-byte file");
  }
  std::vector<float> out(static_cast<size_t>(elements));
  if (elements > 0) {
    BF_RETURN_IF_ERROR(DequantizeRow(tensor.type, data_ + tensor.offset, elements, out.data()));
  }
  return out;
}

Result<const GgufValue*> Lookup(const GgufFile& file, const std::string& key) {
  const GgufValue* v = file.Find(key);
  if (v == nullptr) return Status::NotFound(file.path() + ": metadata key '" + key + "' not found");
  return v;
}

Status WrongType(const GgufFile& file, const std::string& key, const GgufValue& v,
                 const char* expected) {
  return Status::InvalidArgument(file.path() + ": metadata key '" + key + "' is " +
                                 DescribeType(v) + ", expected " + expected);
}

}  // namespace

int64_t GgufTensorInfo::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d != 0 && n > std::numeric_limits<int64_t>::max() / d)) return -1;
    n *= d;
  }
  return n;
}

Result<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  BF_ASSIGN_OR_RETURN(auto mapping, MappedFile::Open(path));
  const uint8_t* data = mapping->data();
  const size_t size = mapping->size();
  auto file = std::make_unique<GgufFileImpl>(path, std::move(mapping), data, size);
  BF_RETURN_IF_ERROR(file->ParseHeader());
  return std::unique_ptr<GgufFile>(std::move(file));
}

Result<std::unique_ptr<GgufFile>> GgufFile::Parse(const uint8_t* data, size_t size,
                                                  const std::string& name) {
  auto file = std::make_unique<GgufFileImpl>(name, nullptr, data, size);
  BF_RETURN_IF_ERROR(file->ParseHeader());
  return std::unique_ptr<GgufFile>(std::move(file));
}

const GgufValue* GgufFile::Find(const std::string& key) const {
  auto it = metadata().find(key);
  return it == metadata().end() ? nullptr : &it->second;
}

const GgufTensorInfo* GgufFile::FindTensor(const std::string& name) const {
  for (const GgufTensorInfo& t : tensors()) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Result<std::string> GgufFile::GetString(const std::string& key) const {
  BF_ASSIGN_OR_RETURN(const GgufValue* v, Lookup(*this, key));
  if (v->type != GgufValueType::kString) return WrongType(*this, key, *v, "a string");
  return v->string_value;
}

Result<int64_t> GgufFile::GetInt(const std::string& key) const {
  BF_ASSIGN_OR_RETURN(const GgufValue* v, Lookup(*this, key));
  if (!IsInteger(v->type)) return WrongType(*this, key, *v, "an integer");
  return v->int_value;
}

Result<double> GgufFile::GetFloat(const std::string& key) const {
  BF_ASSIGN_OR_RETURN(const GgufValue* v, Lookup(*this, key));
  if (IsFloat(v->type)) return v->float_value;
  if (IsInteger(v->type)) return static_cast<double>(v->int_value);
  return WrongType(*this, key, *v, "a number");
}

Result<bool> GgufFile::GetBool(const std::string& key) const {
  BF_ASSIGN_OR_RETURN(const GgufValue* v, Lookup(*this, key));
  if (v->type != GgufValueType::kBool) return WrongType(*this, key, *v, "a bool");
  return v->int_value != 0;
}

Result<std::vector<std::string>> GgufFile::GetStrings(const std::string& key) const {
  BF_ASSIGN_OR_RETURN(const GgufValue* v, Lookup(*this, key));
  if (v->type != GgufValueType::kArray || v->element_type != GgufValueType::kString) {
    return WrongType(*this, key, *v, "an array of strings");
  }
  return v->strings;
}

Result<std::vector<double>> GgufFile::GetFloats(const std::string& key) const {
  BF_ASSIGN_OR_RETURN(const GgufValue* v, Lookup(*this, key));
  if (v->type == GgufValueType::kArray && IsFloat(v->element_type)) return v->floats;
  if (v->type == GgufValueType::kArray && IsInteger(v->element_type)) {
    return std::vector<double>(v->ints.begin(), v->ints.end());
  }
  return WrongType(*this, key, *v, "an array of numbers");
}

Result<std::vector<int64_t>> GgufFile::GetInts(const std::string& key) const {
  BF_ASSIGN_OR_RETURN(const GgufValue* v, Lookup(*this, key));
  if (v->type != GgufValueType::kArray ||
      !(IsInteger(v->element_type) || v->element_type == GgufValueType::kBool)) {
    return WrongType(*this, key, *v, "an array of integers");
  }
  return v->ints;
}

}  // namespace breakfix::engine
