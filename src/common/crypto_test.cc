#include "common/crypto.h"

#include <gtest/gtest.h>

namespace trl {
namespace {

TEST(Crypto, Sha256OfKnownVector) {
  EXPECT_EQ(ToHex(Sha256Of("test")),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
}

TEST(Crypto, HexRoundTripAndRejects) {
  auto d = Sha256Of("abc");
  EXPECT_EQ(Sha256FromHex(ToHex(d)), d);
  EXPECT_FALSE(Sha256FromHex("abc").has_value());
  EXPECT_FALSE(Sha256FromHex(std::string(64, 'g')).has_value());
}

TEST(Crypto, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secre"));
}

TEST(Crypto, NewSecretKeyIsBase62WithEnoughEntropy) {
  std::string k = NewSecretKey();
  ASSERT_EQ(k.substr(0, 3), "sk-");
  EXPECT_GE(k.size(), 3u + 43u);  // 32 bytes = 256 bits >= 43 base62 digits
  for (char c : k.substr(3)) EXPECT_TRUE(isalnum(static_cast<unsigned char>(c)));
  EXPECT_NE(NewSecretKey(), NewSecretKey());
}

TEST(Crypto, RandomHexIsLowercaseHexOfTheBytesAsked) {
  for (int bytes : {1, 16, 100}) {
    std::string h = RandomHex(bytes);
    ASSERT_EQ(h.size(), 2u * bytes);
    for (char c : h) EXPECT_TRUE(isdigit(c) || (c >= 'a' && c <= 'f')) << h;
  }
  EXPECT_NE(RandomHex(16), RandomHex(16));
}

}  // namespace
}  // namespace trl
