// ggml tensor types: block sizes, byte sizes, half-precision conversions and the reference
// (scalar) dequantizers behind DequantizeRow (declared in engine/gguf.h).
//
// The arithmetic follows ggml's reference definitions operation for operation, so the floats
// produced here are bit-identical to ggml's. Block layouts (all little-endian, fp16 = IEEE half):
//   Q4_0 (32 elements, 18 bytes): fp16 d, 16 bytes of nibbles. Byte j holds element j in its low
//        nibble and element j+16 in its high nibble; value = (nibble - 8) * d.
//   Q4_1 (32, 20): fp16 d, fp16 m, 16 bytes of nibbles as Q4_0; value = nibble * d + m.
//   Q8_0 (32, 34): fp16 d, 32 int8; value = q * d.
//   Q4_K (256, 144): fp16 d, fp16 dmin, 12 bytes packing eight 6-bit scales and eight 6-bit
//        mins, 128 bytes of nibbles. Elements come in four chunks of 64; chunk c reads bytes
//        32c..32c+31, low nibbles (sub-block 2c) then high nibbles (sub-block 2c+1);
//        value = (d * scale) * nibble - dmin * min.
//   Q5_K (256, 176): as Q4_K plus 32 bytes of fifth bits before the nibbles: element l of
//        sub-block s adds 16 when bit s of high[l] is set.
//   Q6_K (256, 210): 128 bytes low 4 bits, 64 bytes high 2 bits, 16 int8 scales (one per 16
//        elements), fp16 d; value = d * scale * (q - 32).
//
// Everything here is a pure function; thread-safe.
#ifndef BREAKFIX_ENGINE_DEQUANTIZE_H_
#define BREAKFIX_ENGINE_DEQUANTIZE_H_

#include <cstdint>

namespace breakfix::engine {

// What the GGUF reader needs to know about a ggml type to find its bytes.
struct GgmlTypeInfo {
  uint32_t type;         // ggml type number
  const char* name;      // "F32", "Q4_K", ...
  int64_t block_size;    // elements per block (1 for plain types)
  uint64_t block_bytes;  // bytes per block
  bool dequantizable;    // DequantizeRow supports it
};

// The entry for a ggml type number, or nullptr for a number ggml does not define (or that it
// has retired). Types breakfix cannot dequantize are still listed so that files holding them
// can be opened and their tensors located.
const GgmlTypeInfo* FindGgmlType(uint32_t type);

// IEEE binary16 <-> binary32. HalfToFloat is exact (subnormals, infinities and NaN payloads
// kept). FloatToHalf rounds to nearest, ties to even; too large becomes infinity, NaN stays NaN.
float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);

// bfloat16 <-> binary32. Bf16ToFloat is exact; FloatToBf16 rounds to nearest even and keeps NaN
// a NaN (quiet).
float Bf16ToFloat(uint16_t b);
uint16_t FloatToBf16(float f);

// Quantizes `n` floats (a multiple of 32) into Q8_0 blocks at `dst`
// (n / 32 * 34 bytes): d = max|x| / 127 stored as fp16, q = round(x / d).
void QuantizeQ8_0(const float* src, int64_t n, uint8_t* dst);

}  // namespace breakfix::engine

#endif  // BREAKFIX_ENGINE_DEQUANTIZE_H_
