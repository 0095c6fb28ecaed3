#include "engine/gguf_writer.h"

#include <bit>
#include <limits>
#include <set>

#include "core/atomic_file.h"
#include "engine/dequantize.h"

namespace breakfix::engine {
namespace {

constexpr uint32_t kVersion = 3;
constexpr uint64_t kDefaultAlignment = 32;

class ByteSink {
 public:
  template <typename T>
  void Put(T v) {
    uint64_t bits;
    if constexpr (std::is_same_v<T, float>) {
      bits = std::bit_cast<uint32_t>(v);
    } else if constexpr (std::is_same_v<T, double>) {
      bits = std::bit_cast<uint64_t>(v);
    } else {
      bits = static_cast<uint64_t>(v);
    }
    for (size_t i = 0; i < sizeof(T); ++i)
      out_.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
  }
  void PutString(const std::string& s) {
    Put<uint64_t>(s.size());
    out_ += s;
  }
  void PadTo(uint64_t alignment) {
    while (out_.size() % alignment != 0) out_.push_back('\0');
  }
  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

// The [min, max] an integer kind can hold (uint64 is limited to int64's range, as in GgufValue).
bool IntegerRange(GgufValueType t, int64_t* lo, int64_t* hi) {
  switch (t) {
    case GgufValueType::kUint8:
      *lo = 0;
      *hi = 255;
      return true;
    case GgufValueType::kInt8:
      *lo = -128;
      *hi = 127;
      return true;
    case GgufValueType::kUint16:
      *lo = 0;
      *hi = 65535;
      return true;
    case GgufValueType::kInt16:
      *lo = -32768;
      *hi = 32767;
      return true;
    case GgufValueType::kUint32:
      *lo = 0;
      *hi = 4294967295LL;
      return true;
    case GgufValueType::kInt32:
      *lo = std::numeric_limits<int32_t>::min();
      *hi = std::numeric_limits<int32_t>::max();
      return true;
    case GgufValueType::kBool:
      *lo = 0;
      *hi = 1;
      return true;
    case GgufValueType::kUint64:
      *lo = 0;
      *hi = std::numeric_limits<int64_t>::max();
      return true;
    case GgufValueType::kInt64:
      *lo = std::numeric_limits<int64_t>::min();
      *hi = std::numeric_limits<int64_t>::max();
      return true;
    default:
      return false;
  }
}

Status PutScalar(ByteSink& sink, GgufValueType t, int64_t i, double f, const std::string& s,
                 const std::string& what) {
  int64_t lo, hi;
  if (IntegerRange(t, &lo, &hi)) {
    if (i < lo || i > hi) {
      return Status::InvalidArgument(what + ": value " + std::to_string(i) + " is outside [" +
                                     std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    switch (t) {
      case GgufValueType::kUint8:
      case GgufValueType::kInt8:
      case GgufValueType::kBool:
        sink.Put(static_cast<uint8_t>(i));
        break;
      case GgufValueType::kUint16:
      case GgufValueType::kInt16:
        sink.Put(static_cast<uint16_t>(i));
        break;
      case GgufValueType::kUint32:
      case GgufValueType::kInt32:
        sink.Put(static_cast<uint32_t>(i));
        break;
      default:
        sink.Put(static_cast<uint64_t>(i));
        break;
    }
    return Status::OK();
  }
  switch (t) {
    case GgufValueType::kFloat32:
      sink.Put(static_cast<float>(f));
      return Status::OK();
    case GgufValueType::kFloat64:
      sink.Put(f);
      return Status::OK();
    case GgufValueType::kString:
      sink.PutString(s);
      return Status::OK();
    default:
      return Status::InvalidArgument(what + ": value type " +
                                     std::to_string(static_cast<uint32_t>(t)) +
                                     " cannot be written here");
  }
}

Status PutValue(ByteSink& sink, const std::string& key, const GgufValue& v) {
  const std::string what = "metadata key '" + key + "'";
  sink.Put(static_cast<uint32_t>(v.type));
  if (v.type != GgufValueType::kArray) {
    return PutScalar(sink, v.type, v.int_value, v.float_value, v.string_value, what);
  }
  sink.Put(static_cast<uint32_t>(v.element_type));
  const GgufValueType e = v.element_type;
  if (e == GgufValueType::kString) {
    sink.Put<uint64_t>(v.strings.size());
    for (const std::string& s : v.strings) sink.PutString(s);
  } else if (e == GgufValueType::kFloat32 || e == GgufValueType::kFloat64) {
    sink.Put<uint64_t>(v.floats.size());
    for (double f : v.floats) BF_RETURN_IF_ERROR(PutScalar(sink, e, 0, f, "", what));
  } else if (e == GgufValueType::kArray) {
    return Status::InvalidArgument(what + ": nested arrays are not supported");
  } else {
    sink.Put<uint64_t>(v.ints.size());
    for (int64_t i : v.ints) BF_RETURN_IF_ERROR(PutScalar(sink, e, i, 0, "", what));
  }
  return Status::OK();
}

Result<std::string> EncodeTensor(const GgufWriterTensor& t, int64_t elements) {
  const std::string what = "tensor '" + t.name + "'";
  if (!t.raw.empty()) {
    auto bytes = GgmlBytes(t.type, elements);
    if (!bytes.ok()) return bytes.status().WithContext(what);
    if (*bytes != t.raw.size()) {
      return Status::InvalidArgument(what + ": " + std::to_string(t.raw.size()) +
                                     " raw bytes given, " + GgmlTypeName(t.type) + " shape needs " +
                                     std::to_string(*bytes));
    }
    return t.raw;
  }
  if (static_cast<int64_t>(t.data.size()) != elements) {
    return Status::InvalidArgument(what + ": " + std::to_string(t.data.size()) +
                                   " values given, the shape holds " + std::to_string(elements));
  }
  std::string out;
  switch (static_cast<GgmlType>(t.type)) {
    case GgmlType::kF32:
      out.resize(t.data.size() * 4);
      for (size_t i = 0; i < t.data.size(); ++i) {
        const uint32_t bits = std::bit_cast<uint32_t>(t.data[i]);
        for (int b = 0; b < 4; ++b) out[4 * i + b] = static_cast<char>((bits >> (8 * b)) & 0xFF);
      }
      return out;
    case GgmlType::kF16:
      out.resize(t.data.size() * 2);
      for (size_t i = 0; i < t.data.size(); ++i) {
        const uint16_t h = FloatToHalf(t.data[i]);
        out[2 * i] = static_cast<char>(h & 0xFF);
        out[2 * i + 1] = static_cast<char>(h >> 8);
      }
      return out;
    case GgmlType::kQ8_0: {
      if (t.shape.empty() || t.shape.back() % 32 != 0) {
        return Status::InvalidArgument(what + ": Q8_0 rows must be a multiple of 32 elements");
      }
      out.resize(static_cast<size_t>(elements / 32 * 34));
      QuantizeQ8_0(t.data.data(), elements, reinterpret_cast<uint8_t*>(out.data()));
      return out;
    }
    default:
      return Status::InvalidArgument(what + ": the writer encodes F32, F16 and Q8_0, not " +
                                     GgmlTypeName(t.type) + " (pass raw bytes instead)");
  }
}

}  // namespace

Result<std::string> SerializeGguf(const std::map<std::string, GgufValue>& metadata,
                                  const std::vector<GgufWriterTensor>& tensors) {
  uint64_t alignment = kDefaultAlignment;
  if (auto it = metadata.find("general.alignment"); it != metadata.end()) {
    const int64_t a = it->second.int_value;
    if (a <= 0 || (a & (a - 1)) != 0) {
      return Status::InvalidArgument("metadata key 'general.alignment': " + std::to_string(a) +
                                     " is not a positive power of two");
    }
    alignment = static_cast<uint64_t>(a);
  }
  ByteSink sink;
  sink.Put<uint32_t>(0x46554747);  // "GGUF"
  sink.Put<uint32_t>(kVersion);
  sink.Put<uint64_t>(tensors.size());
  sink.Put<uint64_t>(metadata.size());
  for (const auto& [key, value] : metadata) {
    sink.PutString(key);
    BF_RETURN_IF_ERROR(PutValue(sink, key, value));
  }

  std::vector<std::string> payloads;
  payloads.reserve(tensors.size());
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const GgufWriterTensor& t : tensors) {
    if (!names.insert(t.name).second) {
      return Status::InvalidArgument("tensor '" + t.name + "' appears twice");
    }
    if (t.shape.empty() || t.shape.size() > 4) {
      return Status::InvalidArgument("tensor '" + t.name + "': " + std::to_string(t.shape.size()) +
                                     " dimensions (expected 1 to 4)");
    }
    int64_t elements = 1;
    for (int64_t d : t.shape) {
      if (d < 0 || (d != 0 && elements > std::numeric_limits<int64_t>::max() / d)) {
        return Status::InvalidArgument("tensor '" + t.name + "': dimension " + std::to_string(d) +
                                       " is negative or overflows");
      }
      elements *= d;
    }
    const GgmlTypeInfo* info = FindGgmlType(t.type);
    if (info == nullptr || t.shape.back() % info->block_size != 0) {
      return Status::InvalidArgument("tensor '" + t.name + "': row length " +
                                     std::to_string(t.shape.back()) + " does not fit type " +
                                     GgmlTypeName(t.type));
    }
    BF_ASSIGN_OR_RETURN(std::string payload, EncodeTensor(t, elements));
    sink.PutString(t.name);
    sink.Put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) sink.Put<uint64_t>(*it);
    sink.Put<uint32_t>(t.type);
    sink.Put<uint64_t>(offset);
    offset += (payload.size() + alignment - 1) / alignment * alignment;
    payloads.push_back(std::move(payload));
  }
  if (!payloads.empty()) sink.PadTo(alignment);
  for (const std::string& payload : payloads) {
    sink.bytes() += payload;
    sink.PadTo(alignment);
  }
  return std::move(sink.bytes());
}

Status WriteGguf(const std::string& path, const std::map<std::string, GgufValue>& metadata,
                 const std::vector<GgufWriterTensor>& tensors) {
  BF_ASSIGN_OR_RETURN(std::string bytes, SerializeGguf(metadata, tensors));
  BF_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path));
  file->Write(bytes);
  return file->Commit();
}

GgufValue GgufString(std::string s) {
  GgufValue v;
  v.type = GgufValueType::kString;
  v.string_value = std::move(s);
  return v;
}

GgufValue GgufUint32(uint32_t x) { return GgufInt(GgufValueType::kUint32, x); }

GgufValue GgufInt(GgufValueType type, int64_t x) {
  GgufValue v;
  v.type = type;
  v.int_value = x;
  return v;
}

GgufValue GgufFloat32(float x) {
  GgufValue v;
  v.type = GgufValueType::kFloat32;
  v.float_value = x;
  return v;
}

GgufValue GgufBool(bool x) { return GgufInt(GgufValueType::kBool, x ? 1 : 0); }

GgufValue GgufStringArray(std::vector<std::string> x) {
  GgufValue v;
  v.type = GgufValueType::kArray;
  v.element_type = GgufValueType::kString;
  v.strings = std::move(x);
  return v;
}

GgufValue GgufFloatArray(std::vector<double> x, GgufValueType element) {
  GgufValue v;
  v.type = GgufValueType::kArray;
  v.element_type = element;
  v.floats = std::move(x);
  return v;
}

GgufValue GgufIntArray(std::vector<int64_t> x, GgufValueType element) {
  GgufValue v;
  v.type = GgufValueType::kArray;
  v.element_type = element;
  v.ints = std::move(x);
  return v;
}

}  // namespace breakfix::engine
