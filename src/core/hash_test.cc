#include "breakfix/hash.h"

#include <gtest/gtest.h>

#include "breakfix/env.h"

namespace breakfix {
namespace {

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string million(1000000, 'a');
  EXPECT_EQ(Sha256Hex(million), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, IncrementalEqualsOneShot) {
  std::string text(1000, 'x');
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>('a' + i % 26);
  for (size_t split : {0u, 1u, 63u, 64u, 65u, 500u}) {
    Sha256 h;
    h.Update(std::string_view(text).substr(0, split));
    h.Update(std::string_view(text).substr(split));
    EXPECT_EQ(h.HexDigest(), Sha256Hex(text)) << split;
  }
}

TEST(KeyBuilderTest, FieldBoundariesMatter) {
  EXPECT_NE(KeyBuilder().Add("ab").Add("c").Hex(), KeyBuilder().Add("a").Add("bc").Hex());
  EXPECT_EQ(KeyBuilder().Add("x").Add(int64_t{3}).Hex(),
            KeyBuilder().Add("x").Add(int64_t{3}).Hex());
}

TEST(RandomTest, DeterministicAndForkIndependentOfPosition) {
  Random a(42), b(42);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.Next(), b.Next());
  Random c(42);
  Random f1 = c.Fork(7);
  c.Next();
  Random f2 = c.Fork(7);
  EXPECT_EQ(f1.Next(), f2.Next());
  EXPECT_NE(Random(42).Fork(1).Next(), Random(42).Fork(2).Next());
  Random u(1);
  for (int i = 0; i < 1000; ++i) {
    double x = u.Uniform();
    EXPECT_GE(x, 0.0);
    EXPECT_LT(x, 1.0);
    EXPECT_LT(u.Below(10), 10u);
  }
}

}  // namespace
}  // namespace breakfix
