#include "engine/dequantize.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "engine/gguf.h"

namespace breakfix::engine {
namespace {

// F32 tensors are copied straight out of little-endian files.
static_assert(std::endian::native == std::endian::little, "breakfix assumes a little-endian host");

constexpr int64_t kQK = 32;    // elements per block of the classic quants
constexpr int64_t kQKK = 256;  // elements per super-block of the k-quants

// Every type ggml defines today, with its block geometry. Numbers 4 and 5 (Q4_2, Q4_3) and
// 31..33 (the repacked Q4_0 variants) were retired by ggml and are rejected.
constexpr GgmlTypeInfo kTypes[] = {
    {0, "F32", 1, 4, true},           {1, "F16", 1, 2, true},
    {2, "Q4_0", kQK, 18, true},       {3, "Q4_1", kQK, 20, true},
    {6, "Q5_0", kQK, 22, false},      {7, "Q5_1", kQK, 24, false},
    {8, "Q8_0", kQK, 34, true},       {9, "Q8_1", kQK, 36, false},
    {10, "Q2_K", kQKK, 84, false},    {11, "Q3_K", kQKK, 110, false},
    {12, "Q4_K", kQKK, 144, true},    {13, "Q5_K", kQKK, 176, true},
    {14, "Q6_K", kQKK, 210, true},    {15, "Q8_K", kQKK, 292, false},
    {16, "IQ2_XXS", kQKK, 66, false}, {17, "IQ2_XS", kQKK, 74, false},
    {18, "IQ3_XXS", kQKK, 98, false}, {19, "IQ1_S", kQKK, 50, false},
    {20, "IQ4_NL", kQK, 18, false},   {21, "IQ3_S", kQKK, 110, false},
    {22, "IQ2_S", kQKK, 82, false},   {23, "IQ4_XS", kQKK, 136, false},
    {24, "I8", 1, 1, false},          {25, "I16", 1, 2, false},
    {26, "I32", 1, 4, false},         {27, "I64", 1, 8, false},
    {28, "F64", 1, 8, false},         {29, "IQ1_M", kQKK, 56, false},
    {30, "BF16", 1, 2, true},         {34, "TQ1_0", kQKK, 54, false},
    {35, "TQ2_0", kQKK, 66, false},   {39, "MXFP4", kQK, 17, false},
};

inline uint16_t LoadU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline float LoadHalf(const uint8_t* p) { return HalfToFloat(LoadU16(p)); }

void DequantizeF32(const uint8_t* src, int64_t n, float* dst) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void DequantizeF16(const uint8_t* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = LoadHalf(src + 2 * i);
}

void DequantizeBF16(const uint8_t* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = Bf16ToFloat(LoadU16(src + 2 * i));
}

void DequantizeQ4_0(const uint8_t* src, int64_t n, float* dst) {
  for (int64_t b = 0; b < n / kQK; ++b, src += 18, dst += kQK) {
    const float d = LoadHalf(src);
    const uint8_t* nibbles = src + 2;
    for (int j = 0; j < 16; ++j) {
      const int lo = (nibbles[j] & 0x0F) - 8;
      const int hi = (nibbles[j] >> 4) - 8;
      dst[j] = lo * d;
      dst[j + 16] = hi * d;
    }
  }
}

void DequantizeQ4_1(const uint8_t* src, int64_t n, float* dst) {
  for (int64_t b = 0; b < n / kQK; ++b, src += 20, dst += kQK) {
    const float d = LoadHalf(src);
    const float m = LoadHalf(src + 2);
    const uint8_t* nibbles = src + 4;
    for (int j = 0; j < 16; ++j) {
      const int lo = nibbles[j] & 0x0F;
      const int hi = nibbles[j] >> 4;
      dst[j] = lo * d + m;
      dst[j + 16] = hi * d + m;
    }
  }
}

void DequantizeQ8_0(const uint8_t* src, int64_t n, float* dst) {
  for (int64_t b = 0; b < n / kQK; ++b, src += 34, dst += kQK) {
    const float d = LoadHalf(src);
    for (int j = 0; j < 32; ++j) dst[j] = static_cast<int8_t>(src[2 + j]) * d;
  }
}

// Sub-block `s` (0..7) of a Q4_K/Q5_K super-block: its 6-bit scale and 6-bit min, unpacked from
// the 12 packed bytes. Sub-blocks 0..3 keep scale and min in the low 6 bits of bytes s and s+4;
// sub-blocks 4..7 keep their low 4 bits in the nibbles of byte s+4 and their top 2 bits in the
// spare top bits of bytes s-4 (scale) and s (min).
inline void UnpackScaleMin(const uint8_t* packed, int s, int* scale, int* min) {
  if (s < 4) {
    *scale = packed[s] & 0x3F;
    *min = packed[s + 4] & 0x3F;
  } else {
    *scale = (packed[s + 4] & 0x0F) | ((packed[s - 4] >> 6) << 4);
    *min = (packed[s + 4] >> 4) | ((packed[s] >> 6) << 4);
  }
}

void DequantizeQ4_K(const uint8_t* src, int64_t n, float* dst) {
  for (int64_t b = 0; b < n / kQKK; ++b, src += 144) {
    const float d = LoadHalf(src);
    const float dmin = LoadHalf(src + 2);
    const uint8_t* packed = src + 4;
    const uint8_t* nibbles = src + 16;
    for (int chunk = 0; chunk < 4; ++chunk, nibbles += 32) {
      int scale, min;
      UnpackScaleMin(packed, 2 * chunk, &scale, &min);
      const float d_lo = d * scale, m_lo = dmin * min;
      UnpackScaleMin(packed, 2 * chunk + 1, &scale, &min);
      const float d_hi = d * scale, m_hi = dmin * min;
      for (int l = 0; l < 32; ++l) *dst++ = d_lo * (nibbles[l] & 0x0F) - m_lo;
      for (int l = 0; l < 32; ++l) *dst++ = d_hi * (nibbles[l] >> 4) - m_hi;
    }
  }
}

void DequantizeQ5_K(const uint8_t* src, int64_t n, float* dst) {
  for (int64_t b = 0; b < n / kQKK; ++b, src += 176) {
    const float d = LoadHalf(src);
    const float dmin = LoadHalf(src + 2);
    const uint8_t* packed = src + 4;
    const uint8_t* fifth = src + 16;
    const uint8_t* nibbles = src + 48;
    for (int chunk = 0; chunk < 4; ++chunk, nibbles += 32) {
      const uint8_t lo_bit = static_cast<uint8_t>(1u << (2 * chunk));
      const uint8_t hi_bit = static_cast<uint8_t>(1u << (2 * chunk + 1));
      int scale, min;
      UnpackScaleMin(packed, 2 * chunk, &scale, &min);
      const float d_lo = d * scale, m_lo = dmin * min;
      UnpackScaleMin(packed, 2 * chunk + 1, &scale, &min);
      const float d_hi = d * scale, m_hi = dmin * min;
      for (int l = 0; l < 32; ++l) {
        *dst++ = d_lo * ((nibbles[l] & 0x0F) + ((fifth[l] & lo_bit) ? 16 : 0)) - m_lo;
      }
      for (int l = 0; l < 32; ++l) {
        *dst++ = d_hi * ((nibbles[l] >> 4) + ((fifth[l] & hi_bit) ? 16 : 0)) - m_hi;
      }
    }
  }
}

void DequantizeQ6_K(const uint8_t* src, int64_t n, float* dst) {
  for (int64_t b = 0; b < n / kQKK; ++b, src += 210) {
    const float d = LoadHalf(src + 208);
    // Two halves of 128 elements; each reads 64 low-bit bytes, 32 high-bit bytes, 8 scales.
    for (int half = 0; half < 2; ++half, dst += 128) {
      const uint8_t* low = src + 64 * half;
      const uint8_t* high = src + 128 + 32 * half;
      const int8_t* scales = reinterpret_cast<const int8_t*>(src + 192 + 8 * half);
      for (int l = 0; l < 32; ++l) {
        const int s = l / 16;
        const int q0 = ((low[l] & 0x0F) | (((high[l] >> 0) & 3) << 4)) - 32;
        const int q1 = ((low[l + 32] & 0x0F) | (((high[l] >> 2) & 3) << 4)) - 32;
        const int q2 = ((low[l] >> 4) | (((high[l] >> 4) & 3) << 4)) - 32;
        const int q3 = ((low[l + 32] >> 4) | (((high[l] >> 6) & 3) << 4)) - 32;
        dst[l] = d * scales[s] * q0;
        dst[l + 32] = d * scales[s + 2] * q1;
        dst[l + 64] = d * scales[s + 4] * q2;
        dst[l + 96] = d * scales[s + 6] * q3;
      }
    }
  }
}

}  // namespace

const GgmlTypeInfo* FindGgmlType(uint32_t type) {
  for (const GgmlTypeInfo& info : kTypes) {
    if (info.type == type) return &info;
  }
  return nullptr;
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exponent = (h >> 10) & 0x1F;
  const uint32_t mantissa = h & 0x3FF;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in binary32.
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  uint32_t bits;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);  // infinity, or NaN with its payload
  } else {
    bits = sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13);
  }
  return std::bit_cast<float>(bits);
}

uint16_t FloatToHalf(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) {  // NaN: keep it quiet and keep the top payload bits
    return static_cast<uint16_t>(sign | 0x7E00 | ((magnitude >> 13) & 0x3FF));
  }
  // 65520 is halfway between the largest half (65504) and 2^16; ties go to the even
  // neighbour, which is infinity.
  if (magnitude >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00);
  if (magnitude < 0x38800000u) {                // below 2^-14: a half subnormal or zero
    if (magnitude <= 0x33000000u) return sign;  // at most 2^-25: rounds to (even) zero
    const uint32_t exponent = magnitude >> 23;
    const uint32_t significand = (magnitude & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126 - exponent;  // to units of 2^-24; between 14 and 24
    uint32_t result = significand >> shift;
    const uint32_t rest = significand & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (result & 1))) ++result;
    return static_cast<uint16_t>(sign | result);
  }
  uint32_t result = (magnitude >> 13) - ((127 - 15) << 10);
  const uint32_t rest = magnitude & 0x1FFF;
  if (rest > 0x1000 || (rest == 0x1000 && (result & 1))) ++result;  // may carry into exponent
  return static_cast<uint16_t>(sign | result);
}

float Bf16ToFloat(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

uint16_t FloatToBf16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040);
  const uint32_t rounding = 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

void QuantizeQ8_0(const float* src, int64_t n, uint8_t* dst) {
  for (int64_t b = 0; b < n / kQK; ++b, src += kQK, dst += 34) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(src[j]));
    const float d = amax / 127.0f;
    const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t half = FloatToHalf(d);
    dst[0] = static_cast<uint8_t>(half & 0xFF);
    dst[1] = static_cast<uint8_t>(half >> 8);
    for (int j = 0; j < 32; ++j) {
      const float q = std::round(src[j] * inverse);
      dst[2 + j] =
          static_cast<uint8_t>(static_cast<int8_t>(std::fmax(-127.0f, std::fmin(127.0f, q))));
    }
  }
}

std::string GgmlTypeName(uint32_t type) {
  const GgmlTypeInfo* info = FindGgmlType(type);
  return info != nullptr ? info->name : "type " + std::to_string(type);
}

Result<uint64_t> GgmlBytes(uint32_t type, int64_t n) {
  const GgmlTypeInfo* info = FindGgmlType(type);
  if (info == nullptr) return Status::InvalidArgument("unknown ggml type " + std::to_string(type));
  if (n < 0) return Status::InvalidArgument("negative element count " + std::to_string(n));
  if (n % info->block_size != 0) {
    return Status::InvalidArgument(std::to_string(n) + " elements of " + info->name +
                                   " are not a whole number of " +
                                   std::to_string(info->block_size) + "-element blocks");
  }
  const uint64_t blocks = static_cast<uint64_t>(n / info->block_size);
  if (blocks > std::numeric_limits<uint64_t>::max() / info->block_bytes) {
    return Status::InvalidArgument(std::to_string(n) + " elements of " + info->name +
                                   " overflow a 64-bit byte count");
  }
  return blocks * info->block_bytes;
}

Status DequantizeRow(uint32_t type, const uint8_t* src, int64_t n, float* dst) {
  const GgmlTypeInfo* info = FindGgmlType(type);
  if (info == nullptr || !info->dequantizable) {
    return Status::InvalidArgument("cannot dequantize ggml type " + GgmlTypeName(type) +
                                   " (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, "
                                   "Q6_K)");
  }
  auto bytes = GgmlBytes(type, n);
  if (!bytes.ok()) return bytes.status();
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kF32:
      DequantizeF32(src, n, dst);
      break;
    case GgmlType::kF16:
      DequantizeF16(src, n, dst);
      break;
    case GgmlType::kBF16:
      DequantizeBF16(src, n, dst);
      break;
    case GgmlType::kQ4_0:
      DequantizeQ4_0(src, n, dst);
      break;
    case GgmlType::kQ4_1:
      DequantizeQ4_1(src, n, dst);
      break;
    case GgmlType::kQ8_0:
      DequantizeQ8_0(src, n, dst);
      break;
    case GgmlType::kQ4_K:
      DequantizeQ4_K(src, n, dst);
      break;
    case GgmlType::kQ5_K:
      DequantizeQ5_K(src, n, dst);
      break;
    case GgmlType::kQ6_K:
      DequantizeQ6_K(src, n, dst);
      break;
  }
  return Status::OK();
}

}  // namespace breakfix::engine
