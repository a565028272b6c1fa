#include "tokenizer/byte_level.h"

#include <gtest/gtest.h>

namespace trl::tok {
namespace {

TEST(ByteLevelTest, PrintableBytesStandForThemselvesTheOthersFromU0100On) {
  EXPECT_EQ(ByteLevelCharacter('a'), "a");
  EXPECT_EQ(ByteLevelCharacter(0xA1), "\xC2\xA1");  // 161: itself
  EXPECT_EQ(ByteLevelCharacter(0), "\xC4\x80");     // U+0100
  EXPECT_EQ(ByteLevelCharacter(' '), "\xC4\xA0");   // U+0120 "Ġ", the 33rd
  EXPECT_EQ(ByteLevelCharacter('\n'), "\xC4\x8A");  // U+010A "Ċ"
  EXPECT_EQ(ByteLevelCharacter(0x7F), "\xC4\xA1");  // U+0121, after the 33 control bytes
  EXPECT_EQ(ByteLevelCharacter(0xAD), "\xC5\x83");  // U+0143, the last
}

TEST(ByteLevelTest, EveryByteRoundTripsAndOtherCharactersAreRefused) {
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  EXPECT_EQ(FromByteLevel(ToByteLevel(all)), all);
  EXPECT_EQ(FromByteLevel("\xC4\xA0hello"), " hello");
  EXPECT_EQ(FromByteLevel("\xC5\x84"), std::nullopt);      // U+0144: past the alphabet
  EXPECT_EQ(FromByteLevel("\xE4\xB8\xAD"), std::nullopt);  // a 3-byte character
  EXPECT_EQ(FromByteLevel("\xC4"), std::nullopt);          // cut short
}

}  // namespace
}  // namespace trl::tok
