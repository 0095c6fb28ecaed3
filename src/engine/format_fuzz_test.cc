// Deterministic mutation fuzzing of the GGUF and safetensors readers (and OpenWeights on top of
// them): valid images built with the writers, plus the real files when BREAKFIX_TEST_DATA is set,
// go through tens of thousands of mutations: bit flips, bytes and integers overwritten with
// extreme values, truncation at every header byte, every header position set to a huge length,
// and JSON numbers and punctuation replaced. Each mutated image goes through Parse, every
// accessor and ReadF32 of every tensor. Nothing is asserted about the outcome except that it is
// a value or an error with a message: a crash, a hang or a sanitizer report is the failure.
// (Run under -fsanitize=address,undefined for the full value; see tests/fuzz/ for libFuzzer.)
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <optional>

#include "breakfix/env.h"
#include "engine/gguf.h"
#include "engine/gguf_writer.h"
#include "engine/model_weights.h"

namespace breakfix::engine {
namespace {

namespace fs = std::filesystem;

// Counts outcomes so a harness that silently stopped parsing anything would show.
struct Tally {
  int ok = 0;
  int errors = 0;
};

void ExerciseGguf(const uint8_t* data, size_t size, Tally* tally) {
  auto file = GgufFile::Parse(data, size, "fuzz.gguf");
  if (!file.ok()) {
    ASSERT_FALSE(file.status().message().empty());
    ++tally->errors;
    return;
  }
  ++tally->ok;
  const GgufFile& f = **file;
  (void)f.version();
  for (const auto& [key, value] : f.metadata()) {
    (void)f.GetString(key);
    (void)f.GetInt(key);
    (void)f.GetFloat(key);
    (void)f.GetBool(key);
    (void)f.GetStrings(key);
    (void)f.GetFloats(key);
    (void)f.GetInts(key);
    ASSERT_EQ(f.Find(key), &value);
  }
  for (const GgufTensorInfo& t : f.tensors()) {
    ASSERT_EQ(f.FindTensor(t.name), &t);
    auto values = f.ReadF32(t);
    if (values.ok()) {
      ASSERT_EQ(static_cast<int64_t>(values->size()), t.elements());
    } else {
      ASSERT_FALSE(values.status().message().empty());
    }
  }
}

void ExerciseSafetensors(const uint8_t* data, size_t size, Tally* tally) {
  auto file = SafetensorsFile::Parse(data, size, "fuzz.safetensors");
  if (!file.ok()) {
    ASSERT_FALSE(file.status().message().empty());
    ++tally->errors;
    return;
  }
  ++tally->ok;
  (void)(*file)->metadata();
  for (const SafetensorsTensor& t : (*file)->tensors()) {
    ASSERT_NE((*file)->Find(t.name), nullptr);
    auto values = (*file)->ReadF32(t);
    if (!values.ok()) {
      ASSERT_FALSE(values.status().message().empty());
    }
  }
}

// Mutates an image in place and undoes the change afterwards, so even a megabyte-sized real
// file costs only the bytes touched.
class Mutator {
 public:
  Mutator(std::string image, size_t header_size, uint64_t seed)
      : image_(std::move(image)), header_size_(std::min(header_size, image_.size())), rng_(seed) {}

  const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(image_.data()); }
  size_t size() const { return image_.size(); }
  size_t header_size() const { return header_size_; }

  // Writes `bytes` at `pos` (clipped to the image), remembering what was there.
  void Overwrite(size_t pos, const std::string& bytes) {
    if (pos >= image_.size()) return;
    const size_t n = std::min(bytes.size(), image_.size() - pos);
    undo_.push_back({pos, image_.substr(pos, n)});
    image_.replace(pos, n, bytes.substr(0, n));
  }
  void Undo() {
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
      image_.replace(it->first, it->second.size(), it->second);
    }
    undo_.clear();
  }

  static std::string Le(uint64_t v, int bytes) {
    std::string s(bytes, '\0');
    for (int i = 0; i < bytes; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
    return s;
  }

  // One random mutation, mostly inside the header; returns the size to parse (truncation).
  size_t Random() {
    static const uint64_t kExtremes[] = {0,          1,          0x7F,          0x80,
                                         0xFF,       0x7FFFFFFF, 0x80000000,    0xFFFFFFFF,
                                         1ull << 32, 1ull << 60, 1ull << 63,    ~0ull,
                                         ~0ull - 31, 4096,       image_.size(), image_.size() + 1};
    const size_t span = rng_.Below(8) == 0 ? image_.size() : header_size_;
    const size_t pos = static_cast<size_t>(rng_.Below(std::max<size_t>(span, 1)));
    switch (rng_.Below(6)) {
      case 0:  // bit flips
        for (uint64_t i = 0, n = 1 + rng_.Below(4); i < n; ++i) {
          const size_t p = static_cast<size_t>(rng_.Below(std::max<size_t>(span, 1)));
          if (p < image_.size()) {
            Overwrite(p, std::string(1, static_cast<char>(image_[p] ^ (1 << rng_.Below(8)))));
          }
        }
        return image_.size();
      case 1:  // one byte set to an extreme value
        Overwrite(pos, std::string(1, static_cast<char>(kExtremes[rng_.Below(5)])));
        return image_.size();
      case 2:  // a 32-bit field set to an extreme value
        Overwrite(pos, Le(kExtremes[rng_.Below(std::size(kExtremes))], 4));
        return image_.size();
      case 3:  // a 64-bit field set to an extreme value
        Overwrite(pos, Le(kExtremes[rng_.Below(std::size(kExtremes))], 8));
        return image_.size();
      case 4:  // random bytes
        for (uint64_t i = 0, n = 1 + rng_.Below(16); i < n; ++i) {
          Overwrite(pos + i, std::string(1, static_cast<char>(rng_.Below(256))));
        }
        return image_.size();
      default:  // truncation plus a flip
        Overwrite(pos, std::string(1, static_cast<char>(rng_.Below(256))));
        return static_cast<size_t>(rng_.Below(image_.size() + 1));
    }
  }

 private:
  std::string image_;
  size_t header_size_;
  breakfix::Random rng_;
  std::vector<std::pair<size_t, std::string>> undo_;
};

// Runs the systematic and random mutations over one GGUF image.
void FuzzGguf(const std::string& image, size_t header_size, int random_mutations, uint64_t seed,
              Tally* tally) {
  Mutator m(image, header_size, seed);
  // Truncation at every header byte (every boundary of every header field).
  for (size_t n = 0; n <= m.header_size(); ++n) ExerciseGguf(m.data(), n, tally);
  // Every header position read as a length or count: set to huge values.
  for (size_t pos = 0; pos + 8 <= m.header_size(); ++pos) {
    for (uint64_t v : {uint64_t{1} << 60, ~uint64_t{0}, uint64_t{1} << 31}) {
      m.Overwrite(pos, Mutator::Le(v, 8));
      ExerciseGguf(m.data(), m.size(), tally);
      m.Undo();
    }
  }
  for (int i = 0; i < random_mutations; ++i) {
    const size_t n = m.Random();
    ExerciseGguf(m.data(), n, tally);
    m.Undo();
    if (::testing::Test::HasFatalFailure()) return;
  }
}

void FuzzSafetensors(const std::string& image, int random_mutations, uint64_t seed, Tally* tally) {
  uint64_t header_len = 0;
  for (int i = 0; i < 8 && i < static_cast<int>(image.size()); ++i) {
    header_len |= static_cast<uint64_t>(static_cast<uint8_t>(image[i])) << (8 * i);
  }
  const size_t header_end = static_cast<size_t>(std::min<uint64_t>(8 + header_len, image.size()));
  Mutator m(image, header_end, seed);
  for (size_t n = 0; n <= header_end; ++n) ExerciseSafetensors(m.data(), n, tally);
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, header_len - 1, header_len + 1, uint64_t{1} << 60,
                     ~uint64_t{0}}) {
    m.Overwrite(0, Mutator::Le(v, 8));
    ExerciseSafetensors(m.data(), m.size(), tally);
    m.Undo();
  }
  // Every number in the JSON replaced with extreme spellings; every punctuation mark replaced.
  const std::string header = image.substr(8, header_end - 8);
  for (size_t i = 0; i < header.size(); ++i) {
    const bool digit_start = isdigit(static_cast<unsigned char>(header[i])) &&
                             (i == 0 || !isdigit(static_cast<unsigned char>(header[i - 1])));
    if (digit_start) {
      size_t j = i;
      while (j < header.size() && isdigit(static_cast<unsigned char>(header[j]))) ++j;
      for (const char* number : {"18446744073709551615", "18446744073709551616", "-1", "1e308",
                                 "9223372036854775807", "0.5", "4611686018427387904"}) {
        std::string mutated = image.substr(0, 8 + i) + number + image.substr(8 + j);
        const std::string len = Mutator::Le(header.size() - (j - i) + strlen(number), 8);
        mutated.replace(0, 8, len);
        ExerciseSafetensors(reinterpret_cast<const uint8_t*>(mutated.data()), mutated.size(),
                            tally);
      }
    }
    if (strchr("{}[]\":,", header[i]) != nullptr) {
      for (char c : {'{', '}', '[', ']', '"', ',', ':', '\\', '\0', '\xff', ' '}) {
        m.Overwrite(8 + i, std::string(1, c));
        ExerciseSafetensors(m.data(), m.size(), tally);
        m.Undo();
      }
    }
  }
  for (int i = 0; i < random_mutations; ++i) {
    const size_t n = m.Random();
    ExerciseSafetensors(m.data(), n, tally);
    m.Undo();
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// Header size of a GGUF image: where the first tensor's data starts (or the whole image).
size_t GgufHeaderSize(const std::string& image) {
  auto file = GgufFile::Parse(reinterpret_cast<const uint8_t*>(image.data()), image.size(), "x");
  if (!file.ok() || (*file)->tensors().empty()) return image.size();
  uint64_t first = image.size();
  for (const auto& t : (*file)->tensors()) first = std::min(first, t.offset);
  return static_cast<size_t>(first);
}

std::string SampleGguf() {
  std::map<std::string, GgufValue> meta;
  meta["general.architecture"] = GgufString("llama");
  meta["general.alignment"] = GgufUint32(32);
  meta["llama.embedding_length"] = GgufUint32(32);
  meta["llama.block_count"] = GgufUint32(1);
  meta["llama.context_length"] = GgufUint32(64);
  meta["llama.feed_forward_length"] = GgufUint32(32);
  meta["llama.attention.head_count"] = GgufUint32(4);
  meta["llama.attention.layer_norm_rms_epsilon"] = GgufFloat32(1e-5f);
  meta["tokenizer.ggml.tokens"] = GgufStringArray({"<unk>", "<s>", "</s>", "a", "b"});
  meta["tokenizer.ggml.scores"] = GgufFloatArray({0, 0, 0, -1, -2});
  meta["tokenizer.ggml.token_type"] = GgufIntArray({2, 3, 3, 1, 1});
  meta["k.bool"] = GgufBool(true);
  meta["k.i64"] = GgufInt(GgufValueType::kInt64, -5);
  meta["k.u16s"] = GgufIntArray({1, 2}, GgufValueType::kUint16);
  std::vector<GgufWriterTensor> tensors;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, GgmlType type) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(i % 17) * 0.25f - 2.0f;
    tensors.push_back({name, shape, static_cast<uint32_t>(type), v, ""});
  };
  add("token_embd.weight", {5, 32}, GgmlType::kQ8_0);
  add("output_norm.weight", {32}, GgmlType::kF32);
  add("blk.0.attn_norm.weight", {32}, GgmlType::kF32);
  add("blk.0.attn_q.weight", {32, 32}, GgmlType::kF16);
  add("blk.0.attn_k.weight", {32, 32}, GgmlType::kF16);
  add("blk.0.attn_v.weight", {32, 32}, GgmlType::kQ8_0);
  add("blk.0.attn_output.weight", {32, 32}, GgmlType::kF32);
  add("blk.0.ffn_norm.weight", {32}, GgmlType::kF32);
  add("blk.0.ffn_gate.weight", {32, 32}, GgmlType::kQ8_0);
  add("blk.0.ffn_up.weight", {32, 32}, GgmlType::kF16);
  add("blk.0.ffn_down.weight", {32, 32}, GgmlType::kF32);
  // A k-quant block given as raw bytes, so Q4_K dequantization sees mutated input too.
  GgufWriterTensor raw;
  raw.name = "extra.q4k";
  raw.shape = {1, 256};
  raw.type = static_cast<uint32_t>(GgmlType::kQ4_K);
  raw.raw.assign(144, '\x5a');
  tensors.push_back(raw);
  auto image = SerializeGguf(meta, tensors);
  EXPECT_TRUE(image.ok()) << image.status().ToString();
  return image.ok() ? *image : "";
}

std::string SampleSafetensors(const std::string& path) {
  std::vector<std::pair<std::string, FloatTensor>> tensors = {
      {"model.embed_tokens.weight", {{4, 8}, std::vector<float>(32, 0.5f)}},
      {"model.norm.weight", {{8}, std::vector<float>(8, 1.0f)}},
      {"lm_head.weight", {{4, 8}, std::vector<float>(32, -0.5f)}}};
  EXPECT_TRUE(WriteSafetensors(path, tensors, {{"format", "pt"}}, /*bf16=*/true).ok());
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string TempPath(const std::string& name) {
  return (fs::temp_directory_path() / (name + "." + std::to_string(::getpid()))).string();
}

TEST(FormatFuzzTest, GgufMutations) {
  const std::string image = SampleGguf();
  ASSERT_FALSE(image.empty());
  Tally tally;
  FuzzGguf(image, GgufHeaderSize(image), 20000, 1, &tally);
  // The systematic passes alone guarantee both outcomes occur.
  EXPECT_GT(tally.ok, 100);
  EXPECT_GT(tally.errors, 1000);
  std::printf("GGUF: %d parsed, %d refused\n", tally.ok, tally.errors);
}

TEST(FormatFuzzTest, SafetensorsMutations) {
  const std::string path = TempPath("fuzz.safetensors");
  const std::string image = SampleSafetensors(path);
  fs::remove(path);
  ASSERT_FALSE(image.empty());
  Tally tally;
  FuzzSafetensors(image, 15000, 2, &tally);
  EXPECT_GT(tally.ok, 100);
  EXPECT_GT(tally.errors, 1000);
  std::printf("safetensors: %d parsed, %d refused\n", tally.ok, tally.errors);
}

// OpenWeights on mutated model files: config parsing and canonical mapping see hostile input.
TEST(FormatFuzzTest, OpenWeightsOnMutatedGguf) {
  const std::string image = SampleGguf();
  Mutator m(image, GgufHeaderSize(image), 3);
  const std::string path = TempPath("fuzz-model.gguf");
  int opened = 0;
  for (int i = 0; i < 400; ++i) {
    const size_t n = i == 0 ? m.size() : m.Random();
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(m.data()), static_cast<std::streamsize>(n));
    }
    m.Undo();
    auto w = OpenWeights(path);
    if (!w.ok()) {
      ASSERT_FALSE(w.status().message().empty());
      continue;
    }
    ++opened;
    for (const char* name : {"tok_embeddings", "output", "norm", "layers.0.wq", "layers.0.wk",
                             "layers.0.wv", "layers.0.wo", "layers.0.w1", "layers.0.w2",
                             "layers.0.w3", "layers.0.attention_norm", "layers.0.ffn_norm"}) {
      (void)(*w)->Get(name);
    }
    (void)(*w)->content_hash();
  }
  fs::remove(path);
  EXPECT_GT(opened, 0);  // the unmutated first image opens
}

// --- the real files ------------------------------------------------------------------------

std::optional<std::string> ReadDataFile(const std::string& relative) {
  auto dir = Env::Default()->GetVar("BREAKFIX_TEST_DATA");
  if (!dir) return std::nullopt;
  const std::string path = *dir + "/" + relative;
  if (!fs::is_regular_file(path)) {
    ADD_FAILURE() << "BREAKFIX_TEST_DATA is set but the data file is missing: " << path;
    return std::string();
  }
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(FormatFuzzTest, RealGgufFiles) {
  if (!Env::Default()->GetVar("BREAKFIX_TEST_DATA")) {
    GTEST_SKIP() << "BREAKFIX_TEST_DATA is unset; set it to the data directory";
  }
  struct Case {
    const char* file;
    int mutations;  // the 32k-token vocabularies cost a few ms per parse
  };
  uint64_t seed = 10;
  for (const Case& c : {Case{"tinyllamas-stories260K/stories260K.gguf", 1500},
                        Case{"llama-2-tiny-random-gguf/llama-2-tiny-random.gguf", 150},
                        Case{"llamacpp-vocab-gguf/ggml-vocab-phi-3.gguf", 150}}) {
    auto image = ReadDataFile(c.file);
    if (!image || image->empty()) continue;
    Tally tally;
    // Header-wide systematic passes on big vocabularies would be slow; random ones only there,
    // with the systematic passes limited to the first 4 KiB (magic, counts, first keys).
    const size_t header = std::min<size_t>(GgufHeaderSize(*image), 4096);
    Mutator m(*image, GgufHeaderSize(*image), seed++);
    for (size_t n = 0; n <= header; n += 1 + n / 64) ExerciseGguf(m.data(), n, &tally);
    for (size_t pos = 0; pos + 8 <= header; pos += 3) {
      m.Overwrite(pos, Mutator::Le(1ull << 60, 8));
      ExerciseGguf(m.data(), m.size(), &tally);
      m.Undo();
    }
    for (int i = 0; i < c.mutations; ++i) {
      const size_t n = m.Random();
      ExerciseGguf(m.data(), n, &tally);
      m.Undo();
    }
    EXPECT_GT(tally.errors, 0) << c.file;
    std::printf("%s: %d parsed, %d refused\n", c.file, tally.ok, tally.errors);
  }
}

}  // namespace
}  // namespace breakfix::engine
