// Short builders for the limits tests are written with, in both forms:
// - LimitConfig, a limit as the config states it (per in milliseconds):
//     Tokens(1000, Millis(60'000)), Requests(10, kMinute, /*calendar=*/true), Concurrent(2);
// - BucketSpec, one budget of a key as a Store sees it (period in microseconds):
//     Tokens("team-a", 100, 60'000'000), Requests("team-a", 10), Concurrent("team-a", 3).
// A BucketSpec holds string_views of its owner and model: pass strings that outlive it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "config/config.h"
#include "limits/store.h"

namespace trl::testing {

inline LimitConfig Tokens(int64_t n, Millis per, bool calendar = false, std::string model = "") {
  return {LimitKind::kTokens, n, per, calendar, std::move(model)};
}
inline LimitConfig Requests(int64_t n, Millis per, bool calendar = false, std::string model = "") {
  return {LimitKind::kRequests, n, per, calendar, std::move(model)};
}
inline LimitConfig Concurrent(int64_t n, std::string model = "") {
  return {LimitKind::kConcurrent, n, Millis(0), false, std::move(model)};
}

inline constexpr int64_t kBucketMinute = 60'000'000;  // microseconds

inline BucketSpec Tokens(std::string_view key, int64_t capacity,
                         int64_t period_micros = kBucketMinute, bool calendar = false,
                         std::string_view model = "") {
  return {{ScopeKind::kKey, key, model, LimitKind::kTokens, period_micros, calendar}, capacity};
}
inline BucketSpec Requests(std::string_view key, int64_t capacity,
                           int64_t period_micros = kBucketMinute) {
  return {{ScopeKind::kKey, key, "", LimitKind::kRequests, period_micros, false}, capacity};
}
inline BucketSpec Concurrent(std::string_view key, int64_t capacity) {
  return {{ScopeKind::kKey, key, "", LimitKind::kConcurrent, 0, false}, capacity};
}

}  // namespace trl::testing
