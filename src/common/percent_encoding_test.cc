#include "common/percent_encoding.h"

#include <gtest/gtest.h>

namespace trl {
namespace {

TEST(PercentEncodingTest, EncodesThePercentSignAndTheReservedOnly) {
  std::string out = "k:";
  AppendPercentEncoded("x|{y}%z", "|{}", out);
  EXPECT_EQ(out, "k:x%7C%7By%7D%25z");
  std::string plain;
  AppendPercentEncoded("team-a", "|{}", plain);
  EXPECT_EQ(plain, "team-a");
}

TEST(PercentEncodingTest, DecodesWhatItEncodes) {
  const std::string text = "a%b{c}|\x01\xff";
  std::string encoded;
  AppendPercentEncoded(text, std::string_view("{}|\x01\xff", 5), encoded);
  EXPECT_EQ(encoded, "a%25b%7Bc%7D%7C%01%FF");
  EXPECT_EQ(PercentDecode(encoded), text);
  EXPECT_EQ(PercentDecode("s%40cret%3a"), "s@cret:");
}

TEST(PercentEncodingTest, ATruncatedOrNonHexEscapeIsAnError) {
  EXPECT_FALSE(PercentDecode("%zz"));
  EXPECT_FALSE(PercentDecode("abc%4"));
  EXPECT_FALSE(PercentDecode("%"));
}

}  // namespace
}  // namespace trl
