#include "tokenizer/utf8.h"

#include <gtest/gtest.h>

namespace trl::tok {
namespace {

TEST(Utf8Test, ValidTextIsKept) {
  const std::string text = "h\xC3\xA9llo \xE4\xB8\xAD \xF0\x9F\x98\x80";
  EXPECT_TRUE(IsValidUtf8(text));
  EXPECT_EQ(ReplaceInvalidUtf8(text), text);
}

// Unicode's "maximal subpart" practice, which the WHATWG decoder follows: the examples of
// Unicode 15 section 3.9, table 3-8 and around.
TEST(Utf8Test, EachMaximalInvalidSubpartIsOneReplacementCharacter) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(ReplaceInvalidUtf8("\x80"), r);
  EXPECT_EQ(ReplaceInvalidUtf8("a\xC0\xAF"
                               "b"),
            "a" + r + r + "b");                              // overlong: two
  EXPECT_EQ(ReplaceInvalidUtf8("\xED\xA0\x80"), r + r + r);  // a surrogate: three
  EXPECT_EQ(ReplaceInvalidUtf8("\xE4\xB8"), r);              // truncated: one
  EXPECT_EQ(ReplaceInvalidUtf8("\xE4\xB8z"), r + "z");
  EXPECT_EQ(ReplaceInvalidUtf8("\xF0\x9F\x98"), r);
  EXPECT_EQ(ReplaceInvalidUtf8("\xF4\x90\x80\x80"), r + r + r + r);  // past U+10FFFF
  EXPECT_EQ(ReplaceInvalidUtf8("\xF5\xFF"), r + r);
  EXPECT_EQ(ReplaceInvalidUtf8("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + r + r + r + "b" + r + "c" + r + r + "d");
  EXPECT_FALSE(IsValidUtf8("\xC3"));
}

}  // namespace
}  // namespace trl::tok
