// SafetensorsFile and WriteSafetensors: round trips (F32, BF16, hand-made F16), header layout,
// atomic writes, and every way a header can be wrong.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/dequantize.h"
#include "engine/model_weights.h"
#include "testing/scratch_dir.h"

namespace breakfix::engine {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

using test_support::ScratchDir;

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A file image from a header text and data bytes.
std::string Image(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  return out + header + data;
}

Result<std::unique_ptr<SafetensorsFile>> ParseImage(const std::string& image) {
  return SafetensorsFile::Parse(reinterpret_cast<const uint8_t*>(image.data()), image.size(),
                                "test.safetensors");
}

std::vector<std::pair<std::string, FloatTensor>> SampleTensors() {
  FloatTensor a{{2, 3}, {1.5f, -2.0f, 0.1f, 1e-40f, 3e38f, -0.0f}};
  FloatTensor b{{4}, {0.3333f, 65504.0f, -7.25f, 1.0f / 3.0f}};
  FloatTensor empty{{0, 5}, {}};
  return {{"model.a", a}, {"model.b", b}, {"model.empty", empty}};
}

TEST(SafetensorsTest, F32RoundTripWithMetadata) {
  ScratchDir dir;
  const std::string path = dir.File("model.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, SampleTensors(), {{"format", "pt"}, {"note", "x"}}).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ((*file)->metadata(),
            (std::map<std::string, std::string>{{"format", "pt"}, {"note", "x"}}));
  ASSERT_EQ((*file)->tensors().size(), 3u);
  for (const auto& [name, want] : SampleTensors()) {
    const SafetensorsTensor* t = (*file)->Find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->dtype, "F32");
    EXPECT_EQ(t->shape, want.shape);
    EXPECT_EQ(t->end - t->begin, want.data.size() * 4);
    auto data = (*file)->ReadF32(*t);
    ASSERT_TRUE(data.ok()) << data.status().ToString();
    ASSERT_EQ(data->size(), want.data.size());
    for (size_t i = 0; i < want.data.size(); ++i) {
      EXPECT_EQ(std::bit_cast<uint32_t>((*data)[i]), std::bit_cast<uint32_t>(want.data[i]));
    }
  }
  EXPECT_EQ((*file)->Find("model.c"), nullptr);
  // Nothing but the file itself is left in the directory.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) entries += e.is_regular_file();
  EXPECT_EQ(entries, 1);
}

TEST(SafetensorsTest, HeaderIsPaddedWithSpacesToEightBytes) {
  ScratchDir dir;
  for (int extra = 0; extra < 9; ++extra) {
    const std::string path = dir.File("m.safetensors");
    std::map<std::string, std::string> meta = {{"pad", std::string(extra, 'p')}};
    ASSERT_TRUE(WriteSafetensors(path, SampleTensors(), meta).ok());
    const std::string bytes = ReadBytes(path);
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i)
      n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
    EXPECT_EQ((8 + n) % 8, 0u);
    const std::string header = bytes.substr(8, n);
    EXPECT_EQ(header.front(), '{');
    const size_t close = header.rfind('}');
    EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos);
    EXPECT_LT(header.size() - close - 1, 8u);
    EXPECT_EQ(bytes.size(), 8 + n + (6 + 4) * 4);
  }
}

TEST(SafetensorsTest, Bf16Writing) {
  ScratchDir dir;
  const std::string path = dir.File("bf16.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, SampleTensors(), {}, /*bf16=*/true).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_TRUE((*file)->metadata().empty());
  for (const auto& [name, want] : SampleTensors()) {
    const SafetensorsTensor* t = (*file)->Find(name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->dtype, "BF16");
    auto data = (*file)->ReadF32(*t);
    ASSERT_TRUE(data.ok());
    for (size_t i = 0; i < want.data.size(); ++i) {
      EXPECT_EQ((*data)[i], Bf16ToFloat(FloatToBf16(want.data[i])));
      EXPECT_NEAR((*data)[i], want.data[i],
                  std::fabs(want.data[i]) / 128 + 1e-39);  // subnormals lose bits
    }
  }
}

TEST(SafetensorsTest, F16AndOtherDtypes) {
  std::string data;
  for (uint16_t h : {0x3C00, 0xC000, 0x0001, 0x7C00}) {
    data.push_back(static_cast<char>(h & 0xFF));
    data.push_back(static_cast<char>(h >> 8));
  }
  data += std::string(16, '\x01');  // an I64 pair
  const std::string header = R"({"h":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},)"
                             R"("ids":{"dtype":"I64","shape":[2],"data_offsets":[8,24]}})";
  const std::string image = Image(header, data);
  auto file = ParseImage(image);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto h = (*file)->ReadF32(*(*file)->Find("h"));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ((*h)[0], 1.0f);
  EXPECT_EQ((*h)[1], -2.0f);
  EXPECT_EQ((*h)[2], 0x1p-24f);
  EXPECT_TRUE(std::isinf((*h)[3]));
  auto ids = (*file)->ReadF32(*(*file)->Find("ids"));
  ASSERT_FALSE(ids.ok());
  EXPECT_THAT(ids.status().message(), HasSubstr("tensor 'ids'"));
  EXPECT_THAT(ids.status().message(), HasSubstr("dtype I64"));

  // A caller-made entry that points outside the data is refused.
  SafetensorsTensor fake = *(*file)->Find("h");
  fake.end = 1000;
  fake.shape = {500};
  EXPECT_FALSE((*file)->ReadF32(fake).ok());
}

struct BadHeader {
  const char* header;
  size_t data_bytes;
  const char* expect;
};

TEST(SafetensorsTest, MalformedHeadersNameTheProblem) {
  const BadHeader cases[] = {
      {R"([1,2])", 0, "not an object"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 8, "does not parse"},
      {R"({"a":1})", 0, "tensor 'a': expected an object"},
      {R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8, "'dtype' is missing"},
      {R"({"a":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}})", 8, "unknown dtype 'Q9'"},
      {R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", 8, "'shape' is missing"},
      {R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, "non-negative"},
      {R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8, "non-negative"},
      {R"({"a":{"dtype":"F32","shape":[2]}})", 8, "'data_offsets'"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8, "'data_offsets'"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8, "before begin"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", 8, "run past"},
      {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, "needs 12"},
      {R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}})", 8,
       "overflows"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       12, "overlaps"},
      {R"({"__metadata__":{"k":1}})", 0, "entry 'k' is number"},
      {R"({"__metadata__":[]})", 0, "'__metadata__' must be an object"},
  };
  for (const BadHeader& c : cases) {
    const std::string image = Image(c.header, std::string(c.data_bytes, '\0'));
    auto r = ParseImage(image);
    ASSERT_FALSE(r.ok()) << c.header;
    EXPECT_THAT(r.status().message(), HasSubstr(c.expect)) << c.header;
    EXPECT_THAT(r.status().message(), HasSubstr("test.safetensors")) << c.header;
  }
}

TEST(SafetensorsTest, BadLengthsAndTruncation) {
  EXPECT_THAT(ParseImage("").status().message(), HasSubstr("too short"));
  EXPECT_THAT(ParseImage("1234567").status().message(), HasSubstr("too short"));
  std::string huge(8, '\xff');
  huge += "{}";
  EXPECT_THAT(ParseImage(huge).status().message(), HasSubstr("exceeds"));
  EXPECT_TRUE(ParseImage(Image("{}", "")).ok());
  EXPECT_TRUE(ParseImage(Image("{}    ", "")).ok());  // trailing padding is allowed
  EXPECT_FALSE(ParseImage(Image("", "")).ok());

  ScratchDir dir;
  const std::string path = dir.File("t.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, SampleTensors(), {}).ok());
  const std::string bytes = ReadBytes(path);
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = SafetensorsFile::Parse(reinterpret_cast<const uint8_t*>(bytes.data()), n, "cut");
    EXPECT_FALSE(r.ok()) << "truncated to " << n;
  }
}

TEST(SafetensorsTest, WriterRefusesBadInputAndLeavesNothing) {
  ScratchDir dir;
  auto tensors = SampleTensors();
  tensors[0].second.data.pop_back();
  auto s = WriteSafetensors(dir.File("a.safetensors"), tensors, {});
  EXPECT_THAT(s.message(), HasSubstr("'model.a' has shape [2, 3] but 5 values"));
  tensors = SampleTensors();
  tensors[1].first = tensors[0].first;
  EXPECT_FALSE(WriteSafetensors(dir.File("a.safetensors"), tensors, {}).ok());
  tensors[1].first = "__metadata__";
  EXPECT_FALSE(WriteSafetensors(dir.File("a.safetensors"), tensors, {}).ok());
  EXPECT_FALSE(fs::exists(dir.File("a.safetensors")));
  auto missing = WriteSafetensors(dir.File("no/such/dir/a.safetensors"), SampleTensors(), {});
  EXPECT_EQ(missing.code(), StatusCode::kIOError);

  // Overwriting replaces the old file in one step.
  const std::string path = dir.File("b.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, SampleTensors(), {{"v", "1"}}).ok());
  ASSERT_TRUE(WriteSafetensors(path, SampleTensors(), {{"v", "2"}}).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->metadata().at("v"), "2");
  auto absent = SafetensorsFile::Open(dir.File("nope.safetensors"));
  EXPECT_EQ(absent.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace breakfix::engine
