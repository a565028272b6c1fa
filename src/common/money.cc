#include "common/money.h"

#include <algorithm>
#include <charconv>

namespace trl {
namespace {

constexpr __int128 Pow10(int n) {
  __int128 p = 1;
  while (n-- > 0) p *= 10;
  return p;
}

// An exponent "e-3", "E+2", "e5": nullopt when malformed or far out of range.
std::optional<int> ParseExponent(std::string_view text) {
  if (text.empty()) return 0;
  text.remove_prefix(1);  // 'e' or 'E'
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  int exponent = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), exponent);
  if (ec != std::errc() || end != text.data() + text.size() || exponent < -40 || exponent > 40) {
    return std::nullopt;
  }
  return exponent;
}

}  // namespace

std::optional<int64_t> ParseScaledDecimal(std::string_view text, int decimals, int64_t max) {
  const size_t e = text.find_first_of("eE");
  const std::optional<int> exponent =
      ParseExponent(e == std::string_view::npos ? std::string_view() : text.substr(e));
  if (!exponent) return std::nullopt;
  const std::string_view mantissa = text.substr(0, e);
  // The digits without the point, and how many of them are after it.
  __int128 value = 0;
  int places = 0, digits = 0;
  bool point = false;
  for (char c : mantissa) {
    if (c == '.' && !point) {
      point = true;
      continue;
    }
    if (c < '0' || c > '9') return std::nullopt;
    if (value > Pow10(30)) return std::nullopt;  // far above any max
    value = value * 10 + (c - '0');
    places += point ? 1 : 0;
    ++digits;
  }
  if (digits == 0) return std::nullopt;
  int shift = decimals - places + *exponent;  // scale by 10^shift
  for (; shift < 0; ++shift) {
    if (value % 10 != 0) return std::nullopt;  // more places than `decimals`
    value /= 10;
  }
  if (shift > 30 || value > static_cast<__int128>(max) / Pow10(shift)) return std::nullopt;
  value *= Pow10(shift);
  if (value > max) return std::nullopt;
  return static_cast<int64_t>(value);
}

std::string FormatScaledDecimal(int64_t scaled, int decimals, int min_decimals) {
  const bool negative = scaled < 0;
  const unsigned __int128 magnitude =
      negative ? -static_cast<__int128>(scaled) : static_cast<__int128>(scaled);
  const auto unit = static_cast<unsigned __int128>(Pow10(decimals));
  std::string text = negative ? "-" : "";
  text += std::to_string(static_cast<uint64_t>(magnitude / unit));
  if (decimals == 0) return text;
  std::string fraction = std::to_string(static_cast<uint64_t>(magnitude % unit));
  fraction.insert(0, static_cast<size_t>(decimals) - fraction.size(), '0');
  size_t keep = fraction.size();
  while (keep > static_cast<size_t>(min_decimals) && fraction[keep - 1] == '0') --keep;
  if (keep > 0) {
    text += '.';
    text.append(fraction, 0, keep);
  }
  return text;
}

int64_t CostNanos(const TokenPrices& prices, int64_t prompt_tokens, int64_t cached_tokens,
                  int64_t completion_tokens) {
  const int64_t cached = std::clamp<int64_t>(cached_tokens, 0, std::max<int64_t>(prompt_tokens, 0));
  const __int128 micro_per_million =  // tokens x micro-units per 1e6 tokens = 1e-12 units
      static_cast<__int128>(std::max<int64_t>(prompt_tokens, 0) - cached) * prices.input +
      static_cast<__int128>(cached) * prices.cached_input +
      static_cast<__int128>(std::max<int64_t>(completion_tokens, 0)) * prices.output;
  const __int128 nanos = (micro_per_million + 999) / 1000;
  return static_cast<int64_t>(std::min<__int128>(nanos, kMaxMoneyNanos));
}

}  // namespace trl
