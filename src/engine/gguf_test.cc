// GgufFile: parsing what the writer produces, typed metadata access, tensor location, and the
// ways a hostile or damaged file must fail (with an error naming what and where, never a crash).
#include "engine/gguf.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>

#include <unistd.h>

#include "breakfix/env.h"
#include "engine/dequantize.h"
#include "engine/gguf_writer.h"

namespace breakfix::engine {
namespace {

using ::testing::HasSubstr;

const uint8_t* Bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// Little-endian builder for hand-made (and deliberately broken) headers.
class Builder {
 public:
  Builder& U32(uint32_t v) { return Put(v, 4); }
  Builder& U64(uint64_t v) { return Put(v, 8); }
  Builder& U8(uint8_t v) { return Put(v, 1); }
  Builder& Str(const std::string& s) {
    U64(s.size());
    out_ += s;
    return *this;
  }
  Builder& Header(uint32_t version, uint64_t tensors, uint64_t kvs) {
    return U32(0x46554747).U32(version).U64(tensors).U64(kvs);
  }
  const std::string& str() const { return out_; }

 private:
  Builder& Put(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
    return *this;
  }
  std::string out_;
};

Result<std::unique_ptr<GgufFile>> ParseString(const std::string& image) {
  return GgufFile::Parse(Bytes(image), image.size(), "test.gguf");
}

std::map<std::string, GgufValue> AllKindsMetadata() {
  std::map<std::string, GgufValue> m;
  m["general.architecture"] = GgufString("llama");
  m["k.u8"] = GgufInt(GgufValueType::kUint8, 200);
  m["k.i8"] = GgufInt(GgufValueType::kInt8, -100);
  m["k.u16"] = GgufInt(GgufValueType::kUint16, 60000);
  m["k.i16"] = GgufInt(GgufValueType::kInt16, -30000);
  m["k.u32"] = GgufUint32(4000000000u);
  m["k.i32"] = GgufInt(GgufValueType::kInt32, -2000000000);
  m["k.u64"] = GgufInt(GgufValueType::kUint64, int64_t{1} << 62);
  m["k.i64"] = GgufInt(GgufValueType::kInt64, -(int64_t{1} << 62));
  m["k.f32"] = GgufFloat32(0.15625f);
  GgufValue f64;
  f64.type = GgufValueType::kFloat64;
  f64.float_value = 1e-300;
  m["k.f64"] = f64;
  m["k.bool"] = GgufBool(true);
  m["k.strings"] = GgufStringArray({"a", "", "\xe2\x96\x81the"});
  m["k.floats"] = GgufFloatArray({-1.5, 0.25});
  m["k.doubles"] = GgufFloatArray({1e100}, GgufValueType::kFloat64);
  m["k.ints"] = GgufIntArray({1, -2, 3});
  m["k.bools"] = GgufIntArray({1, 0}, GgufValueType::kBool);
  m["k.u8s"] = GgufIntArray({255, 0}, GgufValueType::kUint8);
  return m;
}

std::vector<float> Ramp(int64_t n, float scale) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>((i * 37) % 101 - 50);
  return v;
}

std::vector<GgufWriterTensor> SampleTensors() {
  std::vector<GgufWriterTensor> t(3);
  t[0] = {"a.f32", {3, 5}, static_cast<uint32_t>(GgmlType::kF32), Ramp(15, 0.1f), ""};
  t[1] = {"b.f16", {2, 4}, static_cast<uint32_t>(GgmlType::kF16), Ramp(8, 0.01f), ""};
  t[2] = {"c.q8", {2, 64}, static_cast<uint32_t>(GgmlType::kQ8_0), Ramp(128, 0.03f), ""};
  return t;
}

std::string SampleImage() {
  auto image = SerializeGguf(AllKindsMetadata(), SampleTensors());
  EXPECT_TRUE(image.ok()) << image.status().ToString();
  return image.ok() ? *image : std::string();
}

// Byte position of a tensor info's fields in an image written by SerializeGguf: finds the name
// (length-prefixed) after the metadata.
size_t TensorInfoPos(const std::string& image, const std::string& name) {
  Builder b;
  b.Str(name);
  size_t pos = image.rfind(b.str());
  EXPECT_NE(pos, std::string::npos) << name;
  return pos + b.str().size();  // at n_dims
}

void PutU64(std::string& image, size_t pos, uint64_t v) {
  for (int i = 0; i < 8; ++i) image[pos + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}
void PutU32(std::string& image, size_t pos, uint32_t v) {
  for (int i = 0; i < 4; ++i) image[pos + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

TEST(GgufTest, MetadataOfEveryKindRoundTrips) {
  const std::string image = SampleImage();
  auto file = ParseString(image);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const GgufFile& f = **file;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.path(), "test.gguf");
  EXPECT_EQ(f.metadata().size(), AllKindsMetadata().size());
  EXPECT_EQ(*f.GetString("general.architecture"), "llama");
  EXPECT_EQ(*f.GetInt("k.u8"), 200);
  EXPECT_EQ(*f.GetInt("k.i8"), -100);
  EXPECT_EQ(*f.GetInt("k.u16"), 60000);
  EXPECT_EQ(*f.GetInt("k.i16"), -30000);
  EXPECT_EQ(*f.GetInt("k.u32"), 4000000000LL);
  EXPECT_EQ(*f.GetInt("k.i32"), -2000000000);
  EXPECT_EQ(*f.GetInt("k.u64"), int64_t{1} << 62);
  EXPECT_EQ(*f.GetInt("k.i64"), -(int64_t{1} << 62));
  EXPECT_EQ(*f.GetFloat("k.f32"), 0.15625);
  EXPECT_EQ(*f.GetFloat("k.f64"), 1e-300);
  EXPECT_EQ(*f.GetFloat("k.u32"), 4e9);  // integers convert
  EXPECT_TRUE(*f.GetBool("k.bool"));
  EXPECT_EQ(*f.GetStrings("k.strings"), (std::vector<std::string>{"a", "", "\xe2\x96\x81the"}));
  EXPECT_EQ(*f.GetFloats("k.floats"), (std::vector<double>{-1.5, 0.25}));
  EXPECT_EQ(*f.GetFloats("k.doubles"), (std::vector<double>{1e100}));
  EXPECT_EQ(*f.GetFloats("k.ints"), (std::vector<double>{1, -2, 3}));
  EXPECT_EQ(*f.GetInts("k.ints"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(*f.GetInts("k.bools"), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(*f.GetInts("k.u8s"), (std::vector<int64_t>{255, 0}));
  const GgufValue* v = f.Find("k.u8s");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->type, GgufValueType::kArray);
  EXPECT_EQ(v->element_type, GgufValueType::kUint8);
  EXPECT_EQ(f.Find("missing"), nullptr);
}

TEST(GgufTest, TypedGettersNameKeyAndTypes) {
  const std::string image = SampleImage();
  auto file = ParseString(image);
  ASSERT_TRUE(file.ok());
  const GgufFile& f = **file;
  auto missing = f.GetInt("llama.block_count");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("'llama.block_count'"));
  auto wrong = f.GetInt("general.architecture");
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong.status().message(), HasSubstr("'general.architecture' is string"));
  EXPECT_THAT(wrong.status().message(), HasSubstr("expected an integer"));
  EXPECT_THAT(f.GetString("k.u8").status().message(), HasSubstr("is uint8, expected a string"));
  EXPECT_FALSE(f.GetBool("k.u8").ok());
  EXPECT_FALSE(f.GetFloat("k.bool").ok());
  EXPECT_FALSE(f.GetInt("k.bool").ok());
  EXPECT_THAT(f.GetStrings("k.ints").status().message(),
              HasSubstr("is array of int32, expected an array of strings"));
  EXPECT_FALSE(f.GetInts("k.floats").ok());
  EXPECT_FALSE(f.GetFloats("k.strings").ok());
  EXPECT_FALSE(f.GetStrings("k.f32").ok());
}

TEST(GgufTest, TensorsAreLocatedAlignedAndReadBack) {
  const std::string image = SampleImage();
  auto file = ParseString(image);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const GgufFile& f = **file;
  ASSERT_EQ(f.tensors().size(), 3u);
  auto want = SampleTensors();
  for (size_t i = 0; i < want.size(); ++i) {
    const GgufTensorInfo* t = f.FindTensor(want[i].name);
    ASSERT_NE(t, nullptr) << want[i].name;
    EXPECT_EQ(t->shape, want[i].shape);
    EXPECT_EQ(t->type, want[i].type);
    EXPECT_EQ(t->offset % 32, 0u);
    EXPECT_EQ(t->nbytes, *GgmlBytes(t->type, t->elements()));
    EXPECT_LE(t->offset + t->nbytes, image.size());
  }
  EXPECT_EQ(f.FindTensor("nope"), nullptr);

  // F32: bit for bit.
  auto a = f.ReadF32(*f.FindTensor("a.f32"));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(*a, want[0].data);
  // F16: each value is the nearest half, computed independently through the bit pattern.
  auto b = f.ReadF32(*f.FindTensor("b.f16"));
  ASSERT_TRUE(b.ok());
  for (size_t i = 0; i < want[1].data.size(); ++i) {
    EXPECT_EQ((*b)[i], HalfToFloat(FloatToHalf(want[1].data[i])));
    EXPECT_NEAR((*b)[i], want[1].data[i], std::fabs(want[1].data[i]) * 1e-3 + 1e-7);
  }
  // Q8_0: value = int8 * d, with d and the int8s read from the stored bytes by hand.
  const GgufTensorInfo& ct = *f.FindTensor("c.q8");
  auto c = f.ReadF32(ct);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->size(), 128u);
  for (int blk = 0; blk < 4; ++blk) {
    const uint8_t* p = Bytes(image) + ct.offset + 34 * blk;
    const float d = HalfToFloat(static_cast<uint16_t>(p[0] | (p[1] << 8)));
    for (int j = 0; j < 32; ++j) {
      EXPECT_EQ((*c)[32 * blk + j], static_cast<float>(static_cast<int8_t>(p[2 + j])) * d);
      EXPECT_NEAR((*c)[32 * blk + j], want[2].data[32 * blk + j], 0.01 * 1.5 + 1e-6);
    }
  }
}

TEST(GgufTest, OpenMapsAFileWrittenAtomically) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("gguf_test_" + std::to_string(::getpid()) + ".gguf"))
                               .string();
  ASSERT_TRUE(WriteGguf(path, AllKindsMetadata(), SampleTensors()).ok());
  {
    auto file = GgufFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    EXPECT_EQ((*file)->path(), path);
    EXPECT_EQ((*file)->tensors().size(), 3u);
    auto a = (*file)->ReadF32((*file)->tensors()[0]);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(*a, SampleTensors()[0].data);
  }
  std::filesystem::remove(path);
  auto gone = GgufFile::Open(path);
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(gone.status().message(), HasSubstr(path));
  auto dir = GgufFile::Open(std::filesystem::temp_directory_path().string());
  EXPECT_FALSE(dir.ok());
}

TEST(GgufTest, AlignmentComesFromMetadata) {
  auto meta = AllKindsMetadata();
  meta["general.alignment"] = GgufUint32(64);
  auto image = SerializeGguf(meta, SampleTensors());
  ASSERT_TRUE(image.ok());
  auto file = ParseString(*image);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  for (const auto& t : (*file)->tensors()) EXPECT_EQ(t.offset % 64, 0u) << t.name;
  EXPECT_EQ(*(*file)->ReadF32(*(*file)->FindTensor("a.f32")), SampleTensors()[0].data);

  // Not a power of two: the writer refuses, and a hand-patched file is refused by the reader.
  meta["general.alignment"] = GgufUint32(48);
  EXPECT_FALSE(SerializeGguf(meta, SampleTensors()).ok());
  std::string patched = *image;
  const size_t pos = patched.find("general.alignment") + std::strlen("general.alignment") + 4;
  PutU32(patched, pos, 48);
  auto bad = ParseString(patched);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("general.alignment"));
  EXPECT_THAT(bad.status().message(), HasSubstr("power-of-two"));
  PutU32(patched, pos, 0);
  EXPECT_FALSE(ParseString(patched).ok());

  // A string alignment is refused too.
  Builder b;
  b.Header(3, 0, 1).Str("general.alignment").U32(8).Str("32");
  auto str = ParseString(b.str());
  ASSERT_FALSE(str.ok());
  EXPECT_THAT(str.status().message(), HasSubstr("found string"));
}

TEST(GgufTest, VersionsTwoAndThreeOnly) {
  std::string image = SampleImage();
  PutU32(image, 4, 2);
  auto v2 = ParseString(image);
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  EXPECT_EQ((*v2)->version(), 2u);
  PutU32(image, 4, 1);
  auto v1 = ParseString(image);
  ASSERT_FALSE(v1.ok());
  EXPECT_THAT(v1.status().message(), HasSubstr("version 1 is not supported"));
  PutU32(image, 4, 4);
  EXPECT_THAT(ParseString(image).status().message(), HasSubstr("unsupported GGUF version 4"));
  PutU32(image, 4, 0x03000000);
  EXPECT_THAT(ParseString(image).status().message(), HasSubstr("big-endian"));
  image[0] = 'X';
  EXPECT_THAT(ParseString(image).status().message(), HasSubstr("not a GGUF file"));
  EXPECT_FALSE(ParseString("").ok());
  EXPECT_FALSE(ParseString("GGU").ok());
}

TEST(GgufTest, HostileCountsAreErrorsNotAllocations) {
  {  // 2^60 strings in an array, nothing behind them.
    Builder b;
    b.Header(3, 0, 1).Str("tokenizer.ggml.tokens").U32(9).U32(8).U64(uint64_t{1} << 60);
    auto r = ParseString(b.str());
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.status().message(), HasSubstr("tokenizer.ggml.tokens"));
    EXPECT_THAT(r.status().message(), HasSubstr("1152921504606846976 string elements"));
  }
  {  // A count whose byte size overflows 64 bits.
    Builder b;
    b.Header(3, 0, 1).Str("k").U32(9).U32(10).U64(~uint64_t{0});
    EXPECT_FALSE(ParseString(b.str()).ok());
  }
  {  // A string that claims more bytes than the file holds.
    Builder b;
    b.Header(3, 0, 1).Str("k").U32(8).U64(uint64_t{1} << 62).U32(0);
    auto r = ParseString(b.str());
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.status().message(), HasSubstr("claims 4611686018427387904 bytes"));
  }
  {  // A key whose length is huge.
    Builder b;
    b.Header(3, 0, 1).U64(~uint64_t{0});
    EXPECT_FALSE(ParseString(b.str()).ok());
  }
  {  // Counts of entries that cannot fit.
    Builder b;
    b.Header(3, uint64_t{1} << 60, 0);
    EXPECT_THAT(ParseString(b.str()).status().message(), HasSubstr("tensor count"));
    Builder c;
    c.Header(3, 0, uint64_t{1} << 60);
    EXPECT_THAT(ParseString(c.str()).status().message(), HasSubstr("metadata count"));
  }
}

TEST(GgufTest, MalformedValuesAreRefused) {
  {
    Builder b;
    b.Header(3, 0, 1).Str("k").U32(13).U32(0);
    auto r = ParseString(b.str());
    EXPECT_THAT(r.status().message(), HasSubstr("unknown value type 13"));
    EXPECT_THAT(r.status().message(), HasSubstr("offset 33"));
  }
  {
    Builder b;
    b.Header(3, 0, 1).Str("k").U32(9).U32(9).U64(0);
    EXPECT_THAT(ParseString(b.str()).status().message(), HasSubstr("nested arrays"));
  }
  {
    Builder b;
    b.Header(3, 0, 1).Str("k").U32(10).U64(~uint64_t{0});
    EXPECT_THAT(ParseString(b.str()).status().message(), HasSubstr("above the supported"));
  }
  {
    Builder b;
    b.Header(3, 0, 2).Str("k").U32(4).U32(1).Str("k").U32(4).U32(2);
    EXPECT_THAT(ParseString(b.str()).status().message(), HasSubstr("duplicate metadata key 'k'"));
  }
  {  // A well-formed empty file parses: no metadata, no tensors.
    Builder b;
    b.Header(3, 0, 0);
    auto r = ParseString(b.str());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE((*r)->metadata().empty());
    EXPECT_TRUE((*r)->tensors().empty());
  }
}

TEST(GgufTest, EveryTruncationIsAnError) {
  const std::string image = SampleImage();
  // Truncating anywhere before the last tensor's data ends must fail; the trailing padding
  // after it is optional.
  auto full = ParseString(image);
  ASSERT_TRUE(full.ok());
  uint64_t data_end = 0;
  for (const auto& t : (*full)->tensors()) data_end = std::max(data_end, t.offset + t.nbytes);
  for (size_t n = 0; n < data_end; ++n) {
    auto r = GgufFile::Parse(Bytes(image), n, "cut.gguf");
    EXPECT_FALSE(r.ok()) << "truncated to " << n;
  }
  EXPECT_TRUE(GgufFile::Parse(Bytes(image), data_end, "cut.gguf").ok());
}

TEST(GgufTest, TensorOutsideTheFileNamesTensorOffsetAndType) {
  std::string image = SampleImage();
  const size_t at = TensorInfoPos(image, "b.f16");
  // n_dims(4) + 2 dims(16) + type(4) -> offset.
  PutU64(image, at + 4 + 16 + 4, uint64_t{1} << 40);
  auto r = ParseString(image);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("tensor 'b.f16'"));
  EXPECT_THAT(r.status().message(), HasSubstr("F16"));
  EXPECT_THAT(r.status().message(), HasSubstr("1099511627776"));
  PutU64(image, at + 4 + 16 + 4, ~uint64_t{0} - 31);  // aligned, and overflows when added
  EXPECT_FALSE(ParseString(image).ok());
}

TEST(GgufTest, OverlappingTensorsAreRefused) {
  std::string image = SampleImage();
  const size_t at = TensorInfoPos(image, "b.f16");
  PutU64(image, at + 4 + 16 + 4, 0);  // same start as a.f32
  auto r = ParseString(image);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("overlaps"));
  EXPECT_THAT(r.status().message(), HasSubstr("'a.f32'"));
  EXPECT_THAT(r.status().message(), HasSubstr("'b.f16'"));
}

TEST(GgufTest, BadTensorInfosAreRefused) {
  const std::string image = SampleImage();
  const size_t at = TensorInfoPos(image, "c.q8");
  {
    std::string bad = image;
    PutU64(bad, at + 4 + 16 + 4, 16);  // not a multiple of 32
    EXPECT_THAT(ParseString(bad).status().message(), HasSubstr("not a multiple of the alignment"));
  }
  {
    std::string bad = image;
    PutU32(bad, at + 4 + 16, 4);  // retired ggml type
    EXPECT_THAT(ParseString(bad).status().message(), HasSubstr("unknown ggml type 4"));
  }
  {
    std::string bad = image;
    PutU64(bad, at + 4, 48);  // Q8_0 row of 48 elements: not whole blocks
    auto r = ParseString(bad);
    EXPECT_THAT(r.status().message(), HasSubstr("row length 48"));
    EXPECT_THAT(r.status().message(), HasSubstr("c.q8"));
  }
  {
    std::string bad = image;
    PutU32(bad, at, 5);
    EXPECT_THAT(ParseString(bad).status().message(), HasSubstr("5 dimensions"));
    PutU32(bad, at, 0);
    EXPECT_THAT(ParseString(bad).status().message(), HasSubstr("0 dimensions"));
  }
  {
    std::string bad = image;
    PutU64(bad, at + 4, uint64_t{1} << 62);
    PutU64(bad, at + 12, uint64_t{1} << 62);
    EXPECT_THAT(ParseString(bad).status().message(), HasSubstr("overflows"));
  }
}

TEST(GgufTest, DuplicateTensorNamesAreRefused) {
  Builder b;
  b.Header(3, 2, 0);
  for (int i = 0; i < 2; ++i) b.Str("w").U32(1).U64(8).U32(0).U64(32 * i);
  std::string image = b.str();
  image.resize(96 + 64, '\0');
  auto r = ParseString(image);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("duplicate tensor name 'w'"));
}

TEST(GgufTest, UnsupportedTypesOpenButDoNotDequantize) {
  std::vector<GgufWriterTensor> tensors(1);
  tensors[0].name = "q5";
  tensors[0].shape = {1, 32};
  tensors[0].type = 6;  // Q5_0: 22 bytes per 32 elements
  tensors[0].raw = std::string(22, '\x01');
  auto image = SerializeGguf({}, tensors);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  auto file = ParseString(*image);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto r = (*file)->ReadF32((*file)->tensors()[0]);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("tensor 'q5'"));
  EXPECT_THAT(r.status().message(), HasSubstr("Q5_0"));
  EXPECT_THAT(r.status().message(), HasSubstr("cannot be read as float32"));

  // A caller-made info pointing past the data is refused, not read.
  GgufTensorInfo fake = (*file)->tensors()[0];
  fake.type = 0;
  fake.nbytes = 128;
  EXPECT_FALSE((*file)->ReadF32(fake).ok());
  fake.offset = ~uint64_t{0} - 4;
  fake.nbytes = 128;
  EXPECT_FALSE((*file)->ReadF32(fake).ok());
}

TEST(GgufTest, WriterRejectsBadInput) {
  auto t = SampleTensors();
  t[0].data.pop_back();
  EXPECT_THAT(SerializeGguf({}, t).status().message(), HasSubstr("'a.f32': 14 values given"));
  t = SampleTensors();
  t[1].name = t[0].name;
  EXPECT_THAT(SerializeGguf({}, t).status().message(), HasSubstr("appears twice"));
  t = SampleTensors();
  t[0].type = static_cast<uint32_t>(GgmlType::kQ4_K);
  EXPECT_FALSE(SerializeGguf({}, t).ok());
  std::map<std::string, GgufValue> meta;
  meta["x"] = GgufInt(GgufValueType::kUint8, 256);
  EXPECT_THAT(SerializeGguf(meta, {}).status().message(), HasSubstr("'x': value 256"));
}

TEST(GgufTest, TypeNames) {
  EXPECT_EQ(GgmlTypeName(0), "F32");
  EXPECT_EQ(GgmlTypeName(12), "Q4_K");
  EXPECT_EQ(GgmlTypeName(30), "BF16");
  EXPECT_EQ(GgmlTypeName(4), "type 4");
  EXPECT_EQ(GgmlTypeName(1000), "type 1000");
  EXPECT_EQ(*GgmlBytes(14, 512), 420u);
  EXPECT_FALSE(GgmlBytes(14, 100).ok());
  EXPECT_FALSE(GgmlBytes(4, 32).ok());
  EXPECT_FALSE(GgmlBytes(0, -1).ok());
}

// --- real files from BREAKFIX_TEST_DATA ------------------------------------------------------

std::optional<std::string> DataDir() { return Env::Default()->GetVar("BREAKFIX_TEST_DATA"); }

bool RequireFile(const std::string& path) {
  if (std::filesystem::is_regular_file(path)) return true;
  ADD_FAILURE() << "BREAKFIX_TEST_DATA is set but the data file is missing: " << path;
  return false;
}

#define REQUIRE_DATA_FILE(var, relative)                                                       \
  auto data_dir_ = DataDir();                                                                  \
  if (!data_dir_) GTEST_SKIP() << "BREAKFIX_TEST_DATA is unset; set it to the data directory"; \
  const std::string var = *data_dir_ + "/" + relative;                                         \
  if (!RequireFile(var)) return

TEST(GgufRealDataTest, Stories260K) {
  REQUIRE_DATA_FILE(path, "tinyllamas-stories260K/stories260K.gguf");
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const GgufFile& f = **file;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.metadata().size(), 19u);
  ASSERT_EQ(f.tensors().size(), 48u);
  EXPECT_EQ(*f.GetString("general.architecture"), "llama");
  EXPECT_EQ(*f.GetInt("llama.embedding_length"), 64);
  EXPECT_EQ(*f.GetInt("llama.block_count"), 5);
  EXPECT_EQ(*f.GetInt("llama.attention.head_count"), 8);
  EXPECT_EQ(*f.GetInt("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(*f.GetInt("llama.feed_forward_length"), 172);
  EXPECT_EQ(*f.GetInt("llama.rope.dimension_count"), 8);
  EXPECT_EQ(*f.GetInt("llama.context_length"), 2048);
  EXPECT_NEAR(*f.GetFloat("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-9);
  EXPECT_EQ(*f.GetString("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(f.GetStrings("tokenizer.ggml.tokens")->size(), 512u);
  EXPECT_EQ(f.GetFloats("tokenizer.ggml.scores")->size(), 512u);
  EXPECT_EQ(*f.GetInt("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(*f.GetInt("tokenizer.ggml.eos_token_id"), 2);
  int64_t elements = 0;
  for (const auto& t : f.tensors()) {
    EXPECT_EQ(t.type, 0u) << t.name;
    auto data = f.ReadF32(t);
    ASSERT_TRUE(data.ok()) << data.status().ToString();
    for (float x : *data) ASSERT_TRUE(std::isfinite(x)) << t.name;
    elements += t.elements();
  }
  EXPECT_GT(elements, 250000);
  EXPECT_LT(elements, 300000);
  EXPECT_EQ(f.FindTensor("token_embd.weight")->shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(f.FindTensor("blk.0.attn_k.weight")->shape, (std::vector<int64_t>{32, 64}));
}

TEST(GgufRealDataTest, LlamaTinyRandomF16) {
  REQUIRE_DATA_FILE(path, "llama-2-tiny-random-gguf/llama-2-tiny-random.gguf");
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const GgufFile& f = **file;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.metadata().size(), 18u);
  ASSERT_EQ(f.tensors().size(), 12u);
  EXPECT_EQ(*f.GetInt("general.file_type"), 1);
  EXPECT_EQ(*f.GetInt("llama.embedding_length"), 8);
  EXPECT_EQ(*f.GetInt("llama.attention.head_count"), 2);
  EXPECT_EQ(f.GetStrings("tokenizer.ggml.tokens")->size(), 32000u);
  int f16 = 0;
  for (const auto& t : f.tensors()) {
    if (t.type == static_cast<uint32_t>(GgmlType::kF16)) ++f16;
    auto data = f.ReadF32(t);
    ASSERT_TRUE(data.ok()) << data.status().ToString();
    EXPECT_EQ(static_cast<int64_t>(data->size()), t.elements());
  }
  EXPECT_GE(f16, 7);  // the matrices; norms may be stored as F32
}

TEST(GgufRealDataTest, VocabOnlyFiles) {
  REQUIRE_DATA_FILE(phi3_path, "llamacpp-vocab-gguf/ggml-vocab-phi-3.gguf");
  const std::string dir = *data_dir_ + "/llamacpp-vocab-gguf";
  struct Case {
    const char* file;
    size_t tokens;
    int64_t eos;
  };
  for (const Case& c :
       {Case{"ggml-vocab-llama-spm.gguf", 32000, 2}, Case{"ggml-vocab-phi-3.gguf", 32064, 32000}}) {
    const std::string path = dir + "/" + c.file;
    if (!RequireFile(path)) continue;
    auto file = GgufFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    const GgufFile& f = **file;
    EXPECT_EQ(f.version(), 3u) << c.file;
    EXPECT_TRUE(f.tensors().empty()) << c.file;
    EXPECT_EQ(*f.GetString("tokenizer.ggml.model"), "llama") << c.file;
    auto tokens = f.GetStrings("tokenizer.ggml.tokens");
    ASSERT_TRUE(tokens.ok());
    EXPECT_EQ(tokens->size(), c.tokens) << c.file;
    EXPECT_EQ((*tokens)[1], "<s>");
    EXPECT_EQ(f.GetFloats("tokenizer.ggml.scores")->size(), c.tokens);
    EXPECT_EQ(f.GetInts("tokenizer.ggml.token_type")->size(), c.tokens);
    EXPECT_EQ(*f.GetInt("tokenizer.ggml.eos_token_id"), c.eos) << c.file;
  }
  auto phi3 = GgufFile::Open(phi3_path);
  ASSERT_TRUE(phi3.ok());
  auto tmpl = (*phi3)->GetString("tokenizer.chat_template");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().ToString();
  EXPECT_THAT(*tmpl, HasSubstr("<|assistant|>"));
}

}  // namespace
}  // namespace breakfix::engine
