#include "tokenizer/regex_split.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace trl::tok {
namespace {

constexpr std::string_view kCl100k =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::vector<std::string> Pieces(const RegexSplit& split, std::string_view text) {
  std::vector<std::string> out;
  split.Split(text, [&](std::string_view p) { out.emplace_back(p); });
  return out;
}

TEST(RegexSplitTest, SplitsAsCl100kDoes) {
  const RegexSplit split(kCl100k);
  EXPECT_EQ(Pieces(split, "Hello world's 12345  \n\n  x!!"),
            (std::vector<std::string>{"Hello", " world", "'s", " ", "123", "45", "  \n\n", " ",
                                      " x", "!!"}));
  EXPECT_EQ(Pieces(split, "I'LL"), (std::vector<std::string>{"I", "'LL"}));
  EXPECT_EQ(Pieces(split, ""), std::vector<std::string>{});
}

// White_Space, not PCRE2's \s: U+180E is no space, U+0085 is one.
TEST(RegexSplitTest, WhiteSpaceIsUnicodes) {
  const RegexSplit split(R"(\s+|\S+)");
  EXPECT_EQ(Pieces(split,
                   "a\xE1\xA0\x8E"
                   "b"),
            (std::vector<std::string>{"a\xE1\xA0\x8E"
                                      "b"}));
  EXPECT_EQ(Pieces(split,
                   "a\xC2\x85"
                   "b"),
            (std::vector<std::string>{"a", "\xC2\x85", "b"}));
  EXPECT_EQ(Pieces(split,
                   "a\xEF\xBB\xBF"
                   "b"),
            (std::vector<std::string>{"a\xEF\xBB\xBF"
                                      "b"}));
}

TEST(RegexSplitTest, TextBetweenMatchesIsAPieceToo) {
  const RegexSplit split("[0-9]+");
  EXPECT_EQ(Pieces(split, "ab12cd3"), (std::vector<std::string>{"ab", "12", "cd", "3"}));
}

TEST(RegexSplitTest, RewritesOnlyEscapesOfS) {
  EXPECT_EQ(
      RegexSplit::WithWhiteSpace(R"(\\s[^\s]\S)"),
      std::string(R"(\\s[^)") +
          R"(\x{9}-\x{D}\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}])" +
          R"([^\x{9}-\x{D}\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}])");
  EXPECT_THROW(RegexSplit("(unclosed"), std::invalid_argument);
}

}  // namespace
}  // namespace trl::tok
