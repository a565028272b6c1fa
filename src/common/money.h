// Money as exact fixed-point integers (no binary floating point anywhere it is counted): amounts
// in nanos of the configured currency (1e-9), prices in micro-units per million tokens (1e-6).
// A cost is rounded up to the nano once per request: never less than the prices say, at most one
// nano more.
//
// Limits (so every level fits the Redis store's Lua numbers, exact below 2^53 nanos): a spend
// amount up to kMaxMoneyNanos (9,000,000 units), a price up to kMaxPriceMicros (1,000,000 units
// per million tokens).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trl {

inline constexpr int kMoneyDecimals = 9;  // a money amount's unit: 1e-9 of the currency
inline constexpr int kPriceDecimals = 6;  // a price's unit: 1e-6 of the currency per 1M tokens
inline constexpr int64_t kMaxMoneyNanos = 9'000'000'000'000'000;
inline constexpr int64_t kMaxPriceMicros = 1'000'000'000'000;

// A non-negative decimal ("50", "50.00", "0.075", "5E1", "1.5e-3"), scaled by 10^decimals into
// an integer: nullopt when it is no such number, needs more decimal places than `decimals`
// (trailing zeros aside), or exceeds `max`.
std::optional<int64_t> ParseScaledDecimal(std::string_view text, int decimals, int64_t max);

// `scaled` / 10^decimals as decimal text, with at least `min_decimals` places and no trailing
// zeros beyond them: FormatScaledDecimal(49999998500, 9, 2) == "49.9999985".
std::string FormatScaledDecimal(int64_t scaled, int decimals, int min_decimals);

// A money amount in nanos as the API writes it: "50.00", "0.0000015", "-1.25" (debt).
inline std::string FormatMoney(int64_t nanos) {
  return FormatScaledDecimal(nanos, kMoneyDecimals, 2);
}

// What tokens cost at per-million prices (micro-units): in nanos, rounded up once, clamped to
// kMaxMoneyNanos. Negative counts count as 0.
struct TokenPrices {
  int64_t input = 0;         // an uncached prompt token's
  int64_t cached_input = 0;  // a prompt token the backend served from its cache
  int64_t output = 0;        // a completion token's

  bool Free() const { return input == 0 && cached_input == 0 && output == 0; }
  bool operator==(const TokenPrices&) const = default;
};
int64_t CostNanos(const TokenPrices& prices, int64_t prompt_tokens, int64_t cached_tokens,
                  int64_t completion_tokens);

}  // namespace trl
