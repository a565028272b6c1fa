// The packed records' integers: widths, signs, byte order, and reading past the end.
#include "redis_store/packed.h"

#include <gtest/gtest.h>

namespace trl::redis {
namespace {

TEST(PackedTest, IntegersRoundTripLittleEndian) {
  std::string out;
  PutInt(out, 0x0102, 2);
  PutInt(out, -2, 8);
  PutInt(out, 1, 1);
  PutInt(out, -5, 4);
  PutInt(out, (int64_t{1} << 53) + 1, 8);
  ASSERT_EQ(out.size(), 23u);
  EXPECT_EQ(out.substr(0, 2), std::string("\x02\x01", 2));
  EXPECT_EQ(out.substr(2, 8), std::string("\xFE\xFF\xFF\xFF\xFF\xFF\xFF\xFF", 8));
  PackedReader in(out);
  EXPECT_EQ(in.Int(2), 0x0102);
  EXPECT_EQ(in.Int(8), -2);
  EXPECT_EQ(in.Int(1), 1);
  EXPECT_EQ(in.Int(4), -5);
  EXPECT_EQ(in.Int(8), (int64_t{1} << 53) + 1);
  EXPECT_TRUE(in.AtEnd());
}

TEST(PackedTest, ReadingPastTheEndFailsForGood) {
  std::string out;
  PutInt(out, 7, 4);
  PackedReader in(out);
  EXPECT_EQ(in.Int(8), 0);
  EXPECT_FALSE(in.Ok());
  EXPECT_EQ(in.Int(4), 0);  // the 4 bytes are there, but the reader has failed
  EXPECT_FALSE(in.AtEnd());
}

}  // namespace
}  // namespace trl::redis
