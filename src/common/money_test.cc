#include "common/money.h"

#include <gtest/gtest.h>

namespace trl {
namespace {

TEST(MoneyTest, ParsesDecimalsExactly) {
  EXPECT_EQ(ParseScaledDecimal("50", 9, kMaxMoneyNanos), 50'000'000'000);
  EXPECT_EQ(ParseScaledDecimal("50.00", 9, kMaxMoneyNanos), 50'000'000'000);
  EXPECT_EQ(ParseScaledDecimal("0.1", 9, kMaxMoneyNanos), 100'000'000);
  EXPECT_EQ(ParseScaledDecimal("0.000000001", 9, kMaxMoneyNanos), 1);
  EXPECT_EQ(ParseScaledDecimal(".5", 6, kMaxPriceMicros), 500'000);
  EXPECT_EQ(ParseScaledDecimal("5.", 6, kMaxPriceMicros), 5'000'000);
  EXPECT_EQ(ParseScaledDecimal("0.075", 6, kMaxPriceMicros), 75'000);
  EXPECT_EQ(ParseScaledDecimal("0", 6, kMaxPriceMicros), 0);
  EXPECT_EQ(ParseScaledDecimal("9000000", 9, kMaxMoneyNanos), kMaxMoneyNanos);
  // Boost.JSON writes a double as 5E1 or 1.5E-3: the same numbers.
  EXPECT_EQ(ParseScaledDecimal("5E1", 9, kMaxMoneyNanos), 50'000'000'000);
  EXPECT_EQ(ParseScaledDecimal("1.5e-3", 6, kMaxPriceMicros), 1'500);
  EXPECT_EQ(ParseScaledDecimal("1.50E+0", 6, kMaxPriceMicros), 1'500'000);
  EXPECT_EQ(ParseScaledDecimal("0.10000000000", 9, kMaxMoneyNanos), 100'000'000);
}

TEST(MoneyTest, RefusesWhatIsNoAmount) {
  for (const char* text : {"", ".", "-1", "+1", "1,5", "1.2.3", "abc", "1e", "1e+", "0x10", "1 ",
                           " 1", "nan", "inf", "1e999", "1.5e-3x"}) {
    EXPECT_EQ(ParseScaledDecimal(text, 9, kMaxMoneyNanos), std::nullopt) << text;
  }
  EXPECT_EQ(ParseScaledDecimal("0.0000000001", 9, kMaxMoneyNanos), std::nullopt);  // 10th place
  EXPECT_EQ(ParseScaledDecimal("0.0000001", 6, kMaxPriceMicros), std::nullopt);
  EXPECT_EQ(ParseScaledDecimal("9000000.000000001", 9, kMaxMoneyNanos), std::nullopt);
  EXPECT_EQ(ParseScaledDecimal("99999999999999999999999999999999", 9, kMaxMoneyNanos),
            std::nullopt);
}

TEST(MoneyTest, FormatsWithTwoToNinePlaces) {
  EXPECT_EQ(FormatMoney(50'000'000'000), "50.00");
  EXPECT_EQ(FormatMoney(49'999'998'500), "49.9999985");
  EXPECT_EQ(FormatMoney(1), "0.000000001");
  EXPECT_EQ(FormatMoney(0), "0.00");
  EXPECT_EQ(FormatMoney(-1'250'000'000), "-1.25");
  EXPECT_EQ(FormatScaledDecimal(75'000, 6, 0), "0.075");
  EXPECT_EQ(FormatScaledDecimal(2'000'000, 6, 0), "2");
  EXPECT_EQ(FormatScaledDecimal(1234, 0, 0), "1234");  // whole units
  EXPECT_EQ(FormatScaledDecimal(-7, 0, 0), "-7");
  EXPECT_EQ(FormatMoney(INT64_MIN), "-9223372036.854775808");
}

TEST(MoneyTest, CostIsRoundedUpOncePerRequest) {
  const TokenPrices prices{500'000, 250'000, 1'500'000};  // 0.50, 0.25, 1.50 per 1M tokens
  // 1000 prompt tokens (200 cached), 100 completion: 800 x 0.5 + 200 x 0.25 + 100 x 1.5 = 600
  // units per million tokens = 0.0006.
  EXPECT_EQ(CostNanos(prices, 1000, 200, 100), 600'000);
  // One token at 0.50 per million is 0.0000005 = 500 nanos exactly.
  EXPECT_EQ(CostNanos(prices, 1, 0, 0), 500);
  // 0.000001 per million: a token costs 1e-12, rounded up to 1 nano once.
  EXPECT_EQ(CostNanos({1, 1, 1}, 3, 0, 2), 1);
  EXPECT_EQ(CostNanos({1, 1, 1}, 1000, 0, 1), 2);  // 1001e-12 -> 2 nanos
  // Cached tokens are part of the prompt: more than the prompt counts as the prompt.
  EXPECT_EQ(CostNanos(prices, 10, 50, 0), 2'500);
  EXPECT_EQ(CostNanos(prices, -5, -5, -5), 0);
  EXPECT_EQ(CostNanos({}, 1000, 0, 1000), 0);
  EXPECT_EQ(CostNanos({kMaxPriceMicros, 0, kMaxPriceMicros}, INT64_MAX, 0, INT64_MAX),
            kMaxMoneyNanos);
  EXPECT_TRUE(TokenPrices{}.Free());
  EXPECT_FALSE(prices.Free());
}

}  // namespace
}  // namespace trl
