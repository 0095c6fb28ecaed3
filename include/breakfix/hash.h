// Content hashing. Unit-of-work keys, suite and rubric versions are SHA-256 digests of a
// canonical byte string, printed as lowercase hex.
#ifndef BREAKFIX_HASH_H_
#define BREAKFIX_HASH_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace breakfix {

// Incremental SHA-256 (FIPS 180-4).
class Sha256 {
 public:
  Sha256();
  void Update(std::string_view data);
  // Finishes and returns the 32-byte digest; the object must not be updated afterwards.
  std::array<uint8_t, 32> Digest();
  // Finishes and returns the digest as 64 lowercase hex characters.
  std::string HexDigest();

 private:
  void Block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_len_ = 0;
};

std::string Sha256Hex(std::string_view data);

// Builds an unambiguous canonical string from fields: each field is written as its length, a
// colon and its bytes, so ("ab","c") and ("a","bc") never collide. Used to key units of work.
class KeyBuilder {
 public:
  KeyBuilder& Add(std::string_view field);
  KeyBuilder& Add(int64_t value);
  KeyBuilder& Add(double value);
  // The SHA-256 hex of everything added.
  std::string Hex() const;

 private:
  std::string buf_;
};

}  // namespace breakfix

#endif  // BREAKFIX_HASH_H_
