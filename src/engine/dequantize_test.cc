// Dequantization: half/bfloat16 conversions (subnormals, infinities, NaN, rounding) and each
// block format, checked against values computed here from the documented layout, against
// hand-set literal blocks, and against quantizers written in this test (a wrong layout would
// not reproduce the quantized input).
#include "engine/dequantize.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "breakfix/env.h"
#include "engine/gguf.h"

namespace breakfix::engine {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ8_0 = 8, kQ4_K = 12, kQ5_K = 13,
                   kQ6_K = 14, kBF16 = 30;

uint32_t Bits(float f) { return std::bit_cast<uint32_t>(f); }

void PutHalf(uint8_t* p, uint16_t h) {
  p[0] = static_cast<uint8_t>(h & 0xFF);
  p[1] = static_cast<uint8_t>(h >> 8);
}

std::vector<float> Dequantize(uint32_t type, const std::vector<uint8_t>& bytes, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  Status s = DequantizeRow(type, bytes.data(), n, out.data());
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

// --- half precision -------------------------------------------------------------------------

TEST(HalfTest, SpecialValuesDecodeExactly) {
  EXPECT_EQ(HalfToFloat(0x0000), 0.0f);
  EXPECT_TRUE(std::signbit(HalfToFloat(0x8000)));
  EXPECT_EQ(HalfToFloat(0x3C00), 1.0f);
  EXPECT_EQ(HalfToFloat(0xC000), -2.0f);
  EXPECT_EQ(HalfToFloat(0x3555), 0x1.554p-2f);
  EXPECT_EQ(HalfToFloat(0x7BFF), 65504.0f);
  EXPECT_EQ(HalfToFloat(0x0400), 0x1p-14f);         // smallest normal
  EXPECT_EQ(HalfToFloat(0x0001), 0x1p-24f);         // smallest subnormal
  EXPECT_EQ(HalfToFloat(0x03FF), 1023 * 0x1p-24f);  // largest subnormal
  EXPECT_EQ(HalfToFloat(0x8001), -0x1p-24f);
  EXPECT_EQ(HalfToFloat(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(HalfToFloat(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7E00)));
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7C01)));  // signalling NaN keeps its payload
  EXPECT_EQ(Bits(HalfToFloat(0x7C01)), 0x7F802000u);
  EXPECT_TRUE(std::signbit(HalfToFloat(0xFE00)));
}

TEST(HalfTest, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(f)))) << std::hex << h;
    } else {
      ASSERT_EQ(FloatToHalf(f), h) << std::hex << h;
    }
  }
}

TEST(HalfTest, RoundsToNearestEven) {
  EXPECT_EQ(FloatToHalf(1.0f + 0x1p-11f), 0x3C00);             // tie, even below
  EXPECT_EQ(FloatToHalf(1.0f + 3 * 0x1p-11f), 0x3C02);         // tie, even above
  EXPECT_EQ(FloatToHalf(1.0f + 0x1p-11f + 0x1p-20f), 0x3C01);  // just above the tie
  EXPECT_EQ(FloatToHalf(65519.0f), 0x7BFF);
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7C00);  // tie between 65504 and 2^16 rounds to infinity
  EXPECT_EQ(FloatToHalf(1e10f), 0x7C00);
  EXPECT_EQ(FloatToHalf(-1e10f), 0xFC00);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::infinity()), 0x7C00);
  // Subnormal range.
  EXPECT_EQ(FloatToHalf(0x1p-25f), 0x0000);             // tie with zero: even is zero
  EXPECT_EQ(FloatToHalf(0x1.000002p-25f), 0x0001);      // just above
  EXPECT_EQ(FloatToHalf(3 * 0x1p-25f), 0x0002);         // tie between 1 and 2 units
  EXPECT_EQ(FloatToHalf(5 * 0x1p-25f), 0x0002);         // tie between 2 and 3 units
  EXPECT_EQ(FloatToHalf(0x1p-14f - 0x1p-26f), 0x0400);  // rounds up into the normals
  EXPECT_EQ(FloatToHalf(1e-10f), 0x0000);
  EXPECT_EQ(FloatToHalf(-1e-10f), 0x8000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::denorm_min()), 0x0000);
  const uint16_t nan = FloatToHalf(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7C00, 0x7C00);
  EXPECT_NE(nan & 0x03FF, 0);
  // A NaN whose payload lives only in the low bits must still be a NaN.
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(std::bit_cast<float>(0x7F800001u)))));
}

TEST(HalfTest, PicksTheNearestHalfForRandomFloats) {
  Random rng(7);
  for (int i = 0; i < 200000; ++i) {
    // Magnitudes from 2^-30 to 2^17 so every range (zero, subnormal, normal, overflow) is hit.
    const double exponent = -30.0 + 47.0 * rng.Uniform();
    const float x = static_cast<float>((rng.Below(2) ? -1.0 : 1.0) * std::exp2(exponent));
    const uint16_t h = FloatToHalf(x);
    const float got = HalfToFloat(h);
    if (std::isinf(got)) {
      ASSERT_GE(std::fabs(x), 65520.0f) << x;
      continue;
    }
    const double err = std::fabs(static_cast<double>(got) - x);
    // Neither neighbour (same sign) may be strictly closer, and ties must pick even.
    for (int delta : {-1, 1}) {
      const uint32_t mag = (h & 0x7FFF) + delta;
      if (mag > 0x7BFF) continue;
      const float other = HalfToFloat(static_cast<uint16_t>((h & 0x8000) | mag));
      const double other_err = std::fabs(static_cast<double>(other) - x);
      ASSERT_LE(err, other_err) << x;
      if (err == other_err) {
        ASSERT_EQ(h & 1, 0) << x;
      }
    }
  }
}

TEST(Bf16Test, ConversionsRoundAndKeepSpecials) {
  EXPECT_EQ(Bf16ToFloat(0x3F80), 1.0f);
  EXPECT_EQ(Bf16ToFloat(0xC040), -3.0f);
  EXPECT_EQ(Bf16ToFloat(0x0001), 0x1p-133f);  // subnormal, exact
  EXPECT_EQ(Bf16ToFloat(0x7F80), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(Bf16ToFloat(0x7FC0)));
  EXPECT_EQ(FloatToBf16(1.0f), 0x3F80);
  EXPECT_EQ(FloatToBf16(1.0f + 0x1p-8f), 0x3F80);             // tie, even below
  EXPECT_EQ(FloatToBf16(1.0f + 3 * 0x1p-8f), 0x3F82);         // tie, even above
  EXPECT_EQ(FloatToBf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81);  // above the tie
  EXPECT_EQ(FloatToBf16(0x1p-133f), 0x0001);
  EXPECT_EQ(FloatToBf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds to infinity
  EXPECT_EQ(FloatToBf16(-std::numeric_limits<float>::infinity()), 0xFF80);
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::bit_cast<float>(0x7F800001u)))));
  EXPECT_EQ(FloatToBf16(-0.0f), 0x8000);
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float f = Bf16ToFloat(static_cast<uint16_t>(b));
    if (!std::isnan(f)) {
      ASSERT_EQ(FloatToBf16(f), b);
    }
  }
}

// --- plain types ----------------------------------------------------------------------------

TEST(DequantizeTest, PlainTypes) {
  std::vector<uint8_t> f32(8);
  const float a = -1.25f, b = 3e-42f;  // b is a float subnormal
  std::memcpy(f32.data(), &a, 4);
  std::memcpy(f32.data() + 4, &b, 4);
  EXPECT_EQ(Dequantize(kF32, f32, 2), (std::vector<float>{a, b}));

  std::vector<uint8_t> f16(6);
  PutHalf(f16.data(), 0x3C00);
  PutHalf(f16.data() + 2, 0x0001);
  PutHalf(f16.data() + 4, 0xFC00);
  auto h = Dequantize(kF16, f16, 3);
  EXPECT_EQ(h[0], 1.0f);
  EXPECT_EQ(h[1], 0x1p-24f);
  EXPECT_EQ(h[2], -std::numeric_limits<float>::infinity());

  std::vector<uint8_t> bf16 = {0x80, 0x3F, 0x40, 0xC0};
  EXPECT_EQ(Dequantize(kBF16, bf16, 2), (std::vector<float>{1.0f, -3.0f}));
}

// --- 32-element blocks ----------------------------------------------------------------------

TEST(DequantizeTest, Q4_0LiteralBlock) {
  std::vector<uint8_t> block(18, 0);
  PutHalf(block.data(), 0x3800);  // d = 0.5
  block[2] = 0x9F;                // element 0: 15 -> 3.5; element 16: 9 -> 0.5
  block[17] = 0x08;               // element 15: 8 -> 0; element 31: 0 -> -4
  auto v = Dequantize(kQ4_0, block, 32);
  EXPECT_EQ(v[0], 3.5f);
  EXPECT_EQ(v[16], 0.5f);
  EXPECT_EQ(v[15], 0.0f);
  EXPECT_EQ(v[31], -4.0f);
  EXPECT_EQ(v[1], -4.0f);  // nibble 0
}

TEST(DequantizeTest, Q4_0AndQ4_1FromLayout) {
  Random rng(11);
  const int kBlocks = 3;
  std::vector<uint8_t> q40(18 * kBlocks), q41(20 * kBlocks);
  std::vector<int> nib(32 * kBlocks);
  std::vector<float> d(kBlocks), m(kBlocks);
  for (int b = 0; b < kBlocks; ++b) {
    d[b] = HalfToFloat(FloatToHalf(0.01f + static_cast<float>(rng.Uniform())));
    m[b] = HalfToFloat(FloatToHalf(-static_cast<float>(rng.Uniform())));
    PutHalf(&q40[18 * b], FloatToHalf(d[b]));
    PutHalf(&q41[20 * b], FloatToHalf(d[b]));
    PutHalf(&q41[20 * b + 2], FloatToHalf(m[b]));
    for (int j = 0; j < 32; ++j) nib[32 * b + j] = static_cast<int>(rng.Below(16));
    for (int j = 0; j < 16; ++j) {
      const uint8_t byte = static_cast<uint8_t>(nib[32 * b + j] | (nib[32 * b + j + 16] << 4));
      q40[18 * b + 2 + j] = byte;
      q41[20 * b + 4 + j] = byte;
    }
  }
  auto v0 = Dequantize(kQ4_0, q40, 32 * kBlocks);
  auto v1 = Dequantize(kQ4_1, q41, 32 * kBlocks);
  for (int i = 0; i < 32 * kBlocks; ++i) {
    const int b = i / 32;
    EXPECT_EQ(v0[i], static_cast<float>(nib[i] - 8) * d[b]) << i;
    EXPECT_EQ(v1[i], static_cast<float>(nib[i]) * d[b] + m[b]) << i;
  }
}

TEST(DequantizeTest, Q8_0QuantizerRoundTrip) {
  Random rng(5);
  std::vector<float> x(96);
  for (float& v : x) v = static_cast<float>(rng.Uniform() * 4 - 2);
  x[40] = 0;
  std::fill(x.begin() + 64, x.end(), 0.0f);  // an all-zero block has d = 0
  std::vector<uint8_t> q(34 * 3);
  QuantizeQ8_0(x.data(), 96, q.data());
  auto y = Dequantize(kQ8_0, q, 96);
  for (int i = 0; i < 96; ++i) {
    const uint8_t* block = &q[34 * (i / 32)];
    const float d = HalfToFloat(static_cast<uint16_t>(block[0] | (block[1] << 8)));
    EXPECT_EQ(y[i], static_cast<int8_t>(block[2 + i % 32]) * d) << i;
    EXPECT_NEAR(y[i], x[i], d * 0.5f + 2e-3f) << i;
  }
  EXPECT_EQ(y[40], 0.0f);
  EXPECT_EQ(y[70], 0.0f);
}

// --- k-quants -------------------------------------------------------------------------------

// Packs eight 6-bit scales and eight 6-bit mins into the 12 bytes of a Q4_K/Q5_K super-block:
// bytes 0..3 and 4..7 hold the low 6 bits of scales/mins 0..3, their top two bits carrying the
// high bits of scales/mins 4..7, whose low 4 bits sit in the nibbles of bytes 8..11.
void PackScales(const int* sc, const int* mn, uint8_t* out) {
  for (int s = 0; s < 4; ++s) {
    out[s] = static_cast<uint8_t>((sc[s] & 63) | ((sc[s + 4] >> 4) << 6));
    out[s + 4] = static_cast<uint8_t>((mn[s] & 63) | ((mn[s + 4] >> 4) << 6));
    out[s + 8] = static_cast<uint8_t>((sc[s + 4] & 15) | ((mn[s + 4] & 15) << 4));
  }
}

// Where element e (0..255) of a Q4_K/Q5_K super-block lives: sub-block, nibble byte, high half.
struct KPos {
  int sub, byte;
  bool high;
};
KPos Q4KPos(int e) {
  const int chunk = e / 64, within = e % 64;
  return {2 * chunk + within / 32, 32 * chunk + within % 32, within >= 32};
}

TEST(DequantizeTest, Q4_KFromLayout) {
  Random rng(3);
  std::vector<uint8_t> block(144, 0);
  const float d = HalfToFloat(FloatToHalf(0.037f)), dmin = HalfToFloat(FloatToHalf(0.011f));
  PutHalf(&block[0], FloatToHalf(d));
  PutHalf(&block[2], FloatToHalf(dmin));
  int sc[8], mn[8];
  for (int s = 0; s < 8; ++s) {
    sc[s] = static_cast<int>(rng.Below(64));
    mn[s] = static_cast<int>(rng.Below(64));
  }
  sc[7] = 63;  // exercise the top bits of the packing
  mn[4] = 63;
  PackScales(sc, mn, &block[4]);
  int q[256];
  for (int e = 0; e < 256; ++e) {
    q[e] = static_cast<int>(rng.Below(16));
    const KPos p = Q4KPos(e);
    block[16 + p.byte] |= static_cast<uint8_t>(p.high ? q[e] << 4 : q[e]);
  }
  auto v = Dequantize(kQ4_K, block, 256);
  for (int e = 0; e < 256; ++e) {
    const int s = Q4KPos(e).sub;
    const float scale = d * static_cast<float>(sc[s]);
    const float min = dmin * static_cast<float>(mn[s]);
    EXPECT_EQ(v[e], scale * static_cast<float>(q[e]) - min) << e;
  }
}

TEST(DequantizeTest, Q5_KFromLayout) {
  Random rng(4);
  std::vector<uint8_t> block(176, 0);
  const float d = HalfToFloat(FloatToHalf(0.021f)), dmin = HalfToFloat(FloatToHalf(0.5f));
  PutHalf(&block[0], FloatToHalf(d));
  PutHalf(&block[2], FloatToHalf(dmin));
  int sc[8], mn[8];
  for (int s = 0; s < 8; ++s) {
    sc[s] = static_cast<int>(rng.Below(64));
    mn[s] = static_cast<int>(rng.Below(64));
  }
  PackScales(sc, mn, &block[4]);
  int q[256];
  for (int e = 0; e < 256; ++e) {
    q[e] = static_cast<int>(rng.Below(32));
    const KPos p = Q4KPos(e);
    const int l = p.byte % 32;
    block[48 + p.byte] |= static_cast<uint8_t>(p.high ? (q[e] & 15) << 4 : q[e] & 15);
    if (q[e] & 16) block[16 + l] |= static_cast<uint8_t>(1 << p.sub);  // fifth bit
  }
  auto v = Dequantize(kQ5_K, block, 256);
  for (int e = 0; e < 256; ++e) {
    const int s = Q4KPos(e).sub;
    EXPECT_EQ(v[e], d * static_cast<float>(sc[s]) * static_cast<float>(q[e]) -
                        dmin * static_cast<float>(mn[s]))
        << e;
  }
}

TEST(DequantizeTest, Q6_KFromLayout) {
  Random rng(6);
  std::vector<uint8_t> block(210, 0);
  const float d = HalfToFloat(FloatToHalf(0.0042f));
  PutHalf(&block[208], FloatToHalf(d));
  int8_t scales[16];
  for (int i = 0; i < 16; ++i) {
    scales[i] = static_cast<int8_t>(static_cast<int>(rng.Below(256)) - 128);
    block[192 + i] = static_cast<uint8_t>(scales[i]);
  }
  int q[256];
  for (int e = 0; e < 256; ++e) {
    q[e] = static_cast<int>(rng.Below(64));  // stored value; the element is (q - 32)
    // Element e: half h = e / 128, quarter r = (e % 128) / 32, position l = e % 32. Quarters 0
    // and 2 use low-bit byte l, quarters 1 and 3 byte l + 32 (low nibble for quarters 0-1,
    // high for 2-3); high bits sit at bit 2r of high byte l.
    const int h = e / 128, r = (e % 128) / 32, l = e % 32;
    uint8_t& low = block[64 * h + l + (r % 2 == 1 ? 32 : 0)];
    low |= static_cast<uint8_t>(r < 2 ? (q[e] & 15) : (q[e] & 15) << 4);
    block[128 + 32 * h + l] |= static_cast<uint8_t>((q[e] >> 4) << (2 * r));
  }
  auto v = Dequantize(kQ6_K, block, 256);
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 16;  // one scale per 16 consecutive elements
    EXPECT_EQ(v[e], d * static_cast<float>(scales[sub]) * static_cast<float>(q[e] - 32)) << e;
  }
}

// A simple Q4_K quantizer (not ggml's search, just min/max per sub-block): dequantizing what it
// produces must come back close to the input, which only holds if reader and layout agree.
TEST(DequantizeTest, KQuantsReproduceQuantizedSignals) {
  Random rng(9);
  std::vector<float> x(512);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = static_cast<float>(std::sin(0.05 * i) + 0.3 * (rng.Uniform() - 0.5));
  }
  std::vector<uint8_t> blocks(2 * 144, 0);
  double max_step = 0;
  for (int b = 0; b < 2; ++b) {
    const float* xb = &x[256 * b];
    uint8_t* out = &blocks[144 * b];
    float sub_scale[8], sub_min[8];
    float max_scale = 0, max_min = 0;
    for (int s = 0; s < 8; ++s) {
      float lo = *std::min_element(xb + 32 * s, xb + 32 * s + 32);
      float hi = *std::max_element(xb + 32 * s, xb + 32 * s + 32);
      lo = std::min(lo, 0.0f);
      sub_scale[s] = (hi - lo) / 15;
      sub_min[s] = -lo;
      max_scale = std::max(max_scale, sub_scale[s]);
      max_min = std::max(max_min, sub_min[s]);
    }
    const float d = HalfToFloat(FloatToHalf(max_scale / 63));
    const float dmin = HalfToFloat(FloatToHalf(max_min / 63));
    PutHalf(out, FloatToHalf(d));
    PutHalf(out + 2, FloatToHalf(dmin));
    int sc[8], mn[8];
    for (int s = 0; s < 8; ++s) {
      sc[s] = std::clamp(static_cast<int>(std::ceil(sub_scale[s] / d)), 1, 63);
      mn[s] = std::clamp(static_cast<int>(std::lround(sub_min[s] / dmin)), 0, 63);
    }
    PackScales(sc, mn, out + 4);
    for (int e = 0; e < 256; ++e) {
      const KPos p = Q4KPos(e);
      const float step = d * sc[p.sub];
      max_step = std::max<double>(max_step, step);
      const int qv =
          std::clamp(static_cast<int>(std::lround((xb[e] + dmin * mn[p.sub]) / step)), 0, 15);
      out[16 + p.byte] |= static_cast<uint8_t>(p.high ? qv << 4 : qv);
    }
  }
  auto y = Dequantize(kQ4_K, blocks, 512);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], x[i], max_step * 0.75) << i;
}

TEST(DequantizeTest, ErrorsNameTheProblem) {
  std::vector<uint8_t> bytes(1024);
  std::vector<float> out(256);
  Status s = DequantizeRow(6, bytes.data(), 32, out.data());  // Q5_0: known, not supported
  EXPECT_THAT(s.message(), HasSubstr("Q5_0"));
  EXPECT_THAT(DequantizeRow(99, bytes.data(), 32, out.data()).message(), HasSubstr("type 99"));
  s = DequantizeRow(kQ4_K, bytes.data(), 100, out.data());
  EXPECT_THAT(s.message(), HasSubstr("100 elements of Q4_K"));
  EXPECT_FALSE(DequantizeRow(kF32, bytes.data(), -1, out.data()).ok());
  EXPECT_TRUE(DequantizeRow(kQ8_0, bytes.data(), 0, out.data()).ok());
}

TEST(DequantizeTest, BlockGeometry) {
  struct Want {
    uint32_t type;
    int64_t block;
    uint64_t bytes;
  };
  for (Want w : {Want{kF32, 1, 4}, Want{kF16, 1, 2}, Want{kBF16, 1, 2}, Want{kQ4_0, 32, 18},
                 Want{kQ4_1, 32, 20}, Want{kQ8_0, 32, 34}, Want{kQ4_K, 256, 144},
                 Want{kQ5_K, 256, 176}, Want{kQ6_K, 256, 210}}) {
    const GgmlTypeInfo* info = FindGgmlType(w.type);
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->block_size, w.block) << info->name;
    EXPECT_EQ(info->block_bytes, w.bytes) << info->name;
    EXPECT_TRUE(info->dequantizable);
    EXPECT_EQ(*GgmlBytes(w.type, 2 * w.block), 2 * w.bytes);
  }
  EXPECT_EQ(FindGgmlType(4), nullptr);
  EXPECT_EQ(FindGgmlType(31), nullptr);
}

}  // namespace
}  // namespace breakfix::engine
