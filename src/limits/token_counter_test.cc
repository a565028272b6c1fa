#include "limits/token_counter.h"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <sstream>
#include <stdexcept>
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

// The rule of token_counter.h written plainly, one byte at a time: what CountText must equal.
int64_t Reference(std::string_view text) {
  auto class_of = [](unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= 0xC2 && c <= 0xDF)) return 0;
    if (c >= '0' && c <= '9') return 1;
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v') return 3;
    if (c >= 0x80 && c <= 0xBF) return 6;  // continuation
    if (c >= 0xE0 && c <= 0xEF) return 4;
    if (c >= 0x80) return 5;
    return 2;
  };
  constexpr int kPeriod[] = {5, 1, 2, 4, 2, 1};
  int64_t tokens = 0;
  int run = -1, sequence = 5;
  int64_t left = 0;  // bytes before the run's next token
  for (unsigned char c : text) {
    int raw = class_of(c);
    int k = raw == 6 ? sequence : raw;
    if (raw != 6) sequence = c < 0x80 ? 5 : raw;
    if (k != run) {
      run = k;
      left = (k == 3 && c == ' ') ? 1 : 0;
    }
    if (left == 0) {
      ++tokens;
      left = kPeriod[k];
    }
    --left;
  }
  return std::max<int64_t>(tokens, (static_cast<int64_t>(text.size()) + 3) / 4);
}

TEST(ApproxTokenCounterTest, EqualsThePlainRuleOnAnyBytes) {
  // Pieces that make every kind of run and run boundary, also across the 64-byte blocks the
  // counter reads ASCII in (and between those and blocks it reads byte by byte): words,
  // numbers, punctuation, whitespace of each kind, 2-, 3- and 4-byte characters, stray
  // continuation bytes and bytes that never occur in UTF-8.
  const std::array<std::string_view, 20> pieces = {"a",
                                                   "Hello",
                                                   "supercalifragilistic",
                                                   "0",
                                                   "2024",
                                                   ",",
                                                   "();",
                                                   " ",
                                                   "  ",
                                                   "\n",
                                                   "\t\r\v\f",
                                                   "\xC3\xA9",
                                                   "\xD0\x9F\xD1\x80",
                                                   "\xE4\xBD\xA0\xE5\xA5\xBD",
                                                   "\xF0\x9F\x98\x80",
                                                   "\x80",
                                                   "\xBF\xBF",
                                                   "\xC0\xFF",
                                                   "@[`{",
                                                   "\x7F\x01"};
  std::mt19937 random(42);
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    const int n = static_cast<int>(random() % 200);
    for (int i = 0; i < n; ++i) {
      // Mostly ASCII, as prompts are, so that whole ASCII blocks occur.
      text += pieces[random() % (random() % 4 == 0 ? pieces.size() : 11)];
    }
    ASSERT_EQ(Count(text), Reference(text)) << ::testing::PrintToString(text);
  }
  // Long runs (one class for many blocks), alone and after a block read byte by byte, and
  // every byte value.
  for (std::string_view unit : {"a", "7", "!", " ", "\n", "\xE4\xBD\xA0"}) {
    for (std::string_view before : {"", " ", "\xC3\xA9"}) {
      std::string text(before);
      for (int i = 0; i < 1000; ++i) text += unit;
      EXPECT_EQ(Count(text), Reference(text)) << unit;
    }
  }
  std::string all;
  for (int round = 0; round < 4; ++round) {
    for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  }
  EXPECT_EQ(Count(all), Reference(all));
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
      "a b c d e f g h i j", ", . ; : ! ? - ( ) [ ]", "1 2 3 4 5 6 7 8 9 0", "I a o e u",
      "x\ny\nz\tw",          "日 本 語 テ キ ス ト",
  };
  for (const char* text : texts) EXPECT_GE(Count(text), Words(text)) << text;
}

TEST(ApproxTokenCounterTest, OverheadsFollowOpenAiCookbook) {
  ApproxTokenCounter counter;
  EXPECT_EQ(counter.PerMessageOverhead(), 4);
  EXPECT_EQ(counter.PerRequestOverhead(), 3);
}

TEST(MakeTokenCounterTest, ApproxAndItsRefusals) {
  auto approx = MakeTokenCounter("approx");
  ASSERT_NE(approx, nullptr);
  EXPECT_EQ(approx->CountText("Hello, world!"), 4);
  // The cookbook's overheads: 3 a chat, 4 a message.
  const std::string_view a[] = {"Hello", "world"};
  const std::string_view b[] = {"x"};
  const ChatTurn chat[] = {{"user", a}, {"assistant", b}};
  EXPECT_EQ(approx->CountChat(chat), 3 + 4 + approx->CountText("Hello") +
                                         approx->CountText("world") + 4 + approx->CountText("x"));
  EXPECT_THROW(MakeTokenCounter("/models/llama/tokenizer.json"), std::runtime_error);
  EXPECT_THROW(MakeTokenCounter("approx", "llama3"), std::runtime_error);
  EXPECT_THROW(MakeTokenCounter("approx", "mistral"), std::runtime_error);
}

}  // namespace
}  // namespace trl
