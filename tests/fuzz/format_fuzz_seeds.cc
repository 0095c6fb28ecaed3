// Writes small valid GGUF and safetensors images into two corpus directories, as starting points
// for gguf_fuzzer and safetensors_fuzzer: format_fuzz_seeds GGUF_DIR SAFETENSORS_DIR
#include <cstdio>
#include <filesystem>
#include <string>

#include "engine/gguf_writer.h"
#include "engine/model_weights.h"

namespace {

using namespace breakfix::engine;

std::vector<float> Ramp(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(i % 13) * 0.5f - 3.0f;
  return v;
}

int Fail(const breakfix::Status& s) {
  std::fprintf(stderr, "format_fuzz_seeds: %s\n", s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s GGUF_CORPUS_DIR SAFETENSORS_CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const std::string gguf_dir = argv[1], st_dir = argv[2];
  std::filesystem::create_directories(gguf_dir);
  std::filesystem::create_directories(st_dir);

  std::map<std::string, GgufValue> meta;
  meta["general.architecture"] = GgufString("llama");
  meta["llama.embedding_length"] = GgufUint32(32);
  meta["llama.attention.head_count"] = GgufUint32(4);
  meta["llama.attention.layer_norm_rms_epsilon"] = GgufFloat32(1e-5f);
  meta["tokenizer.ggml.tokens"] = GgufStringArray({"<unk>", "<s>", "</s>", "\xe2\x96\x81hi"});
  meta["tokenizer.ggml.scores"] = GgufFloatArray({0, 0, 0, -1.5});
  meta["tokenizer.ggml.token_type"] = GgufIntArray({2, 3, 3, 1});
  meta["tokenizer.ggml.add_bos_token"] = GgufBool(true);
  meta["k.i64"] = GgufInt(GgufValueType::kInt64, -7);
  meta["k.f64s"] = GgufFloatArray({1e300, -0.0}, GgufValueType::kFloat64);
  std::vector<GgufWriterTensor> tensors = {
      {"a.f32", {2, 32}, static_cast<uint32_t>(GgmlType::kF32), Ramp(64), ""},
      {"b.f16", {2, 32}, static_cast<uint32_t>(GgmlType::kF16), Ramp(64), ""},
      {"c.q8", {2, 32}, static_cast<uint32_t>(GgmlType::kQ8_0), Ramp(64), ""}};
  for (auto [type, bytes] : {std::pair<GgmlType, size_t>{GgmlType::kQ4_0, 18},
                             {GgmlType::kQ4_1, 20},
                             {GgmlType::kQ4_K, 144},
                             {GgmlType::kQ5_K, 176},
                             {GgmlType::kQ6_K, 210},
                             {GgmlType::kBF16, 64}}) {
    GgufWriterTensor raw;
    raw.type = static_cast<uint32_t>(type);
    raw.name = "raw." + GgmlTypeName(raw.type);
    raw.shape = {static_cast<int64_t>(type == GgmlType::kBF16 ? 32 : bytes < 100 ? 32 : 256)};
    raw.raw.assign(bytes, '\x37');
    tensors.push_back(raw);
  }
  if (auto s = WriteGguf(gguf_dir + "/model.gguf", meta, tensors); !s.ok()) return Fail(s);
  if (auto s = WriteGguf(gguf_dir + "/metadata_only.gguf", meta, {}); !s.ok()) return Fail(s);
  meta["general.alignment"] = GgufUint32(64);
  if (auto s = WriteGguf(gguf_dir + "/aligned64.gguf", meta, {tensors[0]}); !s.ok()) {
    return Fail(s);
  }

  std::vector<std::pair<std::string, FloatTensor>> st = {
      {"model.embed_tokens.weight", {{4, 8}, Ramp(32)}},
      {"model.norm.weight", {{8}, Ramp(8)}},
      {"empty", {{0}, {}}}};
  if (auto s = WriteSafetensors(st_dir + "/f32.safetensors", st, {{"format", "pt"}}); !s.ok()) {
    return Fail(s);
  }
  if (auto s = WriteSafetensors(st_dir + "/bf16.safetensors", st, {}, true); !s.ok()) {
    return Fail(s);
  }
  std::printf("seeds written to %s and %s\n", gguf_dir.c_str(), st_dir.c_str());
  return 0;
}
