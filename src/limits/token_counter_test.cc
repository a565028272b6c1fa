#include "limits/token_counter.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>

namespace trl {
namespace {

int64_t Count(std::string_view text) { return ApproxTokenCounter().CountText(text); }

int64_t Words(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::string word;
  int64_t n = 0;
  while (in >> word) ++n;
  return n;
}

TEST(ApproxTokenCounterTest, EmptyIsZeroAndAnythingElseCounts) {
  EXPECT_EQ(Count(""), 0);
  EXPECT_EQ(Count("a"), 1);
  EXPECT_EQ(Count(" "), 1);
  EXPECT_EQ(Count("\n"), 1);
}

TEST(ApproxTokenCounterTest, ShortEnglish) {
  // cl100k: "Hello" "," " world" "!" = 4.
  EXPECT_EQ(Count("Hello, world!"), 4);
  // 9 words, 43 bytes: bytes/4 (11) dominates; cl100k says 9, Llama 2 about 10.
  EXPECT_EQ(Count("The quick brown fox jumps over the lazy dog"), 11);
}

TEST(ApproxTokenCounterTest, EnglishProseErrsSlightlyHigh) {
  const std::string text =
      "Rate limits are restrictions that an API imposes on the number of times a user or "
      "client can access the server within a specified period of time. They help protect "
      "against abuse or misuse of the API, ensure that everyone has fair access, and manage "
      "the aggregate load on the infrastructure.";
  int64_t words = Words(text);
  int64_t tokens = Count(text);
  // Real tokenizers give about 1.2 (cl100k) to 1.4 (Llama 2) tokens per word for such prose.
  EXPECT_GE(tokens, words * 12 / 10);
  EXPECT_LE(tokens, words * 16 / 10);
}

TEST(ApproxTokenCounterTest, DigitsCountOneEach) {
  EXPECT_EQ(Count("1234567890"), 10);
  EXPECT_EQ(Count("pi is 3.14159"), 1 + 1 + 1 + 1 + 5);  // pi, is, 3, ".", 14159
}

TEST(ApproxTokenCounterTest, PunctuationAndCode) {
  EXPECT_EQ(Count("..."), 2);
  EXPECT_EQ(Count("f(x);"), 1 + 1 + 1 + 1);  // f ( x );
  // Newlines and indentation cost, a single space before a word does not:
  // if, x, ":", "\n    " (5 whitespace: 2), return (6 letters: 2), y.
  EXPECT_EQ(Count("if x:\n    return y"), 1 + 1 + 1 + 2 + 2 + 1);
  EXPECT_EQ(Count("a  b"), 1 + 1 + 1);  // the second space costs
  EXPECT_EQ(Count("a\n\nb"), 1 + 1 + 1);
}

TEST(ApproxTokenCounterTest, NonAsciiCountsMore) {
  // 4 CJK characters (12 bytes): 6, where bytes/4 would say 3.
  EXPECT_EQ(Count("你好世界"), 6);
  // Cyrillic letters weigh 2: "привет" = 12 -> 3 (bytes/4 also 3).
  EXPECT_EQ(Count("привет"), 3);
  EXPECT_EQ(Count("café"), 2);  // weight 5 -> 1; bytes/4 -> 2
  // 4-byte characters and invalid UTF-8 cost a token per byte (Llama's byte fallback).
  EXPECT_EQ(Count("😀"), 4);
  EXPECT_EQ(Count("😀😀😀"), 12);
  EXPECT_EQ(Count(std::string("\xff\xfe\xfd", 3)), 3);
  EXPECT_EQ(Count(std::string("\x80\x80", 2)), 2);  // continuation bytes without a lead
}

TEST(ApproxTokenCounterTest, NeverBelowTheWordCount) {
  // mock-llm charges one token per whitespace-separated word (+3 per message); the estimate
  // (+4 per message, +3 per request) must cover it, so settlement refunds rather than owes.
  const char* texts[] = {
      "a b c d e f g h i j",
      ", . ; : ! ? - ( ) [ ]",
      "1 2 3 4 5 6 7 8 9 0",
      "I a o e u",
      "x\ny\nz\tw",
      "日 本 語 テ キ ス ト",
  };
  for (const char* text : texts) EXPECT_GE(Count(text), Words(text)) << text;
}

TEST(ApproxTokenCounterTest, OverheadsFollowOpenAiCookbook) {
  ApproxTokenCounter counter;
  EXPECT_EQ(counter.PerMessageOverhead(), 4);
  EXPECT_EQ(counter.PerRequestOverhead(), 3);
}

TEST(MakeTokenCounterTest, ApproxAndFallback) {
  std::string note;
  auto approx = MakeTokenCounter("approx", &note);
  ASSERT_NE(approx, nullptr);
  EXPECT_TRUE(note.empty());
  EXPECT_EQ(approx->CountText("Hello, world!"), 4);
  auto other = MakeTokenCounter("/models/llama/tokenizer.json", &note);
  ASSERT_NE(other, nullptr);
  EXPECT_NE(note.find("not supported"), std::string::npos);
  EXPECT_NE(MakeTokenCounter("approx"), nullptr);
}

}  // namespace
}  // namespace trl
