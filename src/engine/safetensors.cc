// safetensors reading and writing (SafetensorsFile, WriteSafetensors in engine/model_weights.h).
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "engine/dequantize.h"
#include "engine/mapped_file.h"
#include "engine/model_weights.h"

namespace breakfix::engine {
namespace {

using Json = nlohmann::json;

constexpr char kMetadataKey[] = "__metadata__";

struct Dtype {
  const char* name;
  uint64_t bytes;
  bool readable;  // ReadF32 converts it
};

// The dtypes the safetensors format defines; only the float types breakfix loads are readable,
// the rest are located (so offsets can be checked) but refused by ReadF32.
constexpr Dtype kDtypes[] = {
    {"F32", 4, true},   {"F16", 2, true},      {"BF16", 2, true},     {"F64", 8, false},
    {"I64", 8, false},  {"I32", 4, false},     {"I16", 2, false},     {"I8", 1, false},
    {"U64", 8, false},  {"U32", 4, false},     {"U16", 2, false},     {"U8", 1, false},
    {"BOOL", 1, false}, {"F8_E4M3", 1, false}, {"F8_E5M2", 1, false},
};

const Dtype* FindDtype(const std::string& name) {
  for (const Dtype& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Elements in `shape`, or -1 when a dimension is negative or the product overflows.
int64_t Elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d != 0 && n > std::numeric_limits<int64_t>::max() / d)) return -1;
    n *= d;
  }
  return n;
}

class SafetensorsFileImpl : public SafetensorsFile {
 public:
  SafetensorsFileImpl(std::string name, std::unique_ptr<MappedFile> mapping, const uint8_t* data,
                      size_t size)
      : name_(std::move(name)), mapping_(std::move(mapping)), data_(data), size_(size) {}

  Status ParseHeader();
  const std::vector<SafetensorsTensor>& tensors() const override { return tensors_; }
  const std::map<std::string, std::string>& metadata() const override { return metadata_; }
  Result<std::vector<float>> ReadF32(const SafetensorsTensor& tensor) const override;

 private:
  Status Error(const std::string& what) const {
    return Status::InvalidArgument(name_ + ": " + what);
  }
  Status ParseTensor(const std::string& key, const Json& entry, uint64_t data_size);

  std::string name_;
  std::unique_ptr<MappedFile> mapping_;  // null when parsing a caller-owned image
  const uint8_t* data_;
  size_t size_;
  uint64_t data_start_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

Status SafetensorsFileImpl::ParseTensor(const std::string& key, const Json& entry,
                                        uint64_t data_size) {
  const std::string what = "tensor '" + key + "'";
  if (!entry.is_object())
    return Error(what + ": expected an object with dtype, shape, data_offsets");
  SafetensorsTensor t;
  t.name = key;
  auto dtype = entry.find("dtype");
  if (dtype == entry.end() || !dtype->is_string()) {
    return Error(what + ": field 'dtype' is missing or not a string");
  }
  t.dtype = dtype->get<std::string>();
  const Dtype* info = FindDtype(t.dtype);
  if (info == nullptr) {
    return Error(what + ": unknown dtype '" + t.dtype + "' (expected F32, F16, BF16, ...)");
  }
  auto shape = entry.find("shape");
  if (shape == entry.end() || !shape->is_array()) {
    return Error(what + ": field 'shape' is missing or not an array");
  }
  for (const Json& d : *shape) {
    if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0)) {
      return Error(what + ": 'shape' holds " + d.dump() + ", expected non-negative integers");
    }
    const uint64_t v = d.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Error(what + ": dimension " + std::to_string(v) + " is too large");
    }
    t.shape.push_back(static_cast<int64_t>(v));
  }
  auto offsets = entry.find("data_offsets");
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
    return Error(what + ": field 'data_offsets' must be two non-negative integers [begin, end]");
  }
  t.begin = (*offsets)[0].get<uint64_t>();
  t.end = (*offsets)[1].get<uint64_t>();
  if (t.end < t.begin) {
    return Error(what + ": data_offsets end " + std::to_string(t.end) + " is before begin " +
                 std::to_string(t.begin));
  }
  if (t.end > data_size) {
    return Error(what + ": data_offsets [" + std::to_string(t.begin) + ", " +
                 std::to_string(t.end) + ") run past the " + std::to_string(data_size) +
                 "-byte data section");
  }
  const int64_t elements = Elements(t.shape);
  if (elements < 0 ||
      static_cast<uint64_t>(elements) > std::numeric_limits<uint64_t>::max() / info->bytes) {
    return Error(what + ": shape " + ShapeString(t.shape) + " overflows");
  }
  const uint64_t want = static_cast<uint64_t>(elements) * info->bytes;
  if (t.end - t.begin != want) {
    return Error(what + ": data_offsets [" + std::to_string(t.begin) + ", " +
                 std::to_string(t.end) + ") hold " + std::to_string(t.end - t.begin) +
                 " bytes, but shape " + ShapeString(t.shape) + " of " + t.dtype + " needs " +
                 std::to_string(want));
  }
  tensors_.push_back(std::move(t));
  return Status::OK();
}

Status SafetensorsFileImpl::ParseHeader() {
  if (size_ < 8) {
    return Error("file of " + std::to_string(size_) +
                 " bytes is too short for the 8-byte header length");
  }
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(data_[i]) << (8 * i);
  if (header_len > size_ - 8) {
    return Error("header length " + std::to_string(header_len) + " exceeds the " +
                 std::to_string(size_ - 8) + " bytes that follow it");
  }
  data_start_ = 8 + header_len;
  const uint64_t data_size = size_ - data_start_;
  const char* begin = reinterpret_cast<const char*>(data_ + 8);
  Json header;
  try {
    header = Json::parse(begin, begin + header_len);
  } catch (const Json::exception& e) {
    return Error("header JSON (bytes 8.." + std::to_string(data_start_) +
                 ") does not parse: " + e.what());
  }
  if (!header.is_object()) return Error("header JSON is not an object");
  for (const auto& [key, entry] : header.items()) {
    if (key == kMetadataKey) {
      if (!entry.is_object()) return Error("'__metadata__' must be an object of strings");
      for (const auto& [mkey, mvalue] : entry.items()) {
        if (!mvalue.is_string()) {
          return Error("'__metadata__' entry '" + mkey + "' is " + mvalue.type_name() +
                       ", expected a string");
        }
        metadata_[mkey] = mvalue.get<std::string>();
      }
      continue;
    }
    BF_RETURN_IF_ERROR(ParseTensor(key, entry, data_size));
  }
  // File order; then no two tensors may share bytes.
  std::sort(tensors_.begin(), tensors_.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
              return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
            });
  const SafetensorsTensor* previous = nullptr;
  for (const SafetensorsTensor& t : tensors_) {
    if (t.begin == t.end) continue;
    if (previous != nullptr && previous->end > t.begin) {
      return Error("tensor '" + t.name + "' (bytes " + std::to_string(t.begin) + ".." +
                   std::to_string(t.end) + ") overlaps tensor '" + previous->name + "' (bytes " +
                   std::to_string(previous->begin) + ".." + std::to_string(previous->end) + ")");
    }
    previous = &t;
  }
  return Status::OK();
}

Result<std::vector<float>> SafetensorsFileImpl::ReadF32(const SafetensorsTensor& t) const {
  const std::string what = "tensor '" + t.name + "' (" + t.dtype + ", bytes " +
                           std::to_string(t.begin) + ".." + std::to_string(t.end) + ")";
  const Dtype* info = FindDtype(t.dtype);
  if (info == nullptr || !info->readable) {
    return Error(what + ": dtype " + t.dtype +
                 " cannot be read as float32 (supported: F32, "
                 "F16, BF16)");
  }
  const int64_t elements = Elements(t.shape);
  const uint64_t data_size = size_ - data_start_;
  if (elements < 0 || t.end < t.begin || t.end > data_size ||
      t.end - t.begin != static_cast<uint64_t>(elements) * info->bytes) {
    return Error(what + ": byte range does not match shape " + ShapeString(t.shape) +
                 " inside the " + std::to_string(data_size) + "-byte data section");
  }
  std::vector<float> out(static_cast<size_t>(elements));
  const uint8_t* src = data_ + data_start_ + t.begin;
  if (t.dtype == "F32") {
    if (elements > 0) std::memcpy(out.data(), src, static_cast<size_t>(elements) * 4);
  } else if (t.dtype == "F16") {
    for (int64_t i = 0; i < elements; ++i) {
      out[i] = HalfToFloat(static_cast<uint16_t>(src[2 * i] | (src[2 * i + 1] << 8)));
    }
  } else {
    for (int64_t i = 0; i < elements; ++i) {
      out[i] = Bf16ToFloat(static_cast<uint16_t>(src[2 * i] | (src[2 * i + 1] << 8)));
    }
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  BF_ASSIGN_OR_RETURN(auto mapping, MappedFile::Open(path));
  const uint8_t* data = mapping->data();
  const size_t size = mapping->size();
  auto file = std::make_unique<SafetensorsFileImpl>(path, std::move(mapping), data, size);
  BF_RETURN_IF_ERROR(file->ParseHeader());
  return std::unique_ptr<SafetensorsFile>(std::move(file));
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Parse(const uint8_t* data, size_t size,
                                                                const std::string& name) {
  auto file = std::make_unique<SafetensorsFileImpl>(name, nullptr, data, size);
  BF_RETURN_IF_ERROR(file->ParseHeader());
  return std::unique_ptr<SafetensorsFile>(std::move(file));
}

const SafetensorsTensor* SafetensorsFile::Find(const std::string& name) const {
  for (const SafetensorsTensor& t : tensors()) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Status WriteSafetensors(const std::string& path,
                        const std::vector<std::pair<std::string, FloatTensor>>& tensors,
                        const std::map<std::string, std::string>& metadata, bool bf16) {
  const uint64_t element_bytes = bf16 ? 2 : 4;
  Json header = Json::object();
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name == kMetadataKey || !names.insert(name).second) {
      return Status::InvalidArgument(path + ": tensor name '" + name +
                                     "' is empty, reserved or repeated");
    }
    const int64_t elements = Elements(tensor.shape);
    if (elements < 0 || static_cast<uint64_t>(elements) != tensor.data.size()) {
      return Status::InvalidArgument(path + ": tensor '" + name + "' has shape " +
                                     ShapeString(tensor.shape) + " but " +
                                     std::to_string(tensor.data.size()) + " values");
    }
    const uint64_t bytes = tensor.data.size() * element_bytes;
    header[name] = {{"dtype", bf16 ? "BF16" : "F32"},
                    {"shape", tensor.shape},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');

  BF_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path));
  std::string prefix(8, '\0');
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<char>((text.size() >> (8 * i)) & 0xFF);
  file->Write(prefix);
  file->Write(text);
  std::string chunk;
  for (const auto& [name, tensor] : tensors) {
    if (bf16) {
      chunk.resize(tensor.data.size() * 2);
      for (size_t i = 0; i < tensor.data.size(); ++i) {
        const uint16_t b = FloatToBf16(tensor.data[i]);
        chunk[2 * i] = static_cast<char>(b & 0xFF);
        chunk[2 * i + 1] = static_cast<char>(b >> 8);
      }
      file->Write(chunk);
    } else {
      file->Write(std::string_view(reinterpret_cast<const char*>(tensor.data.data()),
                                   tensor.data.size() * sizeof(float)));
    }
  }
  return file->Commit();
}

}  // namespace breakfix::engine
