// Short builders for limits as the config states them (per in milliseconds):
//     Tokens(1000, Millis(60'000)), Requests(10, kMinute, /*calendar=*/true), Concurrent(2).
// Budgets as a Store sees them have theirs in bucket_builders.h.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "config/config.h"

namespace trl::testing {

inline LimitConfig Tokens(int64_t n, Millis per, bool calendar = false, std::string model = "") {
  return {LimitKind::kTokens, n, per, calendar, std::move(model)};
}
inline LimitConfig Requests(int64_t n, Millis per, bool calendar = false, std::string model = "") {
  return {LimitKind::kRequests, n, per, calendar, std::move(model)};
}
// `nanos` of the currency (common/money.h).
inline LimitConfig Spend(int64_t nanos, Millis per, bool calendar = false, std::string model = "") {
  return {LimitKind::kSpend, nanos, per, calendar, std::move(model)};
}
inline LimitConfig Concurrent(int64_t n, std::string model = "") {
  return {LimitKind::kConcurrent, n, Millis(0), false, std::move(model)};
}

}  // namespace trl::testing
